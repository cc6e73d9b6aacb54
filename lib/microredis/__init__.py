"""microredis: a Redis client for microcontrollers (MicroPython, CircuitPython) and CPython."""

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    RedisError, ReplyError, AuthenticationError, NoPermissionError, ConnectionError, TimeoutError,
    ProtocolError, MemoryFull, InvalidFuture,
)
from .resp import MemoryParameters  # noqa: F401
from . import resp  # noqa: F401
from .connection import ConnectionHandler, Credentials, from_url  # noqa: F401
