# Types of microredis.inbox for editors and type checkers (never installed on a board: .py only go there).
from typing import Any, Dict, Optional, Union

from .client import CoreClient
from .connection import ConnectionHandler

class Entry:
    """One command: .id (the stream entry ID, bytes), .fields (a dict), .deliveries (the server's delivery count)."""
    id: bytes
    fields: Dict[Any, Any]
    deliveries: int
    def __init__(self, id: bytes, fields: Dict[Any, Any], deliveries: int = 1) -> None: ...

class Inbox:
    """Commands for one consumer of a group on a stream, each handed over until done(). next() and done() never
    raise for network or storage trouble (see last_error)."""
    stream: Union[str, bytes]
    group: Union[str, bytes]
    consumer: Union[str, bytes]
    path: Optional[str]
    count: int
    block_ms: int
    max_deliveries: int
    dead_letter: bytes
    redelivered: int
    skipped: int
    dead: int
    last_error: Optional[BaseException]
    blocked: bool
    # the backoff between failed attempts (backoff.py)
    backoff_ms: int
    max_backoff_ms: int
    jitter: bool
    fails: int
    def note_failure(self, clock: Any) -> int: ...
    def wait_ms(self, clock: Any) -> int: ...
    def note_success(self) -> None: ...
    # handler: a ConnectionHandler, or an mr.Cluster (the inbox takes its handler_for(stream))
    def __init__(self, handler: Union[ConnectionHandler, Any], stream: Union[str, bytes], group: Union[str, bytes],
                 consumer: Union[str, bytes], path: Optional[str] = None, count: int = 4, block_ms: int = 1000,
                 max_deliveries: int = 5, dead_letter: Optional[Union[str, bytes]] = None) -> None: ...
    @property
    def pending(self) -> int: ...
    def resume(self) -> None: ...
    def next(self, timeout_ms: int = 0, client: Optional[CoreClient] = None) -> Optional[Entry]: ...
    def done(self, entry: Entry, client: Optional[CoreClient] = None) -> None: ...
    # what the synchronous and the asyncio inbox share (aio_inbox.py's AsyncInbox awaits it): not API
    _h: Any
    _aio: bool
    _ready: Any
    _clock: Any
    _session: Any
    _ask: Any
    _got: Any
    _slow: Any
    _bind: Any
    _rescan: Any
    _trouble: Any
    _mark: Any
    _connect: Any

def _run(co: Any) -> Any: ...
