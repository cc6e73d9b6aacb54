# Types of microredis.aio_inbox (the Inbox on the asyncio client) for editors and type checkers (never installed on a
# board: .py only go there).
from typing import Optional

from .aio import AsyncClient
from .inbox import Entry, Inbox

class AsyncInbox(Inbox):
    """`await inbox.next(timeout_ms)`, `await inbox.done(entry)`, `async for entry in inbox` (or
    `inbox.listen(timeout_ms, client)`), on an AsyncClient (client=) or one of the inbox's own."""
    async def next(self, timeout_ms: int = 0, client: Optional[AsyncClient] = None) -> Optional[Entry]: ...  # type: ignore[override]
    async def done(self, entry: Entry, client: Optional[AsyncClient] = None) -> None: ...  # type: ignore[override]
    def listen(self, timeout_ms: Optional[int] = None, client: Optional[AsyncClient] = None) -> AsyncInbox: ...
    def __aiter__(self) -> AsyncInbox: ...
    async def __anext__(self) -> Entry: ...
    async def aclose(self) -> None: ...
