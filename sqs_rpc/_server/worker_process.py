"""The child side of a :class:`~sqs_rpc.PollerPool`: one process running one MessagePoller.

A child is started with the ``spawn`` start method (a fresh interpreter, see
:mod:`sqs_rpc._server.supervisor` for why), so it inherits nothing of its parent but the
pickled :class:`WorkerSpec` and one end of a socket pair, its *channel*. Over the channel it
sends, as tuples:

- ``("log", attributes)``: each log record at or above the parent's levels, its message
  already formatted and prefixed with ``[worker <index> pid <pid>]``;
- ``("ready", pid)`` once its poller started, or ``("failed", mro_names, message)`` when the
  factory or ``start()`` raised (the child then exits with :data:`BOOT_FAILED`);
- ``("stats", fields)`` every ``stats_interval`` seconds and once more when stopped. They
  are the child's heartbeat too (the parent kills a serving child silent past its
  ``liveness_timeout``): so they are sent by the main thread, which runs no handler.

The parent sends nothing: the channel's end of file tells the child that its parent is gone
(killed, even by SIGKILL), and the child then stops as it does on SIGTERM. So a child never
outlives its supervisor by more than its own graceful stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from sqs_rpc._errors import ConfigurationError
from sqs_rpc._signals import StopSignals

from .poller import MessagePoller, close_clients
from .pool_stats import stats_fields

__all__ = ["BOOT_FAILED", "PollerFactory", "WorkerSpec", "worker_main"]

logger = logging.getLogger(__name__)

# The exit code of a child whose factory or start() raised: the parent reads the reason from
# the channel; the code tells a boot failure from a crash when the message was lost.
BOOT_FAILED = 3

PollerFactory = Callable[[], MessagePoller]


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """What a child needs, pickled to it by ``spawn``.

    Attributes:
        index: the child's slot, 0 to processes - 1 (a restarted child keeps its slot).
        factory: a picklable callable returning a MessagePoller, or ``"module:attribute"``.
        levels: the parent's logger levels (``""`` is the root): records below them are not
            sent at all.
        stats_interval: seconds between two stats reports.
    """

    index: int
    factory: PollerFactory | str
    levels: Mapping[str, int]
    stats_interval: float


def resolve_factory(factory: PollerFactory | str) -> PollerFactory:
    """The callable a ``"module:attribute"`` names (imported here), or ``factory`` itself."""
    if not isinstance(factory, str):
        return factory
    module_name, _, attribute = factory.partition(":")
    module = importlib.import_module(module_name)
    target = getattr(module, attribute)
    if not callable(target):
        raise ConfigurationError(
            f"factory {factory!r} is not callable; name a function that returns a MessagePoller"
        )
    return target  # type: ignore[no-any-return]


class _Channel:
    """The child's end of its socket pair: sends from any thread, never raises."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self._broken = False

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                self._connection.send(message)
            except (OSError, EOFError):
                self._broken = True  # the parent is gone: the watcher stops this child

    def wait_for_parent_exit(self) -> None:
        """Block until the parent's end closes (the parent never writes)."""
        with contextlib.suppress(EOFError, OSError):
            self._connection.recv()


class _ChannelHandler(logging.Handler):
    """Sends each record to the parent, its message formatted and prefixed with the child."""

    def __init__(self, channel: _Channel, index: int) -> None:
        super().__init__()
        self._channel = channel
        self._index = index

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{''.join(traceback.format_exception(*record.exc_info))}"
            attributes = dict(record.__dict__)
            attributes.update(
                msg=f"[worker {self._index} pid {record.process}] {message.rstrip()}",
                args=None,
                exc_info=None,
                exc_text=None,
                processName=f"worker-{self._index}",
            )
            # A user's extra= may hold what pickle refuses: keep only plain values.
            plain = (str, int, float, bool, type(None))
            self._channel.send(
                ("log", {k: v for k, v in attributes.items() if isinstance(v, plain)})
            )
        except Exception:
            self.handleError(record)


def _configure_logging(spec: WorkerSpec, channel: _Channel) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ChannelHandler(channel, spec.index))
    for name, level in spec.levels.items():
        logging.getLogger(name or None).setLevel(level)


def worker_main(spec: WorkerSpec, connection: Connection) -> None:
    """The target of a child process: build the poller, serve until told to stop, report.

    Exits 0 after a graceful stop, :data:`BOOT_FAILED` when the poller could not be built
    or started.
    """
    # Ctrl-C reaches every process of the terminal's process group: the parent alone decides
    # (it forwards SIGTERM, and SIGKILLs on a second Ctrl-C), so a child ignores SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = threading.Event()
    # Installed until the process ends, the stop included: the parent's SIGTERM (sent once)
    # asks for a graceful stop, never the default action's immediate death.
    with StopSignals(lambda _signum: stop.set(), [signal.SIGTERM]) as waiter:
        _serve(spec, connection, stop, waiter)


def _serve(
    spec: WorkerSpec, connection: Connection, stop: threading.Event, waiter: StopSignals
) -> None:
    channel = _Channel(connection)
    _configure_logging(spec, channel)

    def watch_parent() -> None:
        channel.wait_for_parent_exit()
        if not stop.is_set():
            logger.warning("the supervisor is gone; stopping")
            stop.set()
            waiter.wake()

    threading.Thread(target=watch_parent, name="sqs-rpc-parent-watch", daemon=True).start()
    try:
        poller = resolve_factory(spec.factory)()
        if not isinstance(poller, MessagePoller):
            raise ConfigurationError(
                f"the factory returned {poller!r}, not a MessagePoller; return "
                "MessagePoller(queue_url, handler, ...) from it"
            )
        poller.start()
    except BaseException as exc:
        logger.debug("failed to start", exc_info=True)
        names = [kind.__name__ for kind in type(exc).__mro__]
        channel.send(("failed", names, f"{type(exc).__name__}: {exc}"))
        sys.exit(BOOT_FAILED)
    channel.send(("ready", os.getpid()))
    try:
        while not waiter.wait(stop, spec.stats_interval):
            channel.send(("stats", stats_fields(poller.stats())))
        logger.info("stopping: draining %d in-flight messages", poller.stats().in_flight)
    finally:
        # Shutdown order: stop the poller (running handlers finish within its own
        # shutdown_timeout, unstarted messages are released), report the final counters,
        # then close the clients handler code opened in this process.
        poller.stop()
        channel.send(("stats", stats_fields(poller.stats())))
        close_clients()
