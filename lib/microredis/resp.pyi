# Types of microredis.resp for editors and type checkers (never installed on a board: .py only go there).
# Public: MemoryParameters. The reader's internals are the package's own (typed Any through __getattr__).
from typing import Any, Optional

class MemoryParameters:
    """buffer_size: receive buffer bytes, allocated once; frame_capacity: replies that may be pending at once;
    memory_limit: most bytes one reply may occupy while parsed (None: no cap but the machine's memory)."""
    buffer_size: int
    frame_capacity: int
    memory_limit: Optional[int]
    def __init__(self, buffer_size: int = 512, frame_capacity: int = 8, memory_limit: Optional[int] = 16384) -> None: ...

MAX_DEPTH: int
NEED_DATA: Any

def __getattr__(name: str) -> Any: ...  # the reader's internals (Reader, Push, copy ...)
