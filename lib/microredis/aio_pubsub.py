"""Pub/Sub for the asyncio client: pubsub.Subscription (its queue, counting and frame checks) read by the client's
reader task; `async for message in sub`, `await sub.receive(timeout_ms)`."""
# The reader task (aio.py) dispatches every push (RESP3) or subscribed-mode array (RESP2) to Subscription._take_push,
# which queues messages and counts confirmations; the coroutines here only wait for that to happen.

from .errors import ConnectionError, ProtocolError, TimeoutError
from .pubsub import Subscription


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
        self._err = None  # the server's error reply to a subscribe command (e.g. SSUBSCRIBE before Redis 7, NOPERM)
        # Replies still due before the answer to the subscribe-family command in flight (one at a time): RESP3
        # confirms with pushes, but refuses with an error reply in the reply stream, which is told apart from the
        # replies of other tasks' commands by its place (the reader task counts them down)
        self._ahead = 0
        self._users = 0  # subscribe() calls on it in progress: a failed one keeps it for the others
        self._busy = False  # a task is between sending a subscribe-family command and taking its answer (_err)

    def _refused(self, err):
        # (the reader task) as Subscription._settle: the server confirms nothing more for this command
        self._want = 0
        self._err = err
        if self._r2 and not (self.channels or self.patterns or self.shard_channels):
            self._c._resp2_subscribed = False  # RESP2: the server never entered subscribed mode

    def _settle(self):
        if self._sync:
            Subscription._settle(self)
        # else: the reader task counts the confirmations; _confirmed() waits for them

    async def _confirmed(self):
        c = self._c
        clock = c._clock
        start = clock.ticks_ms()
        while self._want > 0:
            if c._conn is None:
                raise ConnectionError("connection lost before the server confirmed")
            ms = -1
            if c._timeout_ms:
                ms = c._timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
                if ms <= 0:
                    err = TimeoutError("subscription not confirmed within %d ms" % c._timeout_ms)
                    c._broken(err, None)
                    raise err
            await c._progress(ms)
        err = self._err
        if err is not None:
            self._err = None
            raise err

    async def _act(self, i, names, sub):
        c = self._c
        # one subscribe-family command in flight at a time (see _ahead), and its answer taken by its own task before
        # the next one is sent (else that one's _send would clear the refusal _err before its task saw it)
        while self._want > 0 or self._busy:
            if c._conn is None:
                raise ConnectionError("connection lost before the server confirmed")
            await c._progress(-1)  # (that command's own wait has the deadline)
        self._err = None  # (a refusal whose waiter was cancelled is not this command's)
        self._busy = True
        try:
            self._send(i, names, sub)
            self._ahead = c._pending  # _send sent every queued command first: their replies come before its answer
            await self._confirmed()
        finally:
            self._busy = False
            c._wake()  # a task waiting to send the next one

    async def subscribe(self, *channels):
        await self._act(0, channels, True)
        return self

    async def psubscribe(self, *patterns):
        await self._act(1, patterns, True)
        return self

    async def ssubscribe(self, *channels):
        await self._act(2, channels, True)
        return self

    async def unsubscribe(self, *channels):
        await self._act(0, channels, False)

    async def punsubscribe(self, *patterns):
        await self._act(1, patterns, False)

    async def sunsubscribe(self, *channels):
        await self._act(2, channels, False)

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

    async def ping(self, message=None):
        """PING through the subscription (allowed in RESP2 subscribed mode); the server's answer."""
        self._live()
        c = self._c
        if message is not None:
            c._check(message)  # before anything is written
        f = c._begin(None, None, 0, True)
        c._encoder.begin(1 if message is None else 2)
        c._encoder.arg(b"PING")
        if message is not None:
            c._encoder.arg(message)
        v = await c._end(f)
        if type(v) is list:  # RESP2 subscribed mode answers [b"pong", message]
            k = v[0] if len(v) == 2 else None
            if not ((k == b"pong") if type(k) is bytes else (k == "pong")):
                raise ProtocolError("PING in subscribed mode answered with %d elements, not [pong, message]" %
                                    len(v))
            return v[1] if message is not None else b"PONG"
        return v

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
        if not self.active:
            return
        c = self._c
        try:
            while self._want > 0 and c._conn is not None:
                await c._progress(-1)  # an answer still due (a cancelled or concurrent subscribe) is routed here
            if c._conn is not None:
                for i in range(3):
                    if self._sets(i):
                        await self._act(i, (), False)
                if self._r2 and self._count != 0:
                    raise ConnectionError("RESP2 subscribed mode could not be left; the connection is dropped")
        except BaseException as err:
            if c._conn is not None:
                c._broken(ConnectionError("subscription could not be closed: %r" % (err,)), None)
            raise err
        finally:
            self.active = False
            if c._sub is self:
                c._sub = None
                c._resp2_subscribed = False
            c._wake()  # an `async for` waiting on this subscription ends

    def close(self):
        # synchronous: AsyncClient.close() (the handler replacing the client) reads the confirmations itself
        self._sync = True
        try:
            Subscription.close(self)
        finally:
            self._sync = False


async def subscribe(client, kind, names):
    if client._conn is None:
        raise ConnectionError("client is closed")
    s = client._sub
    if s is None:
        s = AsyncSubscription(client)
        client._sub = s
        if s._r2:
            client._resp2_subscribed = True
    s._users += 1
    try:
        await s._act(kind, names, True)
    except BaseException:
        s._users -= 1
        # (cancelled while the server's answer is still due: the subscription stays, so that the reader task routes
        # that answer, a refusal included, to it and not to the next command's future)
        if (s._want == 0 or client._conn is None) and not (s.channels or s.patterns or s.shard_channels) and \
                client._sub is s and s._users == 0:
            s.active = False
            client._sub = None
            client._resp2_subscribed = False
        raise
    s._users -= 1
    return s
