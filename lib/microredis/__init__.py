"""microredis: a Redis client for microcontrollers (MicroPython, CircuitPython) and CPython."""
# Submodules load on first use (module __getattr__), so a board that only needs the sans-IO reader, or only the
# core client, does not pay RAM for the rest.

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    RedisError, ReplyError, AuthenticationError, NoPermissionError, ConnectionError, TimeoutError,
    ProtocolError, MemoryFull, InvalidFuture,
)

_LAZY = {
    "ConnectionHandler": "connection",
    "Credentials": "credentials",
    "from_url": "url",
    "MemoryParameters": "resp",
    "Client": "commands",
    "CoreClient": "client",
    "Future": "client",
    "Subscription": "pubsub",
    "Message": "pubsub",
    "Outbox": "outbox",
    "Inbox": "inbox",
    "Sentinel": "sentinel",
    "Cluster": "cluster",
    "WatchError": "transaction",
}

def __getattr__(name):
    from .errors import optional  # (an ImportError that names the package file to install)
    mod = _LAZY.get(name)
    if mod is None:
        # MicroPython's `from microredis import x` asks here before it imports the submodule x
        if name in ("resp", "encoder", "client", "connection", "commands", "net", "clock", "ticks", "pubsub",
                    "outbox", "inbox", "sentinel", "aio", "cache", "cluster"):
            return optional(name)
        from .errors import text
        raise AttributeError(text("__getattr__", name))
    return getattr(optional(mod), name)


def __dir__():
    # CPython's dir() and IDE completion see the lazily loaded names too (MicroPython's dir() ignores this)
    names = list(globals())
    names.extend(_LAZY)
    return names
