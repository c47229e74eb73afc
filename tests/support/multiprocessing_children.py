"""What the multiprocessing tests run in their child processes (importable by every start method).

Each child makes a call and returns without ``close()``: the process ends as multiprocessing
ends it, with ``os._exit()``, so ``atexit`` never runs there.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import Any

from sqs_rpc import RpcClient

# The process's client, as a module-level client would be: it lives until the process ends.
# (A client dropped without close() is not closed at exit: it is gone by then.)
_process: dict[str, RpcClient] = {}


def call_with_inherited_client(client: RpcClient, queue_url: str, conn: Connection) -> None:
    """A forked child: use the client it inherited from its parent (the documented pattern)."""
    reply = client.call(queue_url, "from a forked child", timeout=30)
    conn.send((reply, client.reply_queue_url))
    conn.close()


def call_with_own_client(options: dict[str, Any], queue_url: str, conn: Connection) -> None:
    """Any child: make the process's client, call, and leave it open."""
    client = _process["client"] = RpcClient(**options)
    reply = client.call(queue_url, "from a child", timeout=30)
    conn.send((reply, client.reply_queue_url))
    conn.close()


def make_worker_client(options: dict[str, Any]) -> None:
    """A Pool initializer: one client per worker process, never closed."""
    _process["client"] = RpcClient(**options)


def call_from_worker(queue_url: str, n: int) -> tuple[Any, str | None]:
    """A Pool task: a call with the worker's client."""
    client = _process["client"]
    return client.call(queue_url, n, timeout=30), client.reply_queue_url
