"""asyncio client: the core's reply slots, reader, encoder and catalogue, awaited from tasks.

    c = await aio.connect(handler)      # dials and handshakes like handler.connect() (blocking, once)
    async with c:
        await c.set(b"k", b"v")
        n = await asyncio.gather(*(c.incr(b"n") for _ in range(50)))   # one write, 50 replies

Runs on MicroPython's and CircuitPython's asyncio and on CPython's (docs: README "asyncio").
"""
# Nothing here parses or encodes: a command is queued by the core exactly as the sync client queues it (its reply
# slot claimed in order) and returns a coroutine that waits for that slot's future. Three tasks per client: the
# reader parses whatever arrived and resolves slots in order through the core's _dispatch (pushes go to the
# subscription), so a reply can only reach the future of its own command, whoever awaits or stops awaiting it; the
# timer keeps the deadlines; the flusher, queued behind the tasks that are ready, sends the commands of one turn of
# the event loop in one write. A cancelled awaiter leaves its slot pending; its reply is read and kept like that
# of an unwaited sync future.

try:
    import asyncio
except ImportError:  # older MicroPython firmware
    import uasyncio as asyncio  # pyright: ignore[reportMissingImports]

from .errors import ConnectionError, RedisError, TimeoutError
from .resp import NEED_DATA
from .commands import Client
from .client import _dispatch, _remaining
from .client import _claim, _emit, _SET3, ok
from .encoder import check

_PENDING = 1  # client.py's state of a future waiting for its reply
_core = getattr(asyncio, "core", None)  # MicroPython/CircuitPython asyncio (absent from CPython's)
_sleep_ms = getattr(asyncio, "sleep_ms", None)  # MicroPython's allocates nothing
_CancelledError = asyncio.CancelledError
_Timeout = asyncio.TimeoutError


def _sleep(ms):
    if _sleep_ms is not None:
        return _sleep_ms(ms)
    return asyncio.sleep(ms / 1000)


def _timed(aw, ms):
    # aw bounded by ms; raises asyncio.TimeoutError
    if _core is not None:
        return asyncio.wait_for_ms(aw, ms)  # pyright: ignore[reportAttributeAccessIssue]  (_core)
    return asyncio.wait_for(aw, ms / 1000)


async def _evwait(ev):
    await ev.wait()


# ---- MicroPython/CircuitPython: what asyncio.Event.wait() and Stream.read() do, without a generator per wait -------
# `await x.wait()` returns x itself, an iterator whose first __next__ (in the awaiting task's own step, so no other
# task sees the flag) parks the task exactly as Event.wait / Stream.read park it, and whose next __next__ (when the
# task resumes) ends the await. The loop's SingletonGenerator (sleep_ms) works the same way.
class _Once:
    def __init__(self):
        self._arm = False
        self._stop = StopIteration()

    def wait(self):
        self._arm = True
        return self

    def __iter__(self):
        return self

    def __next__(self):
        if self._arm:
            self._arm = False
            if self._park():  # pyright: ignore[reportAttributeAccessIssue]  (each subclass has its own)
                return None
        self._stop.__traceback__ = None
        raise self._stop


class _Signal(_Once):
    # asyncio.Event for MicroPython's asyncio; pulse() wakes the waiters and leaves it clear
    def __init__(self):
        _Once.__init__(self)
        self.q = _core.TaskQueue()
        self.state = False

    def _park(self):
        if self.state:
            return False
        t = _core.cur_task
        self.q.push(t)
        t.data = self.q  # (as Event.wait: Task.cancel() takes the task off this queue)
        return True

    def pulse(self):
        q = self.q
        while q.peek():
            _core._task_queue.push(q.pop())

    def set(self):
        self.state = True
        self.pulse()


class _PollMP(_Once):
    # a pollable MicroPython socket (it has readinto): the task waits in the event loop's own poller
    def __init__(self, s):
        _Once.__init__(self)
        self.s = s

    def _park(self):
        _core._io_queue.queue_read(self.s)
        return True


def _queues():
    # the loop internals _Signal relies on, as MicroPython 1.2x has them (CircuitPython's asyncio may be older)
    try:
        q = _core.TaskQueue()
        return bool(q.push and q.pop and q.peek and q.remove and _core._task_queue.push and hasattr(_core, "cur_task"))
    except Exception:
        return False


class _EventSignal(asyncio.Event):
    # CPython, or an asyncio whose queues differ (CircuitPython's may be older): a generator per wait
    def pulse(self):
        self.set()
        self.clear()


if _core is None or not _queues():
    _Signal = _EventSignal  # noqa: F811


# ---- waiting until the socket is readable: one way per platform, picked once per client ----------------------
# wait() returns when the socket may have data; it has no timeout: deadlines are the timer task's (_timer)
class _Poll:
    # Any stack: no readiness signal, so look again every poll_ms (CircuitPython's socketpool sockets, fakes)
    def __init__(self, poll_ms):
        self.poll_ms = poll_ms

    def wait(self):
        return _sleep(self.poll_ms)


class _Reader:
    # CPython: the loop's add_reader
    def __init__(self, fd):
        self.fd = fd

    async def wait(self):
        loop = asyncio.get_running_loop()  # pyright: ignore[reportAttributeAccessIssue]  (CPython)
        fut = loop.create_future()
        try:
            loop.add_reader(self.fd, _done, fut)
        except NotImplementedError:  # (Windows' proactor loop) look again a little later instead
            await asyncio.sleep(0.002)
            return
        try:
            await fut
        finally:
            loop.remove_reader(self.fd)


def _done(fut):
    if not fut.done():
        fut.set_result(None)


def _waiter(transport, poll_ms):
    s = getattr(transport, "_sock", None)
    if poll_ms is None and s is not None:
        if _core is not None and hasattr(_core, "_io_queue") and hasattr(s, "readinto"):
            return _PollMP(s)
        if _core is None and hasattr(s, "fileno"):
            try:
                return _Reader(s.fileno())
            except Exception:
                pass
    return _Poll(poll_ms or 2)


def _set(c, key, value):
    # Client.set() without options (client.py's), in a frame of its own size
    if type(key) is not bytes:
        check(key)
    if type(value) is not bytes:
        check(value)
    _claim(c, ok, None, _SET3, key)
    return _emit(c, value)


class AsyncClient(Client):
    """The full client for asyncio: every command returns a coroutine; `await` gives its reply. Made by
    `await aio.connect(handler)`; `async with client:` closes it (`await client.aclose()`)."""

    # ms between looks at a socket asyncio cannot wait for (CircuitPython's): None is 2 ms there, and a number
    # makes every platform look that way
    poll_ms = None

    def __init__(self, conn, timeout_ms, clock):
        Client.__init__(self, conn, timeout_ms, clock)
        self._ev = None  # _Signal pulsed whenever slots or the subscription made progress
        self._timed_waits = 0  # waits on _ev bounded by wait_for (pub/sub), which may register late: see _wake
        self._task = None  # the reader task; None: not started (the handshake runs synchronously)
        self._timer = None  # the deadline task
        self._tick = None  # _Signal: wakes the deadline task when a command was sent while it was idle
        self._idle = False
        self._flusher = None  # the task that sends the commands of a turn
        self._fl = None  # _Signal: wakes it
        self._flushing = False  # it is woken for this turn
        self._wait_io = None
        self.push_handler_error = None  # the last exception a push_handler raised in the reader task

    def _start(self):
        self._wait_io = _waiter(self._transport, self.poll_ms)
        self._ev = _Signal()
        self._tick = _Signal()
        self._fl = _Signal()
        self._batch += 1  # every command is queued; the flusher sends a turn's commands together
        self._task = asyncio.create_task(self._run())
        self._timer = asyncio.create_task(self._deadlines())
        self._flusher = asyncio.create_task(self._flushes())

    # ---- sending: queue, and flush once per turn of the event loop -----------------------------------------
    def _end(self, f):
        if self._ev is None:
            return Client._end(self, f)  # the handshake (connection.py) waits its futures synchronously
        self._kick()
        return self._wait(f)

    def _kick(self):
        # The flusher is queued behind the tasks that are ready now, so whatever they send in this turn of the loop
        # goes out with this command, in one write
        if not self._flushing and self._unsent:
            self._flushing = True
            self._fl.pulse()

    async def _flushes(self):
        try:
            while self._conn is not None:
                if not self._flushing:  # (a pulse before this task first waited is not lost: the flag tells)
                    await self._fl.wait()
                self._flushing = False
                if self._unsent:
                    try:
                        self.flush()
                    except Exception:  # noqa: the send broke the connection and failed the futures: their awaiters
                        pass  # say why
        finally:
            self._flusher = None

    def flush(self):
        """Send what is queued now rather than at the end of this turn of the event loop."""
        Client.flush(self)
        if self._idle:
            # something sent is pending: the timer starts keeping its deadline (it awaits _tick directly, so it is
            # registered: set + clear loses nothing)
            self._idle = False
            self._tick.pulse()

    # the core's hot commands return a Future: give it the same treatment as the catalogue's
    def set(self, key, value, ex=None, px=None, nx=False, xx=False, keepttl=False, get=False, exat=None, pxat=None):
        if ex is None and px is None and exat is None and pxat is None and not (nx or xx or keepttl or get):
            return self._end(_set(self, key, value))  # (Client.set's frame would come from the heap a second time)
        return Client.set(self, key, value, ex, px, nx, xx, keepttl, get, exat, pxat)  # through _cmd and _end

    def get(self, key):
        return self._end(Client.get(self, key))

    def get_into(self, key, buffer):
        return self._end(Client.get_into(self, key, buffer))

    def incr(self, key):
        return self._end(Client.incr(self, key))

    def publish(self, channel, message):
        return self._end(Client.publish(self, channel, message))

    def scan_iter(self, *a, **kw):
        raise NotImplementedError("scan_iter() waits synchronously: loop over `await client.scan(cursor)` instead")

    # Transactions and scripts resolve their results by waiting synchronously (EXEC's array, EVAL after NOSCRIPT),
    # which the reader task cannot share: refused here, before anything is sent (they used to be sent and run, and
    # then wait() failed, so a retry would have run them twice)
    def transaction(self):
        raise NotImplementedError("transaction() is not available on the asyncio client: nothing was sent. Use a "
                                  "synchronous Client (handler.connect()) on another handler")

    def register_script(self, script):
        raise NotImplementedError("register_script() is not available on the asyncio client: nothing was sent. Use "
                                  "await client.fcall(...) or client.command(b\"EVALSHA\", ...), or a synchronous "
                                  "Client on another handler")

    def _claim_slow(self):
        # a full ring (frame_capacity replies pending) is emptied the sync client's way: the oldest reply is read
        # before this command is queued, which holds the loop for that reply (size frame_capacity to the tasks)
        s = self._sub
        if self._ev is not None and self._pending == self._cap and s is not None and s._want > 0:
            # that read could not tell a refusal of the subscribe command from a command's reply (aio_pubsub.py)
            raise RedisError("all %d reply slots are pending while a subscription awaits its confirmation: raise "
                             "frame_capacity, or await the subscribe call first" % self._cap)
        Client._claim_slow(self)
        self._wake()

    # ---- receiving: one reader task per client -------------------------------------------------------------
    def _push(self, v):
        # A push_handler's error belongs to no command: kept, also when the push is met by a full ring's synchronous
        # read (_claim_slow), where raising it would fail an unrelated task's call (its frame is consumed: in step)
        try:
            return Client._push(self, v)
        except Exception as e:
            if not self._handler_raised:
                raise
            self._handler_raised = False
            self.push_handler_error = e
            return True

    async def _wait(self, f):
        while f._state == _PENDING:
            if self._task is None:
                raise RedisError("this client is not running: make it with `await aio.connect(handler)`")
            await self._ev.wait()
        return f.wait()  # resolved: hands over the value (or raises its error) and recycles the future

    def _wake(self):
        ev = self._ev
        if ev is None:
            return
        if self._timed_waits:
            # wait_for runs a wait in a task of its own, which may register on the signal after this: it gets a
            # fresh one and the old one stays set, so that late waiter still sees this wake
            self._ev = _Signal()
            ev.set()
        else:
            ev.pulse()  # every waiter awaits it directly, so it is registered already

    async def _progress(self, ms):
        # (aio_pubsub.py) until the reader task made progress, or ms passed (< 0: no limit)
        ev = self._ev
        if ms < 0:
            await ev.wait()
            return
        self._timed_waits += 1
        try:
            await _timed(_evwait(ev), ms)
        except _Timeout:
            pass
        finally:
            self._timed_waits -= 1

    async def _run(self):
        # The reader: frames in order to their slots (or to the subscription), waiting for the socket in between. A
        # push_handler's own error (its frame was consumed, all is in step) is caught here, in this task's frame,
        # made once: `except ... as e` in _drain made MicroPython take _drain's frame from the heap on every call.
        try:
            while self._conn is not None:
                try:
                    busy = self._step()
                except Exception as e:
                    if not self._handler_raised:
                        raise  # the read already broke the connection
                    self._handler_raised = False
                    self.push_handler_error = e  # (no caller to raise it to: kept where the user can see it)
                    self._wake()  # (the frames before it were taken) then on with the frames after it
                    continue
                if busy:
                    await _sleep(0)  # data keeps coming: let the tasks it woke run before reading on
                else:
                    await self._wait_io.wait()
        except _CancelledError:
            if self._conn is not None:
                raise  # stopped (aclose, the loop ending); else the timer broke the connection: end quietly
        except Exception:  # noqa: the connection is broken (the futures carry the error)
            if self._conn is not None:
                self._lost(ConnectionError("the asyncio reader stopped"))
        finally:
            self._task = None
            self._wake()

    async def _deadlines(self):
        # The timer: sleeps until the oldest sent command's deadline (replies come in order, so it is the first to
        # pass); when it passes, the connection is broken as the sync client breaks it and the reader is stopped.
        # With nothing sent pending it waits for the next flush. The reader itself never needs a timeout.
        try:
            while self._conn is not None and self._task is not None:
                ms = -1
                if self._pending > self._unsent:  # (commands still in the send buffer have no deadline yet)
                    ms = _remaining(self, self._head)
                if ms == 0:
                    self._broken(TimeoutError("no reply within %d ms" % self._timeout_ms), self._fut[self._head])
                    return
                if ms > 0:
                    await _sleep(ms)
                else:
                    self._idle = True
                    await self._tick.wait()
        finally:
            self._timer = None

    def _step(self):
        # Takes the frames buffered, receives without waiting and takes those, and receives once more: True when
        # that brought data too (it keeps coming: the caller lets the woken tasks run first), False when the socket
        # is drained and only asyncio can tell when there is more (a TLS layer may hold bytes the poller cannot see,
        # so never wait before a receive came back empty)
        self._drain()
        if self._conn is None or not self._recv(0):
            return False
        self._drain()
        return self._conn is not None and self._recv(0)

    def _drain(self):
        # (a push_handler's own error goes up to _run, which keeps it and calls _step again)
        got = False
        while self._conn is not None:
            self._handler_raised = False
            v = self._parse()
            if v is NEED_DATA:
                break
            s = self._sub
            if s is None or s._want == 0:
                _dispatch(self, v)
            else:
                s._route(v)  # (aio_pubsub.py) where the subscribe command's answer is due, an error answers it
            got = True
        if got:
            self._wake()

    def _broken(self, err, timed_out):
        # wherever the connection broke (a read, a send, a deadline, a full ring read synchronously), the tasks
        # stop and every awaiter wakes to its future's error
        Client._broken(self, err, timed_out)
        if self._ev is not None:
            self._stop()

    # ---- closing ---------------------------------------------------------------------------------------------
    async def aclose(self):
        """Read the replies still pending (each within its deadline), unsubscribe, stop the reader task and hand
        the clean socket back to the handler."""
        if self._conn is not None:
            s = self._sub
            if s is not None and s.active:
                await s.aclose()
            while self._pending and self._conn is not None and self._task is not None:
                await self._ev.wait()
        self._stop()
        Client.close(self)  # nothing left to read: only hands the socket back (or drops a broken one)

    def close(self):
        # synchronous (the handler's next connect() closes the client it replaces): blocks for pending replies
        try:
            Client.close(self)
        finally:
            self._stop()

    def _stop(self):
        t = self._task
        self._task = None
        _cancel(t)
        t = self._timer
        self._timer = None
        _cancel(t)
        t = self._flusher
        self._flusher = None
        _cancel(t)
        self._wake()

    async def __aenter__(self):
        return self

    async def __aexit__(self, a, b, c):
        await self.aclose()
        return False

    # ---- pub/sub -----------------------------------------------------------------------------------------------
    async def subscribe(self, *channels):
        """`sub = await client.subscribe(b"ch")`: an AsyncSubscription once the server confirmed."""
        return await _subscribe(self, 0, channels)

    async def psubscribe(self, *patterns):
        return await _subscribe(self, 1, patterns)

    async def ssubscribe(self, *channels):
        return await _subscribe(self, 2, channels)


def _cancel(t):
    if t is not None:
        try:
            t.cancel()
        except RuntimeError:
            pass  # (MicroPython: a task cannot cancel itself; it ends by itself once the client is closed)


async def _subscribe(c, kind, names):
    from .aio_pubsub import subscribe
    return await subscribe(c, kind, names)


async def connect(handler, stack=None, clock=None):
    """An AsyncClient on the handler's connection: dials and handshakes (synchronously) when there is none, or
    when the last one broke (a timeout, a lost connection): awaiting connect() again is how an aio client
    reconnects."""
    if getattr(handler, "_retry", None) is not None:
        raise ValueError("h.retry() and h.health_check() drive the synchronous client; an aio client reconnects "
                         "with `await aio.connect(handler)` (use a handler without them)")
    c = handler.connect(stack, clock, AsyncClient)
    c._start()
    return c
