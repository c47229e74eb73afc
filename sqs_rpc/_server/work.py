"""A message's work: steps on worker threads, its async handler awaited on the event loop.

The dispatcher writes the handling of one message as a coroutine, but not an asyncio one: it
runs on a worker thread and blocks where it must (SQS, the idempotency store, S3). It
suspends at one kind of point only, ``await OnLoop(awaitable)``: what an ``async def``
handler returned. :class:`WorkRunner` then runs that awaitable as a task on the poller's event
loop and lets the worker go; once the task is done, a worker resumes the work (reply, delete).
So an async handler in flight holds a ``concurrency`` slot but no thread, and a sync handler
never suspends: its message runs start to finish in one step, on one worker.

Each message runs in its own ``contextvars.Context`` (its trace context, its deadline), on
every thread it visits; its task runs in a copy of it, so ``remaining_time()`` and nested
calls see the request's deadline. :func:`run_inline` runs the same work on one thread, for
the Lambda responder.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator
from concurrent.futures import Future
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "AwaitableRunner",
    "LoopSubmitter",
    "OnLoop",
    "Submit",
    "Work",
    "WorkRunner",
    "run_inline",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class OnLoop(Generic[T]):
    """The one suspension point of a message's work: ``result = await OnLoop(awaitable)``."""

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: Awaitable[T]) -> None:
        self.awaitable = awaitable

    def __await__(self) -> Generator[OnLoop[T], Any, T]:
        result: T = yield self
        return result


# A message's work: suspends only at OnLoop, ends with T.
Work = Coroutine["OnLoop[Any]", Any, T]
Submit = Callable[..., None]


class AwaitableRunner(Protocol):
    """Runs what an ``async def handle`` returned, to completion, on the calling thread."""

    def run(self, awaitable: Awaitable[T]) -> T: ...


class LoopSubmitter(Protocol):
    """Starts an awaitable as a task on an event loop; the future settles with it."""

    def submit(self, awaitable: Awaitable[T]) -> Future[T]: ...


def run_inline(work: Work[T], runner: AwaitableRunner) -> T:
    """Run ``work`` to its end on this thread, each awaitable through ``runner``."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = work.send(value) if error is None else work.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        value, error = None, None
        try:
            value = runner.run(step.awaitable)
        except BaseException as exc:  # the work decides what it means
            error = exc


class WorkRunner:
    """Runs works on worker threads (``submit``), their awaitables on ``loop``.

    :meth:`run` is called on a worker: it runs the work's first step there and returns its
    result if the work never suspended; else None, and ``then(result)`` runs once the work
    ends (on a worker; inline when its task was cancelled, as the workers may be gone).
    A work must end with a value other than None, and must not raise: the receiver's ends
    with a bool, and catches what its message's handling raises.
    """

    def __init__(self, submit: Submit, loop: LoopSubmitter) -> None:
        self._submit = submit
        self._loop = loop

    def run(self, work: Work[T], then: Callable[[T], None]) -> T | None:
        """Start ``work`` in a fresh context; its result, or None once it has suspended."""
        return self._step(work, contextvars.Context(), then, None, None)

    def _step(
        self,
        work: Work[T],
        context: contextvars.Context,
        then: Callable[[T], None],
        value: Any,
        error: BaseException | None,
    ) -> T | None:
        try:
            if error is None:
                step = context.run(work.send, value)
            else:
                step = context.run(work.throw, error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        try:
            # Started from within the message's context: the task runs in a copy of it.
            future = context.run(self._loop.submit, step.awaitable)
        except RuntimeError as exc:  # the loop is stopped: this message outlived stop()
            logger.info("not starting an async handler: %s", exc)
            if inspect.iscoroutine(step.awaitable):
                step.awaitable.close()  # never to run: no "never awaited" warning
            return self._step(work, context, then, None, asyncio.CancelledError())
        future.add_done_callback(lambda done: self._resume(work, context, then, done))
        return None

    def _resume(
        self,
        work: Work[T],
        context: contextvars.Context,
        then: Callable[[T], None],
        done: Future[Any],
    ) -> None:
        if done.cancelled():
            # Cancelled by a stop that gave up waiting: end the work here (claims released,
            # nothing deleted), as the workers are shutting down.
            self._finish(work, context, then, None, asyncio.CancelledError())
            return
        error = done.exception()
        value = None if error is not None else done.result()
        self._submit(self._finish, work, context, then, value, error)

    def _finish(
        self,
        work: Work[T],
        context: contextvars.Context,
        then: Callable[[T], None],
        value: Any,
        error: BaseException | None,
    ) -> None:
        result = self._step(work, context, then, value, error)
        if result is not None:
            then(result)
