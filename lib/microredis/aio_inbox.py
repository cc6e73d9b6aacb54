"""AsyncInbox: the Inbox on the asyncio client (`async for entry in inbox`, `await inbox.done(entry)`)."""
# inbox.Inbox with its waits awaited: the state, the rare reads and acknowledgements (coroutines there, awaited here)
# and the steps around the waits are the Inbox's; this class says only how next(), done() and a read wait, and dials
# with aio.connect(). A BLOCK read waits in the client's reader task, so the other tasks run meanwhile.

from .inbox import Inbox, _run
from . import aio


class AsyncInbox(Inbox):
    """mr.Inbox for asyncio: `await inbox.next(timeout_ms)`, `await inbox.done(entry)`, `async for entry in inbox`
    (each entry as it comes; `inbox.listen(timeout_ms, client)` ends when none came for timeout_ms). client=: the
    application's AsyncClient; without it a client of the inbox's own, `await aio.connect(handler)` (a handler
    without retry(): the inbox paces its re-dials itself). Never raises for network or storage trouble."""

    _aio = True
    _ms = None  # listen(): how long `async for` waits for an entry (None: for ever)
    _on = None  # listen(): the client it reads on
    _mine = None  # the client of its own that it dialled last (aclose() closes it)

    async def next(self, timeout_ms=0, client=None):
        """The next command (an Entry), or None once timeout_ms passed (0: what is there now); see Inbox.next."""
        e = self._ready()
        if e is not None:
            return e
        clock = self._clock
        start = clock.ticks_ms()
        while not self.blocked:
            e = self._ready()
            if e is not None:
                return e
            c = self._session(client, clock)
            n = -1
            if c is not None:
                try:
                    w = self._ask(c, timeout_ms - clock.ticks_diff(clock.ticks_ms(), start))
                    n = await self._slow(c) if w is None else self._got(await w)
                except Exception as e:
                    self._trouble(e)
                except BaseException:
                    self._rescan()  # cancelled: what the read was given waits in our pending list, read first
                    raise
                if self._bind(c) is None or n > 0:
                    continue  # re-dialled during the read (our pending entries first), or entries came: read on
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
            if left <= 0 or self.blocked:
                return None
            if n < 0:
                await aio._sleep(max(1, min(left, self.wait_ms(clock), 1000)))
        return None

    def _connect(self):
        # aio.connect() dials and handshakes synchronously (it never suspends) and starts the client's tasks
        c = self._mine = _run(aio.connect(self._h))
        return c

    async def done(self, entry, client=None):
        """"applied up to entry.id" on flash (with path), then the XACK; see Inbox.done."""
        a = self._mark(entry)
        c = self._session(client, self._clock)
        if c is None:
            return
        try:
            await c._cmd(None, a)
        except Exception as e:
            self._trouble(e)
            return
        self.note_success()

    def listen(self, timeout_ms=None, client=None):
        """`async for entry in inbox.listen(1000, client)`: ends when no entry came for 1000 ms (None: never), or
        once the inbox is blocked (see last_error)."""
        self._ms = timeout_ms
        self._on = client
        return self

    def __aiter__(self):
        return self

    async def __anext__(self):
        ms = self._ms
        while not self.blocked:
            e = await self.next(1000 if ms is None else ms, self._on)
            if e is not None:
                return e
            if ms is not None:
                break
        raise StopAsyncIteration

    async def aclose(self):
        """Closes the inbox's own client (one passed as client= stays the application's)."""
        c = self._mine
        self._mine = None
        if c is not None:
            await c.aclose()
