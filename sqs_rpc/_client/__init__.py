"""The calling side: :class:`RpcClient`, :class:`AsyncRpcClient` and what serves them.

``client`` is the facade and ``state`` its lifecycle. ``request`` encodes requests, and
``transport`` sends them and owns the reply channel: the reply queue, its heartbeat, the
reply poller and the pending calls. ``process`` closes clients at exit and resets them in a
forked child.
"""
