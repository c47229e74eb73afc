"""The sweeper against the SQS server over HTTP: what it deletes, what it never touches.

A thousand queues and a SIGKILLed client process: tests/system/test_sweeper.py.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sqs_rpc import (
    ConfigurationError,
    MessagePoller,
    RpcClient,
    Sweeper,
    SweepReport,
)
from sqs_rpc._attributes import HEARTBEAT_TAG, RETENTION_TAG
from sqs_rpc._sweeper import JAVA_HEARTBEAT_TAG, JAVA_RETENTION_TAG
from tests.support.handlers import Echo
from tests.support.helpers import Endpoint, queue_listed, wait_for

TaggedQueue = Callable[..., str]


@pytest.fixture
def prefix() -> str:
    """A prefix no other test uses, so each test sweeps only its own queues."""
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture
def tagged_queue(sqs: Any, prefix: str) -> Iterator[TaggedQueue]:
    """Create queues under ``prefix`` with the given tags; delete what is left at teardown."""
    created: list[str] = []

    def make(tags: dict[str, str] | None = None, name: str | None = None) -> str:
        name = name or prefix + uuid.uuid4().hex
        url: str = sqs.create_queue(QueueName=name, tags=tags or {})["QueueUrl"]
        created.append(url)
        return url

    yield make
    for url in created:
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=url)


def orphan_tags(idle: float = 3600, retention: int = 60) -> dict[str, str]:
    """sqs-rpc's tags for a queue whose last heartbeat was ``idle`` seconds ago."""
    return {HEARTBEAT_TAG: str(int(time.time() - idle)), RETENTION_TAG: str(retention)}


def actions(report: SweepReport) -> dict[str, str]:
    return {d.queue_url: d.action for d in report.decisions}


def test_deletes_an_idle_empty_queue_and_keeps_a_fresh_one(
    sqs: Any, prefix: str, tagged_queue: TaggedQueue
) -> None:
    idle = tagged_queue(orphan_tags())
    fresh = tagged_queue(orphan_tags(idle=0))
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep()
    assert actions(report) == {idle: "deleted", fresh: "kept"}
    assert not queue_listed(sqs, idle)
    assert queue_listed(sqs, fresh)
    assert report.to_dict()["deleted"] == 1


def test_dry_run_deletes_nothing(sqs: Any, prefix: str, tagged_queue: TaggedQueue) -> None:
    idle = tagged_queue(orphan_tags())
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix, dry_run=True).sweep()
    assert actions(report) == {idle: "would_delete"}
    assert report.deleted[0].queue_url == idle
    assert queue_listed(sqs, idle)


def test_foreign_queues_under_the_prefix_are_never_touched(
    sqs: Any, prefix: str, tagged_queue: TaggedQueue
) -> None:
    untagged = tagged_queue()
    half_tagged = tagged_queue({HEARTBEAT_TAG: "0"})
    garbage = tagged_queue({HEARTBEAT_TAG: "yesterday", RETENTION_TAG: "60"})
    other_tags = tagged_queue({"team": "payments"})
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix, include_nonempty=True).sweep()
    assert set(actions(report).values()) == {"kept"}
    assert report.checked == 4
    for url in (untagged, half_tagged, garbage, other_tags):
        assert queue_listed(sqs, url)


def test_java_temporary_queue_tags_are_recognised(
    sqs: Any, prefix: str, tagged_queue: TaggedQueue
) -> None:
    now_ms = int(time.time() * 1000)
    dead = tagged_queue({JAVA_HEARTBEAT_TAG: str(now_ms - 3_600_000), JAVA_RETENTION_TAG: "300"})
    alive = tagged_queue({JAVA_HEARTBEAT_TAG: str(now_ms), JAVA_RETENTION_TAG: "300"})
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep()
    assert actions(report) == {dead: "deleted", alive: "kept"}
    assert not queue_listed(sqs, dead)


def test_deletions_per_run_are_capped(sqs: Any, prefix: str, tagged_queue: TaggedQueue) -> None:
    urls = [tagged_queue(orphan_tags()) for _ in range(3)]
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix, max_deletions=2).sweep()
    assert len(report.deleted) == 2
    (kept,) = report.kept
    assert "max_deletions=2" in kept.reason
    assert sum(queue_listed(sqs, url) for url in urls) == 1
    assert len(Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep().deleted) == 1


def test_a_queue_deleted_meanwhile_is_reported_gone(
    endpoint: Endpoint, sqs: Any, prefix: str, tagged_queue: TaggedQueue
) -> None:
    url = tagged_queue(orphan_tags())
    operator = endpoint.client()

    def delete_first(params: dict[str, Any], **_: Any) -> None:
        # Another party deletes the queue between our tag check and our delete. (The
        # fixture's own delete at teardown comes here too: the queue is gone by then.)
        with contextlib.suppress(operator.exceptions.QueueDoesNotExist):
            operator.delete_queue(QueueUrl=params["QueueUrl"])

    sqs.meta.events.register("before-parameter-build.sqs.DeleteQueue", delete_first)
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep()
    assert actions(report) == {url: "gone"}
    assert not report.errors


def test_throttling_is_retried_with_backoff(
    sqs: Any, prefix: str, tagged_queue: TaggedQueue
) -> None:
    idle = tagged_queue(orphan_tags())
    refused: list[str] = []

    def throttle(model: Any, **_: Any) -> None:
        if len(refused) < 2:
            refused.append(model.name)
            raise ClientError(
                {"Error": {"Code": "RequestThrottled", "Message": "slow down"}}, model.name
            )

    sqs.meta.events.register("before-call.sqs.ListQueueTags", throttle)
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep()
    assert refused == ["ListQueueTags", "ListQueueTags"]
    assert actions(report) == {idle: "deleted"}


def test_an_unexpected_error_on_one_queue_is_reported_and_the_sweep_goes_on(
    endpoint: Endpoint, prefix: str, tagged_queue: TaggedQueue
) -> None:
    sqs = endpoint.client()  # its own client: the fixtures' teardown must not be denied
    first = tagged_queue(orphan_tags())
    second = tagged_queue(orphan_tags())

    def deny_first(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params["QueueUrl"] == first:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, model.name)

    sqs.meta.events.register("before-parameter-build.sqs.DeleteQueue", deny_first)
    report = Sweeper(sqs_client=sqs, reply_queue_prefix=prefix).sweep()
    assert actions(report) == {first: "error", second: "deleted"}
    assert "AccessDenied" in report.errors[0].reason


def test_options_are_validated(sqs: Any) -> None:
    with pytest.raises(ConfigurationError, match="non-empty"):
        Sweeper(sqs_client=sqs, reply_queue_prefix="")
    with pytest.raises(ConfigurationError, match="max_deletions"):
        Sweeper(sqs_client=sqs, max_deletions=-1)
    with pytest.raises(ConfigurationError, match="sweep_interval"):
        RpcClient(sqs_client=sqs, sweep_interval=0.1)


def test_a_client_can_sweep_in_the_background(
    sqs: Any, prefix: str, tagged_queue: TaggedQueue, queue_url: str
) -> None:
    orphan = tagged_queue(orphan_tags())
    with RpcClient(sqs_client=sqs, reply_queue_prefix=prefix, sweep_interval=1) as client:
        client.call_async(queue_url, "keeps the client busy", timeout=60)
        wait_for(lambda: not queue_listed(sqs, orphan), timeout=30)
        assert client.reply_queue_url is not None
        assert queue_listed(sqs, client.reply_queue_url)


def test_a_message_poller_can_sweep_in_the_background(
    sqs: Any, prefix: str, tagged_queue: TaggedQueue, queue_url: str
) -> None:
    orphan = tagged_queue(orphan_tags())
    poller = MessagePoller(
        queue_url,
        Echo(),
        sqs_client=sqs,
        wait_time_seconds=1,
        sweep_interval=1,
        reply_queue_prefix=prefix,
    )
    with poller:
        wait_for(lambda: not queue_listed(sqs, orphan), timeout=30)
