# Types of microredis.sentinel for editors and type checkers (never installed on a board: .py only go there).
from typing import Any, Iterable, List, Optional, Tuple

from .connection import ConnectionHandler
from .credentials import Credentials

_Address = Tuple[str, int]

class Sentinel:
    """Sentinel([(host, port), ...], "mymaster", sentinel_auth=None, timeout_ms=1000).handler() -> handler."""
    sentinels: List[_Address]
    service_name: str
    last_error: Optional[BaseException]
    def __init__(self, sentinels: Iterable[_Address], service_name: str, sentinel_auth: Optional[Credentials] = None,
                 timeout_ms: int = 1000) -> None: ...
    def handler(self, protocol: int = 3, fallback: bool = False) -> ConnectionHandler: ...
    def master_address(self, stack: Any = None, clock: Any = None) -> _Address: ...

class SentinelHandler(ConnectionHandler):
    sentinel: Sentinel
    def __init__(self, sentinel: Sentinel, protocol: int = 3, fallback: bool = False) -> None: ...
