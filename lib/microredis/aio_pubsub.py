"""Pub/Sub for the asyncio client: pubsub.Subscription (its queue, counting, frame checks and bodies) whose waits
await the client's reader task; `async for message in sub`, `await sub.receive(timeout_ms)`."""
# The reader task (aio.py) dispatches every push (RESP3) or subscribed-mode array (RESP2) to Subscription._take_push,
# which queues messages and counts confirmations, and hands the frames read while confirmations are due to _route.
# Subscribing, unsubscribing, ping and close are Subscription's bodies (coroutines), awaited here: this class only
# says how they wait.

from .errors import ConnectionError, ReplyError
from .pubsub import Subscription, _open


class AsyncSubscription(Subscription):
    """Made by `await client.subscribe(...)` (also psubscribe, ssubscribe) on an aio client. Messages are queued
    by the client's reader task as they arrive (at most 16, and memory_limit bytes; past that the oldest is
    dropped and counted in `dropped`). `async for m in sub` waits for each message; `async for m in
    sub.listen(timeout_ms)` ends when none came for timeout_ms. RESP3 shares the connection with commands;
    RESP2 needs a connection of its own (its subscribed mode refuses other commands)."""

    _sync = False  # close() from synchronous code (the handler replacing the client) reads confirmations itself

    def __init__(self, client):
        Subscription.__init__(self, client)
        self._ms = -1  # async for: how long to wait for a message (-1: for ever)
        self._busy = False  # a task is between sending a subscribe-family command and taking its answer (_err)

    # ---- how the bodies wait -----------------------------------------------------------------------------------
    async def _act(self, i, names, sub, keep=False):
        # One subscribe-family command in flight at a time (its refusal is told from other tasks' replies by its
        # place, _ahead), and its answer taken by its own task before the next one is sent (else that one would
        # clear the refusal _err before its task saw it)
        c = self._c
        while (self._want > 0 or self._busy) and not self._sync:
            if c._conn is None:
                raise ConnectionError("connection lost before the server confirmed")
            await c._progress(-1)  # (that command's own wait has the deadline)
        self._busy = True
        try:
            await Subscription._act(self, i, names, sub, keep)
        finally:
            self._busy = False
            c._wake()  # a task waiting to send the next one

    async def _confirmed(self):
        # the reader task counts the confirmations (_take_push) and takes a refusal (_route); ends early when the
        # connection is lost
        if self._sync:
            await Subscription._confirmed(self)
            return
        c = self._c
        start = c._clock.ticks_ms()
        while self._want > 0 and c._conn is not None:
            await c._progress(self._left(start))

    def _route(self, v):
        # (the reader task, while confirmations are due) an error reply where the subscribe-family command's answer
        # is due answers it; anything else is dispatched, counting down the replies due before that answer
        c = self._c
        if self._ahead == 0 and isinstance(v, ReplyError):
            self._refused(v)
        elif c._dispatch(v) and self._ahead:
            self._ahead -= 1

    # ---- the API ---------------------------------------------------------------------------------------------------
    async def subscribe(self, *channels):
        await self._act(0, channels, True, True)
        return self

    async def psubscribe(self, *patterns):
        await self._act(1, patterns, True, True)
        return self

    async def ssubscribe(self, *channels):
        await self._act(2, channels, True, True)
        return self

    async def unsubscribe(self, *channels):
        await self._act(0, channels, False)

    async def punsubscribe(self, *patterns):
        await self._act(1, patterns, False)

    async def sunsubscribe(self, *channels):
        await self._act(2, channels, False)

    async def ping(self, message=None):
        """PING through the subscription (allowed in RESP2 subscribed mode); the server's answer."""
        return await self._ping(message)

    async def receive(self, timeout_ms=0):
        """The next Message, or None when none arrives within timeout_ms (0: only what is queued; None or < 0:
        wait for one). ConnectionError once the subscription or its connection is closed."""
        c = self._c
        if timeout_ms is None:
            timeout_ms = -1
        clock = c._clock
        start = clock.ticks_ms()
        while True:
            if self._qn:
                return self._pop()
            self._live()
            if c._task is None:
                raise ConnectionError("the client's reader task has stopped")
            if timeout_ms == 0:
                return None
            ms = -1
            if timeout_ms > 0:
                ms = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
                if ms <= 0:
                    return None
            await c._progress(ms)

    def receive_into(self, buffer, timeout_ms=0):
        raise NotImplementedError("the aio client's reader task builds every message: use `await sub.receive()`")

    def listen(self, timeout_ms=None):
        """`async for m in sub.listen(1000)`: ends when no message came within 1000 ms (None: never ends)."""
        self._ms = -1 if timeout_ms is None else timeout_ms
        return self

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            m = await self.receive(self._ms)
        except ConnectionError:
            if self.active:
                raise  # the connection was lost
            m = None  # closed (aclose): the loop ends
        if m is None:
            raise StopAsyncIteration
        return m

    async def aclose(self):
        """Unsubscribe from everything (waiting for the confirmations); on failure the connection is dropped."""
        if self.active:
            try:
                await self._close()
            finally:
                self._c._wake()  # an `async for` waiting on this subscription ends

    def close(self):
        # synchronous: AsyncClient.close() (the handler replacing the client) reads the confirmations itself
        self._sync = True
        try:
            Subscription.close(self)
        finally:
            self._sync = False


def subscribe(client, kind, names):
    return _open(client, AsyncSubscription, kind, names)
