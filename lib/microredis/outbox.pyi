# Types of microredis.outbox for editors and type checkers (never installed on a board: .py only go there).
from typing import Any, Mapping, Optional, Union

from .client import CoreClient
from .connection import ConnectionHandler

class Outbox:
    """A bounded queue of readings for one stream: add() never touches the network; pump() delivers what it can,
    exactly once and in order, and never raises for network or storage trouble (see last_error)."""
    stream: Union[str, bytes]
    capacity: int
    max_bytes: Optional[int]
    maxlen: Optional[int]
    path: Optional[str]
    pending: int
    dropped: int
    damaged: int
    delivered: int
    duplicates: int
    conflicts: int
    last_error: Optional[BaseException]
    blocked: bool
    compact_at: int
    id_refresh_ms: int
    # the backoff between failed attempts (backoff.py)
    backoff_ms: int
    max_backoff_ms: int
    jitter: bool
    fails: int
    def note_failure(self, clock: Any) -> int: ...
    def wait_ms(self, clock: Any) -> int: ...
    def note_success(self) -> None: ...
    # handler: a ConnectionHandler, or an mr.Cluster (its handler_for(stream) is used)
    def __init__(self, handler: Union[ConnectionHandler, Any], stream: Union[str, bytes], capacity: int = 64,
                 max_bytes: Optional[int] = None, path: Optional[str] = None, maxlen: Optional[int] = None) -> None: ...
    @property
    def added(self) -> int: ...
    @property
    def flash_writes(self) -> int: ...
    def add(self, fields: Mapping[Any, Any]) -> None: ...
    def resume(self) -> None: ...
    def pump(self, timeout_ms: int = 0, client: Optional[CoreClient] = None) -> int: ...
    def close(self) -> None: ...
