"""The calling side: :class:`RpcClient`, :class:`AsyncRpcClient` and their reply channel.

The reply channel is the reply queue, its heartbeat, the reply poller and the map of pending
calls; ``process`` keeps them safe across fork and interpreter exit.
"""
