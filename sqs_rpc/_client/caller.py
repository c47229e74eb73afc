"""The path of one call or publish, from a :class:`RequestMessage` to SQS and back.

A :class:`Caller` checks and encodes the request, puts the call in the pending map, and hands
the message to the transport. :class:`~sqs_rpc.RpcClient` keeps the public methods and the
client's state; the order of the steps, and why, is here.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from sqs_rpc._deadline_context import bounded_timeout
from sqs_rpc._errors import RpcTimeout
from sqs_rpc._futures import settle
from sqs_rpc._observe import CallObserver
from sqs_rpc._tracing import CallSpan, carrying

from .request import RequestEncoder, RequestMessage, check_timeout
from .transport import Transport

__all__ = ["Caller", "Opener"]

logger = logging.getLogger(__name__)

Opener = Callable[[], Transport]
"""Opens the client on first use and returns its transport."""


class Caller:
    """Sends one client's calls and publishes; each call gets a future for its reply.

    Every method takes ``opener``: it opens the client on first use and returns its transport,
    and raises :class:`~sqs_rpc.ClientClosedError` once the client is closed. It is passed
    per call, not kept: a caller that held the client's method would hold the client, which
    then could not be collected (and warn) when its user drops it.

    Example::

        caller = Caller(encoder, observer, default_timeout=30.0)
        future, _ = caller.send(RequestMessage(url, {"x": 1}), None, client._open, chosen_id=False)
    """

    def __init__(
        self,
        requests: RequestEncoder,
        observer: CallObserver,
        *,
        default_timeout: float,
    ) -> None:
        self._requests = requests
        self._observer = observer
        self._default_timeout = default_timeout

    def timeout(self, timeout: float | None) -> float:
        """The seconds a call waits: ``timeout``, or the default; within a handler's deadline."""
        seconds = None if timeout is None else check_timeout(timeout, "timeout")
        # Inside a handler: never longer than the inbound request's remaining time, and that
        # by default (_deadline_context.py).
        return bounded_timeout(seconds, self._default_timeout)

    def call(self, message: RequestMessage, timeout: float | None, opener: Opener) -> Any:
        """Send ``message`` (its correlation id generated) and wait for the decoded reply."""
        seconds = self.timeout(timeout)
        # Waits once, on the reply: a failed send fails this future too, and its deadline
        # bounds the send as well. One wake-up per call instead of two.
        future, record = self.send(message, seconds, opener, chosen_id=False, wait_sent=False)
        correlation_id = message.correlation_id
        try:
            return future.result(timeout=seconds)
        except FutureTimeout:
            # Only reached if this wait ends a hair before the timer fails the future. Fail
            # the future rather than cancel it, so that stats and hooks see a timeout.
            error = RpcTimeout(
                f"no reply within {seconds:g}s (correlation id {correlation_id}); raise "
                "timeout= or check the server",
                correlation_id=correlation_id,
            )
            if not settle(future, error=error):
                return future.result(timeout=0)  # settled meanwhile: that outcome stands
            raise error from None
        finally:
            record()  # in stats() and hooks before this returns

    def send(
        self,
        message: RequestMessage,
        timeout: float | None,
        opener: Opener,
        *,
        chosen_id: bool,
        wait_sent: bool = True,
    ) -> tuple[Future[Any], Callable[[], None]]:
        """Send a call; return the future of its reply and its ``record()`` (``_observe.py``).

        ``chosen_id``: the caller chose the correlation id, so only a reply that echoes the
        call's nonce settles it. With ``wait_sent`` (``call_async``, ``send``), an error in
        sending is raised here once SQS answered. Without it (``call``, which waits on the
        reply anyway), the request is only queued, and a failed send fails the returned future
        with the same error.
        """
        seconds = self.timeout(timeout)
        correlation_id = message.correlation_id or uuid.uuid4().hex
        # This call's own: the server echoes it, and only a reply with it settles this call,
        # whatever correlation id the caller chose (and perhaps reused).
        nonce = secrets.token_hex(16)
        # Check and encode first: bad input never creates a queue or touches the pending map.
        body = self._requests.body(message)
        # Size check without ReplyTo (a lower bound): an oversized payload creates no queue.
        # Nothing goes to S3 yet: the message is not final.
        self._requests.outgoing(message, body, correlation_id, upload=False)
        pending, reply_to = opener().reply_address()
        span = self._observer.span(correlation_id, message.queue_url)  # no-op without otel
        with carrying(span):  # the request carries the span's trace context
            outgoing = self._requests.outgoing(
                message,
                body,
                correlation_id,
                reply_to=reply_to,
                deadline_ms=int((time.time() + seconds) * 1000),
                nonce=nonce,
            )
        future: Future[Any] = Future()
        record = self._observer.started(correlation_id, message.queue_url, future, span)
        # A generated id is as unguessable as the nonce, and matched alone for older servers;
        # a chosen one ("order-7") is not: it takes only replies that echo the nonce.
        pending.add(correlation_id, future, seconds, nonce=nonce, nonce_required=chosen_id)
        if future.done():
            # Failed already: the client closed, or the queue was lost, since reply_address().
            return future, record
        try:
            transport = opener()
            if wait_sent:
                span.sent(transport.send(message.queue_url, outgoing, seconds))
            else:
                sent = transport.send_async(message.queue_url, outgoing)
                sent.add_done_callback(functools.partial(_sent, future, span))
        except Exception as exc:
            settle(future, error=exc)  # the caller gets exc; stats and hooks see an error
            raise
        except BaseException:
            future.cancel()
            raise
        logger.debug("sent call %s to %s", correlation_id, message.queue_url)
        return future, record

    def publish(self, message: RequestMessage, opener: Opener) -> str:
        """Send a one-way message and return its SQS message id."""
        transport = opener()
        body = self._requests.body(message)
        correlation_id = uuid.uuid4().hex
        span = self._observer.span(correlation_id, message.queue_url, publish=True)
        with carrying(span):  # ends the span on an error
            outgoing = self._requests.outgoing(message, body, correlation_id)
            message_id = transport.send(message.queue_url, outgoing, self._default_timeout)
        span.sent(message_id)
        span.end("ok", None)
        self._observer.published()
        return message_id


def _sent(future: Future[Any], span: CallSpan, sent: Future[str]) -> None:
    """A queued request was sent, or not: in that case its call fails with the send's error."""
    error = sent.exception()
    if error is not None:
        settle(future, error=error)
    else:
        span.sent(sent.result())
