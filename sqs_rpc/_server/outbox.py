"""The server's outbox: its replies and request deletes, batched by the shared :class:`Batcher`.

A worker hands its reply to the outbox and blocks until SQS accepted it. Only then may the
request be deleted. Replies completed together go out in one ``SendMessageBatch`` per reply
queue. While other requests are being handled, a reply waits up to ``REPLY_LINGER`` for theirs.
A reply with nothing to wait for is sent by the worker itself, with no hand-off to a thread.

The delete that follows does not block the worker. It waits up to ``DELETE_DELAY`` for other
deletes and leaves in a ``DeleteMessageBatch``. So the worker is free for the next request at
once. A delete that fails is logged. The request then comes back after its visibility timeout,
and the reply cache answers it (see :mod:`sqs_rpc._server.reply_cache`).

Requests left in the queue on purpose (poison, see :mod:`sqs_rpc._server.backoff`) are hidden
the same way as deletes go: batched, ``ChangeMessageVisibilityBatch``, off the worker.

FIFO request queues delete at once, and the worker waits for SQS's answer, for two reasons.
SQS holds a FIFO group's next message back until the ones in flight are deleted, so a delayed
delete would delay the group. And the group's next message, if already received, must not
start before this one is gone: were the delete lost, this one would come back after it.

After :meth:`Outbox.stop`, a late worker (one that outlived the shutdown budget) sends its
reply and delete itself, one request each.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING

from sqs_rpc._batcher import Batcher
from sqs_rpc._errors import ClientClosedError, SqsError, aws_errors
from sqs_rpc._loop import thread_name
from sqs_rpc._outgoing import OutgoingMessage
from sqs_rpc._stats import Counters

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DELETE_DELAY", "REPLY_LINGER", "Outbox", "change_visibility"]

logger = logging.getLogger(__name__)

# How long a request's delete may wait for company. Far below any sensible visibility timeout,
# and long enough for ten deletes to gather at a few dozen calls per second.
DELETE_DELAY = 0.1
# How long a reply waits for the replies of other requests being handled right now (usually
# received in the same batch) to share its SendMessageBatch. A lone request never waits.
REPLY_LINGER = 0.01
# How long a worker waits for its reply: far longer than botocore's retries of one request.
RESULT_TIMEOUT = 300.0


class Outbox:
    """Batches a server's replies (per reply queue) and deletes (from its request queue).

    With ``background=False`` there is no thread. Each reply or delete is sent at once, on the
    caller's thread. That is for the AWS Lambda responder: threads freeze between invocations.
    """

    def __init__(
        self,
        sqs: SQSClient,
        queue_url: str,
        *,
        owner: str,
        counters: Counters,
        busy: Callable[[], bool] | None = None,
        background: bool = True,
    ) -> None:
        self._sqs = sqs
        self._busy = busy
        self._queue_url = queue_url
        self._owner = owner
        self._counters = counters
        self._fifo = queue_url.endswith(".fifo")
        self._delete_delay = 0.0 if self._fifo else DELETE_DELAY
        self._background = background
        self._batcher: Batcher | None = None

    def start(self) -> None:
        if self._background and self._batcher is None:
            self._batcher = Batcher(
                self._sqs,
                name=thread_name("outbox", self._owner),
                delete_delay=self._delete_delay,
                send_linger=REPLY_LINGER,
                busy=self._busy,
            )

    def stop(self, timeout: float | None = None) -> bool:
        """Send what is queued, then stop the flusher threads."""
        if self._batcher is not None:
            return self._batcher.stop(30.0 if timeout is None else timeout)
        return True

    def send_reply(self, reply_to: str, reply: OutgoingMessage) -> None:
        """Send one reply; return once SQS accepted it, raise :class:`SqsError` if it did not."""
        batcher = self._batcher
        if batcher is not None:
            try:
                # The worker waits for SQS anyway: when nothing else is going to that reply
                # queue, the batcher lets it send the reply itself, with no thread hand-off.
                future = batcher.send(reply_to, reply, inline=True)
            except ClientClosedError:
                pass  # stopped meanwhile: a late worker sends its own (below)
            else:
                try:
                    future.result(RESULT_TIMEOUT)
                except FutureTimeout as exc:  # not the builtin TimeoutError before Python 3.11
                    raise TimeoutError(f"no answer from SQS for a reply to {reply_to}") from exc
                self._counters.add("replies_sent")
                return
        # No batcher: inline by design (background=False), or a worker that outlived stop().
        with aws_errors("SendMessage", reply_to):
            self._sqs.send_message(QueueUrl=reply_to, **reply.to_send_kwargs())
        self._counters.add("replies_sent")

    def delete(self, receipt_handle: str, then: Callable[[], object] | None = None) -> bool:
        """Delete one request, soon; True: it is on its way (a failure is logged later).

        ``then`` runs once SQS has deleted it (not at all if it could not).
        """
        batcher = self._batcher
        if batcher is not None:
            try:
                future = batcher.delete(self._queue_url, receipt_handle)
            except ClientClosedError:
                pass  # stopped meanwhile: delete it here (below)
            else:
                future.add_done_callback(functools.partial(self._deleted, then))
                if self._fifo:
                    return self._wait_deleted(future)
                return True
        try:
            with aws_errors("DeleteMessage", self._queue_url):
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt_handle)
        except Exception as exc:
            self._not_deleted(exc)
            return False
        self._done(then)
        return True

    @staticmethod
    def _wait_deleted(future: Future[None]) -> bool:
        """Wait for a FIFO delete; False (logged by ``_deleted``) if SQS did not delete it."""
        try:
            future.result(RESULT_TIMEOUT)
        except FutureTimeout:
            logger.warning("no answer from SQS for a delete within %.0fs", RESULT_TIMEOUT)
            return False
        except Exception:
            return False
        return True

    def hide(self, receipt_handle: str, seconds: int) -> None:
        """Hide a request left in the queue for ``seconds``, soon; a failure is logged."""
        batcher = self._batcher
        if batcher is not None:
            try:
                batcher.hide(self._queue_url, receipt_handle, seconds).add_done_callback(
                    _log_hide_failure
                )
                return
            except ClientClosedError:
                pass  # stopped meanwhile: do it here (below)
        try:
            change_visibility(self._sqs, self._queue_url, receipt_handle, seconds)
        except SqsError as exc:
            logger.warning("could not hide a request for %ds: %s", seconds, exc)

    def _deleted(self, then: Callable[[], object] | None, future: Future[None]) -> None:
        error = future.exception()
        if error is None:
            self._done(then)
        else:
            self._not_deleted(error)

    def _done(self, then: Callable[[], object] | None) -> None:
        self._counters.add("deleted")
        if then is not None:
            try:
                then()
            except Exception:  # on a flusher thread: log, never break the batcher
                logger.exception("after deleting a request")

    @staticmethod
    def _not_deleted(error: BaseException) -> None:
        logger.warning("could not delete a request (%s); it will be redelivered", error)


def _log_hide_failure(future: Future[None]) -> None:
    # Harmless: the request comes back after its visibility timeout instead of its backoff.
    error = future.exception()
    if error is not None:
        logger.warning("could not hide a request: %s", error)


def change_visibility(sqs: SQSClient, queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Hide one request for ``seconds`` now, on this thread; :class:`SqsError` if SQS refused."""
    with aws_errors("ChangeMessageVisibility", queue_url):
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )
