"""The core client: the reply ring and its futures, sending (implicit pipelining, hot commands) and receiving."""
# Replies arrive in command order, so pending commands form a ring of `frame_capacity` slots; the oldest slot is
# the one the next reply belongs to. Futures are recycled once wait() has handed over their value, which keeps the
# steady state free of allocation. This module is the one owner of the ring, the future pool and the Future states:
# the sending half (claiming slots, encoding with rollback, pipeline(), command(), the hot commands), the future
# pool and Future, and the receiving half (the fast path, dispatch, deadlines, breaking the connection) are its
# functions; CoreClient binds the public ones as its methods. The command catalogue lives in commands.py so the core
# can be loaded alone.
# MicroPython takes the frame of a function from the heap on every call when its locals + stack exceed 11 words
# (an exception handler counts 3): the hot commands below are split so that every frame from get()/incr()/
# publish() to the encoder stays under that, and the try sits in one small function (_emit).

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import TimeoutError, InvalidFuture, MemoryFull, ProtocolError, RedisError, ConnectionError, text
from .encoder import check, upper
from .resp import NEED_DATA, Push, fast, SLOW as _SLOW, OK as _OK, OK_STR as _OK_STR

# Future states
_FREE = const(0)  # in the pool (or waited: its value was handed over)
_PENDING = const(1)
_DONE = const(2)
_INVALID = const(3)

# Builtins used on the hot path, as module globals: MicroPython looks a builtin name up in the module's globals first
# (a miss, probing a nearly full hash table) and then in the builtins table; a global is one cached hit.
_len = len
_type = type
_bytes = bytes
_bytearray = bytearray
_memoryview = memoryview
_isinstance = isinstance
_Exception = Exception

# Reply conversions: None (the reply as read) or a function applied to the reply when it resolves its future
# (ok, the catalogue's). A conversion that raises makes the future's ProtocolError.


# ---- the future pool and Future --------------------------------------------------------------------------
def take_future(c):
    # a recycled future for a new command; a fixed ring, not list.pop(): MicroPython shrinks a list on pop and would
    # re-grow it on append
    n = c._pool_n
    if n == 0:
        return Future(c, _PENDING)  # only until every slot has a recycled future, or for futures never waited
    k = c._pool_head
    f = c._pool[k]
    c._pool[k] = None
    k += 1
    c._pool_head = k - len(c._pool) if k >= len(c._pool) else k
    c._pool_n = n - 1
    f._state = _PENDING
    return f


def recycle(c, f):
    # Waited futures are reissued first-in first-out, so a handle kept after wait() is detected as stale for as long
    # as possible (until frame_capacity more futures have been waited).
    n = c._pool_n
    p = len(c._pool)
    if n < p:
        k = c._pool_head + n
        c._pool[k - p if k >= p else k] = f
        c._pool_n = n + 1


class Future:
    """The pending reply of one command. ready() never blocks; wait() blocks until the reply, its deadline or an
    error. wait() hands the value over once: the Future is then recycled for a later command, so do not keep it."""

    def __init__(self, client, state=_FREE):
        self._client = client
        self._state = state
        self._value = None

    def ready(self):
        """True once wait() will not block: the reply has arrived or the future has failed (its deadline passed,
        the connection broke), and wait() then raises that error. Never blocks and never raises the future's
        error; only an exception of the client's push_handler comes through."""
        if self._state == _PENDING:
            c = self._client
            try:
                c._poll()
            except RedisError:
                if self._state == _PENDING and c._conn is not None:
                    raise  # not the connection failing: the push_handler's own error
        return self._state != _PENDING

    def wait(self):
        if self._state == _PENDING:
            try:
                read_until(self._client, self)
            except RedisError:
                # Another future's failure broke the connection: this one raises its own error below. When the
                # read itself failed (the network), its exception says more than the futures' copy.
                if self._state == _PENDING and self._client._retry is not None and self._client._retry.resume(self):
                    pass  # kept by retry_on (retry.py): re-sent on a new connection, resolved or failed there
                elif self._state == _PENDING or self._value is self._client._dropped:
                    raise
        if self._state != _DONE:
            self._odd()
        v = self._value
        self._value = None
        self._state = _FREE
        recycle(self._client, self)
        if _isinstance(v, _Exception):
            self._client._seen_error(v)
            raise v
        return v

    def _odd(self):
        if self._state == _FREE:
            raise InvalidFuture(text("_odd"))
        raise self._value  # _INVALID: every wait() of a broken future raises its error (it is never recycled)

    def __repr__(self):
        return "<Future %s>" % ("free", "pending", "done", "invalid")[self._state]


class Batch:
    # `with client.pipeline():` - allocated once per client; nesting is counted
    def __init__(self, client):
        self._client = client

    def __enter__(self):
        self._client._batch += 1
        return self._client

    def __exit__(self, a, b, c):
        cl = self._client
        cl._batch -= 1
        if cl._batch == 0 and cl._conn is not None:
            cl.flush()
        return False


# ---- the sending half ---------------------------------------------------------------------------------------
def ok(v):
    """Reply conversion of commands that answer +OK: True (nil and other values pass through)."""
    # compare like with like: MicroPython warns on bytes == str
    if (v == b"OK") if _type(v) is _bytes else (v == "OK"):
        return True
    return v


_SET3 = b"*3\r\n$3\r\nSET\r\n"
_GET2 = b"*2\r\n$3\r\nGET\r\n"
_INCR2 = b"*2\r\n$4\r\nINCR\r\n"
_PUBLISH3 = b"*3\r\n$7\r\nPUBLISH\r\n"
_NO = object()  # "no second argument" for _emit()


# The hot path is plain functions taking the client: on MicroPython a method call first misses in the instance's
# attribute table and in every class before the one defining it (Client, CoreClient, ...), and each miss probes a
# hash table; a module function is one global lookup.

def _claim(c, conv, into, name, key):
    # Claims a slot for one more reply (conv: None or a function applied to the reply; name/key: for error
    # messages). Arguments have been checked, so nothing after this can fail half-way except I/O, which breaks the
    # connection anyway. The encoder's position is kept so that a failed encoding can be rolled back (_unclaim).
    if c._conn is None or c._resp2_subscribed or c._raw_replies or c._pending == c._cap or c._retry is not None:
        c._claim_slow()  # a method: the asyncio client (aio.py) adds its own check
    i = c._head + c._pending  # (_slot(c, c._pending), inline on the hot path)
    i = i - c._cap if i >= c._cap else i
    c._fut[i] = take_future(c)
    c._conv[i] = conv
    c._into[i] = into
    c._name[i] = name
    c._key[i] = key
    # a reply queued behind a blocking one cannot come sooner: it inherits the allowance (0 for a hot command) of
    # the one claimed before it (_last, while pending)
    c._allow[i] = c._allow[c._last] if c._pending else 0
    c._pending += 1
    c._unsent += 1
    c._last = i
    i = c._encoder  # (a local less: this frame stays off the heap)
    c._mark = i.n
    c._mark_flushes = i.flushes


# Every ring index (reply slots, the future pool, the subscription's queue) is written one way: start + offset,
# less the ring's size once if past its end: `i - size if i >= size else i` (offsets never exceed the size).
def _slot(c, k):
    # the reply slot k places after the oldest pending one (k = _pending: the next free slot)
    i = c._head + k
    return i - c._cap if i >= c._cap else i


def _emit(c, b):
    # Encodes the hot command just claimed: its prefix and first argument (kept in its slot for error messages)
    # and b (_NO: none), then sends it unless a pipeline() block is open. A try makes MicroPython take the frame
    # from the heap unless the function has at most two locals and binds no exception name: hence _put().
    try:
        _put(c, b)
    except TimeoutError:  # (clauses, not a bound name: see above) the futures learn what the transport said
        _unclaim(c, TimeoutError)
        raise
    except RedisError:
        _unclaim(c, ConnectionError)
        raise
    except BaseException:
        _unclaim(c, ProtocolError)
        raise
    if c._batch == 0:
        _flush(c)
    return c._fut[c._last]


def _put(c, b):
    i = c._last
    if _put_fast(c._encoder, c._name[i], c._key[i], b):
        return
    c._encoder.raw(c._name[i])
    c._encoder.arg(c._key[i])
    if b is not _NO:
        c._encoder.arg(b)


def _buffer(x):
    # bytes, bytearray or a memoryview (of bytes: check() refused the others): its len() is its size in bytes
    t = _type(x)
    return t is _bytes or t is _bytearray or t is _memoryview


# The common case written straight into the encoder's send buffer (e.buf, e.n: docs/DESIGN.md "Encoder"): byte
# strings none larger than the encoder sends uncopied (a quarter of the buffer). Anything else (str, int, float,
# large values) goes through Encoder.raw()/arg(), which flush as needed.
def _put_fast(e, p, a, b):
    # False (nothing written) if the command is not for this path
    k = _len(e.buf) >> 2
    if (_type(a) is not _bytes and not _buffer(a)) or _len(a) > k:
        return False
    if b is _NO:
        n = _len(p) + _len(a) + 16  # (at most)
    elif (_type(b) is not _bytes and not _buffer(b)) or _len(b) > k:
        return False
    else:
        n = _len(p) + _len(a) + _len(b) + 32
    if _len(e.buf) - e.n < n:
        if n > _len(e.buf):
            return False
        e.flush()  # (a pipeline's next command starts the buffer again rather than going the slow way)
    # nothing is stored in e.n until the command is complete, so an interruption leaves no half command
    n = e.n + _len(p)
    e.buf[e.n:n] = p
    n = _bulk(e.buf, n, a)
    if b is not _NO:
        n = _bulk(e.buf, n, b)
    e.n = n
    return True


def _bulk(buf, n, a):
    # $<len>\r\n<a>\r\n at buf[n:], returns its end
    k = _len(a)
    buf[n] = 36  # $
    n += 1
    if k >= 10:
        n = _put_digits(buf, n, k)
    else:
        buf[n] = 48 + k
        n += 1
    buf[n] = 13
    buf[n + 1] = 10
    n += 2
    buf[n:n + k] = a
    n += k
    buf[n] = 13
    buf[n + 1] = 10
    return n + 2


def _put_digits(buf, n, k):
    # the decimal digits of k >= 10 at buf[n:], returns their end
    d = 10
    while d * 10 <= k:
        d *= 10
    while d:
        buf[n] = 48 + k // d % 10
        n += 1
        d //= 10
    return n


def _unclaim(c, kind):
    # Encoding failed after the slot was claimed. If nothing of the command left the send buffer, forget it and the
    # connection stays usable; otherwise the server holds half a command, so the connection is dropped and the
    # pending futures get an error of `kind` (the transport's, or ProtocolError for anything else). (The exception
    # itself goes on to the caller.)
    e = c._encoder
    if e.flushes != c._mark_flushes:
        if c._conn is not None:
            c._broken(kind("a command failed half-sent (the exception raised with it says why)"), None)
        return
    e.n = c._mark
    i = c._last
    f = c._fut[i]
    c._fut[i] = None
    c._into[i] = None
    c._name[i] = None
    c._key[i] = None
    c._pending -= 1
    c._unsent -= 1
    c._last = _slot(c, c._pending - 1)  # the newest pending slot again (its allowance is inherited next)
    f._state = _FREE
    recycle(c, f)


def _flush(c):
    if c._unsent:
        try:
            c._encoder.flush()
        except TimeoutError:  # whatever interrupted it, the server may hold half a command
            if c._conn is not None:
                c._broken(TimeoutError("connection dropped: a send failed or was interrupted"), None)
            raise
        except BaseException:
            if c._conn is not None:
                c._refusal(None)  # (a refusal on accept that a reset hid is raised instead)
                c._broken(ConnectionError("connection dropped: a send failed or was interrupted"), None)
            raise
        _stamp(c)


def _stamp(c):
    # the deadline of each reply counts from when its command was sent
    now = c._clock.ticks_ms()
    i = _slot(c, c._pending - c._unsent)
    while c._unsent:
        c._sent[i] = now
        i += 1
        i = i - c._cap if i >= c._cap else i
        c._unsent -= 1


# The methods of CoreClient that send (client.py binds them in its class body, so the class that creates the reply
# slots is the one whose methods use them): plain functions here, called directly on the hot path.

def _claim_slow(c):
    if c._retry is not None:
        c._retry.before(c)  # retry.py: re-dial a lost connection, PING an idle one
    if c._conn is None:
        # (the text stays here, not in texts.py: a board meets it in an outage, when loading a module costs most)
        raise ConnectionError("client is closed: h.connect() gives a connected one (h.retry(): re-dials by itself)")
    if c._resp2_subscribed and not c._sub_ping:
        raise RedisError(text("_resp2_subscribed"))
    if c._raw_replies:
        from .rare import raw_unread
        raw_unread(c._raw_replies)
    while c._pending == c._cap:
        # every slot pending: the oldest reply is read first (never an error for the caller)
        c._read_one(None)


def _begin(c, conv, into, extra=0, allow=False, name=None, key=None):
    # the general form of _claim: a reply deadline allowance (ms added to the timeout of a blocking command;
    # -1: no deadline) and (allow=True, pubsub.py) a PING in RESP2 subscribed mode
    c._sub_ping = allow
    try:
        _claim(c, conv, into, name, key)
    finally:
        c._sub_ping = False
    i = c._last
    x = c._allow[i]  # inherited from the reply queued before it (0 when none)
    if not (x < 0 or (extra >= 0 and x > extra)):
        c._allow[i] = extra
    return c._fut[i]


def _end(c, f):
    if c._batch == 0:
        _flush(c)
    return f


def _cmd(c, conv, args, into=None, extra_ms=0):
    # what _begin() does, in frames of at most 11 words (a catalogue command took 400 bytes of heap frames here)
    c._sub_ping = False
    _claim_args(c, conv, into, args)
    if extra_ms:  # (as _begin; 0 changes nothing)
        x = c._allow[c._last]
        if not (x < 0 or (extra_ms >= 0 and x > extra_ms)):
            c._allow[c._last] = extra_ms
    _encode(c, args)
    return c._end(c._fut[c._last])  # a method: the asyncio client (aio.py) returns an awaitable instead


def _claim_args(c, conv, into, args):
    # every argument checked before anything is claimed or written
    for a in args:
        check(a)
    a = args[1] if len(args) > 1 else None
    _claim(c, conv, into, args[0], a)


def _encode(c, args):
    try:
        c._encoder.command(args)  # (which checks them again: cheaper than a function more in every board's RAM)
    except TimeoutError:
        _unclaim(c, TimeoutError)
        raise
    except RedisError:
        _unclaim(c, ConnectionError)
        raise
    except BaseException:
        _unclaim(c, ProtocolError)
        raise


# ---- sending --------------------------------------------------------------------------------------------------
# flush(): send what is queued (inside a pipeline() block, commands wait until its end or a full buffer)
flush = _flush


def pipeline(c):
    """`with client.pipeline():` coalesces the commands issued in the block into one send."""
    return c._pipe


def command(c, *args):
    """Any command; returns a Future of the raw reply. Commands that would break the matching of replies to
    futures (the subscribe family, MONITOR, CLIENT REPLY, RESET, HELLO, QUIT) are refused with ValueError."""
    if not args:
        raise ValueError(text("command"))
    _refuse(args)
    return _cmd(c, None, args)


# ---- hot-path commands: constant prefixes, no argument tuples, nothing allocated once warm --------------------
# (named as the methods they become: `set`/`get` shadow nothing this module uses)
def set(c, key, value, ex=None, px=None, nx=False, xx=False, keepttl=False, get=False, exat=None, pxat=None):
    if ex is None and px is None and exat is None and pxat is None and not (nx or xx or keepttl or get):
        if _type(key) is not _bytes:
            check(key)
        if _type(value) is not _bytes:
            check(value)
        _claim(c, ok, None, _SET3, key)
        return _emit(c, value)
    return _set(c, key, value, ex, px, nx, xx, keepttl, get, exat, pxat)


def get(c, key):
    if _type(key) is not _bytes:  # (bytes pass check(): a call saved)
        check(key)
    _claim(c, None, None, _GET2, key)
    return _emit(c, _NO)


def get_into(c, key, buffer):
    """GET whose value is copied into `buffer`; wait() gives the length, or None for a missing key."""
    t = type(buffer)
    if t is not bytearray and t is not memoryview:  # isinstance(x, (a, b)) would build a tuple
        raise TypeError(text("buffer"))
    if t is memoryview:
        check(buffer)  # 1-D, contiguous, byte-sized: the reader copies bytes, not items or rows
    _writable(buffer)
    check(key)
    _claim(c, None, buffer, _GET2, key)
    return _emit(c, _NO)


def incr(c, key):
    if _type(key) is not _bytes:
        check(key)
    _claim(c, None, None, _INCR2, key)
    return _emit(c, _NO)


def publish(c, channel, message):
    if _type(channel) is not _bytes:
        check(channel)
    if _type(message) is not _bytes:
        check(message)
    _claim(c, None, None, _PUBLISH3, channel)
    return _emit(c, message)


def _set(c, key, value, ex, px, nx, xx, keepttl, get, exat, pxat):
    # set() with options; setopts.py loads with the first one (the core stays smaller without). A function of its
    # own keeps set()'s frame as small as its signature allows (its stack counts toward the 11 words).
    from .setopts import set_args
    return _cmd(c, None if get else ok, set_args(key, value, ex, px, nx, xx, keepttl, get, exat, pxat))


def _writable(buffer):
    try:
        buffer[0:0] = b""  # a read-only memoryview fails here, not half-way through a reply
    except (TypeError, ValueError):
        raise TypeError(text("_writable"))


# generic command() only (the catalogue and the subscription send these the right way): the names it refuses end
# in SUBSCRIBE, are one of these or CLIENT REPLY; rare.py says why
_SCREEN = (b"MONITOR", b"RESET", b"HELLO", b"QUIT", b"SYNC", b"PSYNC")


def _refuse(args):
    name = upper(args[0])
    if name.endswith(b"SUBSCRIBE") or name in _SCREEN or (
            name == b"CLIENT" and len(args) > 1 and upper(args[1]) == b"REPLY"):
        from .rare import refuse
        refuse(name)


# ---- the receiving half -------------------------------------------------------------------------------------
_CUT = ProtocolError("the conversion of this reply was interrupted")




def _pubsub():
    try:
        from . import pubsub
    except ImportError as e:
        if "pubsub" not in str(e):
            raise
        from .errors import text
        raise ImportError(text("pubsub"))
    return pubsub


# ---- the hot read path (plain functions: see the sending half) -----------------------------------------
def read_until(c, f):
    # wait(): reads frames until f is resolved. Every exception leaves the connection in step or drops it. The
    # handlers bind no name: `except E as e` makes MicroPython take this frame from the heap on every call.
    if c._unsent:
        _flush(c)
    if c._pending == 0:
        raise InvalidFuture("future does not belong to a pending command of this client")
    c._handler_raised = False
    try:
        while f._state == _PENDING:
            _step(c, f)
    except TimeoutError:
        _read_failed(c, TimeoutError)
        raise
    except RedisError:
        _read_failed(c, ConnectionError)
        raise
    except BaseException:
        _read_failed(c, None)
        raise


def _read_failed(c, kind):
    # A push_handler's own exception comes after its frame was consumed, so all is in step. Anything else
    # (^C mid-frame, a reply that cannot be copied, a lost socket) breaks the connection; the futures then
    # fail with an error of the same kind, while the wait() that was reading raises the exception itself.
    if c._handler_raised:
        c._handler_raised = False
    elif c._conn is not None:
        if kind is ConnectionError:
            c._refusal(None)  # (a refusal on accept that a reset hid is raised instead)
        err = (kind or ConnectionError)("connection dropped: a read failed or was interrupted%s" %
                                        ("" if kind else " (not by the network)"))
        c._broken(err, None)
        c._dropped = err


def _step(c, f):
    # one frame for wait(f), or one receive: a simple reply straight from the buffer, else the reader's scanner
    v = fast(c._reader, c._into[c._head] if c._pending else None)
    if v is NEED_DATA:  # nothing buffered: receive, then parse what came
        if not _fill(c, _remaining(c, _slot_of(c, f))):
            _check_deadline(c, f)
            return
        v = fast(c._reader, c._into[c._head] if c._pending else None)
    if v is not _SLOW:
        if v is NEED_DATA:
            return
        if c._pending:
            _resolve(c, c._head, v)  # a simple reply is never a push frame
            if c._pending:
                _drain(c)
            return
    else:
        p = c._reader.rpos
        v = c._get()
        if v is NEED_DATA:
            if c._reader.rpos != p:
                return  # a frame was consumed (a dropped push): look at the buffer again before receiving
            _check_deadline(c, f)  # a reply trickling in keeps its deadline
            if not _fill(c, _remaining(c, _slot_of(c, f))):
                _check_deadline(c, f)
            return
    if not _dispatch(c, v):
        _after_push(c, f)


def _drain(c):
    # The simple replies already buffered behind the one just read are resolved now, while the buffer is at hand
    # (a pipeline's replies arrive together): their wait()s then return at once, without reading. A get_into()
    # slot stops it: its buffer is written only once a wait() reaches its reply (the same buffer may serve the
    # next command too).
    while c._pending and c._into[c._head] is None:
        v = fast(c._reader, None)
        if v is _SLOW or v is NEED_DATA:
            return
        _resolve(c, c._head, v)


def _after_push(c, f):
    # Pushes that keep coming must not stretch a deadline: once nothing else is buffered or waiting in the
    # socket, a passed deadline fails the wait (checked only if f is still pending: a push_handler may have waited
    # it)
    r = c._reader
    if f._state == _PENDING and r.rpos == r.wpos and _remaining(c, _slot_of(c, f)) == 0:
        _check_deadline(c, f)


def _check_deadline(c, f):
    d = _slot_of(c, f)
    if _remaining(c, d) == 0:
        err = TimeoutError("no reply within %d ms" % c._timeout_ms)
        c._broken(err, c._fut[d])
        raise err


def _slot_of(c, f):
    # the slot of pending future f (its deadline is the one a wait() keeps); the oldest if f has none
    i = c._head
    if c._fut[i] is f:
        return i
    k = 1
    while k < c._pending:
        i = _slot(c, k)
        if c._fut[i] is f:
            return i
        k += 1
    return c._head


def _fill(c, ms):
    r = c._reader
    if r.wpos or _len(r.buf) != r.params.buffer_size:
        r.space()  # (with nothing buffered in the reader's own buffer there is nothing to compact)
    k = c._transport.recv_into(r.buf, r.wpos, ms)
    if k:
        r.wpos += k  # (what Reader.wrote(k) does, without a method lookup)
        return True
    return False


def _resolve(c, h, v):
    # slot h (the oldest) takes reply v, which is not an error (_dispatch sends those to _resolve_slow)
    conv = c._conv[h]
    if conv is ok:
        v = True if v is _OK or v is _OK_STR else ok(v)  # (_fast_ok's +OK is one of these two objects)
    elif conv:  # (a falsy conversion is none: the outbox passes 0)
        c._resolve_slow(h, conv, v)
        return
    f = c._fut[h]
    c._fut[h] = None  # (the slot is released, as in _resolve_slow)
    c._into[h] = None
    c._name[h] = None
    c._key[h] = None
    h += 1  # (_slot(c, 1), inline on the hot path)
    c._head = h - c._cap if h >= c._cap else h
    c._pending -= 1
    c._resolved_count = (c._resolved_count + 1) & 0x3FFF
    f._value = v
    f._state = _DONE


def _remaining(c, h):
    # ms left before slot h's deadline (0: passed); -1: no deadline
    x = c._allow[h]
    if not c._timeout_ms or x < 0:
        return -1
    x += c._timeout_ms - c._clock.ticks_diff(c._clock.ticks_ms(), c._sent[h])
    return x if x > 0 else 0


def _dispatch(c, v):
    # True if v resolved the oldest slot; False if it was an out-of-band frame
    if _type(v) is Push:
        c._push(v)  # RESP3 out-of-band: to the subscription or the push_handler
        return False
    if c._resp2_subscribed and c._sub is not None and c._sub._is_frame(v):
        c._push(v)  # RESP2 subscribed mode: a message or a confirmation, not a reply
        return False
    if c._pending == 0:
        from .errors import text
        err = ProtocolError(text("_dispatch"))
        c._broken(err, None)
        raise err
    if _isinstance(v, _Exception):
        c._resolve_slow(c._head, c._conv[c._head], v)
    else:
        _resolve(c, c._head, v)
    return True


class CoreClient:
    """push_handler: called with each RESP3 push frame no subscription takes (e.g. CLIENT TRACKING invalidations),
    from whichever wait(), ready() or close() reads it. It may issue and wait commands of this client (re-read an
    invalidated key): the outer wait() still returns its own future's reply. An exception it raises comes out of
    that wait()/ready() after the push was consumed, so every future stays matched; raised during close(), the
    socket is dropped instead of being reused."""

    _retry = None  # retry.Policy of the handler (h.retry()/h.health_check()); set per client only then

    # the sending half (the functions above, bound as its methods)
    _begin = _begin  # claim a reply slot (pubsub.py, retry.py, retryon.py; the catalogue goes through _cmd)
    _end = _end  # after the command is encoded: send it unless a pipeline() block is open
    _claim_slow = _claim_slow  # a full ring, a lost or closed connection, retry(): before a slot is claimed
    _cmd = _cmd  # the catalogue's one entry: (conv, args, into=None, extra_ms=0) -> Future
    flush = _flush
    pipeline = pipeline
    command = command
    set = set
    get = get
    get_into = get_into
    incr = incr
    publish = publish

    def __init__(self, conn, timeout_ms, clock):
        self._conn = conn  # the handler's live connection: transport, reader, encoder
        self._transport = conn.transport
        self._reader = conn.reader
        self._encoder = conn.encoder
        self._clock = clock
        self._timeout_ms = timeout_ms
        self._raw_replies = 0  # replies to send_raw() still unread (pubsub.py); -1: unknown, so only a re-dial cleans up
        cap = conn.reader.params.frame_capacity
        self._cap = cap
        # the reply slots, a ring: _head is the oldest pending one, _pending how many are pending (sent or queued)
        self._fut = [None] * cap
        self._conv = [None] * cap
        self._into = [None] * cap
        self._sent = [0] * cap
        self._allow = [0] * cap  # ms added to the deadline of a blocking command (BLPOP); -1: no deadline
        # per slot (references, nothing allocated): command name, or a hot command's constant prefix, and first
        # argument; the hot path encodes from them (_put), error messages quote them
        self._name = [None] * cap
        self._key = [None] * cap
        self._head = 0
        self._pending = 0
        # Waited futures are reissued first-in first-out, so a handle kept after wait() is detected as stale for
        # as long as possible (until frame_capacity more futures have been waited).
        # twice frame_capacity: a pipelined batch may hold more futures than there are slots
        self._pool = [Future(self) for _ in range(cap)] + [None] * cap
        self._pool_n = cap
        self._pool_head = 0  # oldest free future in the ring
        self._unsent = 0  # of the pending replies, those whose commands are still in the send buffer
        self._batch = 0  # open pipeline() blocks
        self._pipe = Batch(self)
        # the command being encoded (_claim): its slot, and the encoder's position to roll back to
        self._last = 0
        self._mark = 0
        self._mark_flushes = 0
        self._sub_ping = False  # a PING the subscription sends in RESP2 subscribed mode (_begin)
        self._dropped = None  # the error the futures got when a read broke the connection (Future.wait)
        self.unwaited_errors = 0  # error replies read for futures nobody has waited (yet)
        self.last_unwaited_error = None
        self.push_handler = None  # called with each RESP3 push frame that no subscription takes
        self._sub = None  # the Subscription sharing this connection, if any
        self._resp2_subscribed = False  # RESP2 subscribed mode: only the subscribe family and PING may be sent
        self._resolved_count = 0  # counts resolved slots (mod 2**14), so a read notices what a push_handler resolved
        self._handler_raised = False  # the exception being raised is the push_handler's own

    # ---- pub/sub and the low-level stream (pubsub.py) -----------------------------------------------------------
    def subscribe(self, *channels):
        return _pubsub().subscribe(self, 0, channels)

    def psubscribe(self, *patterns):
        return _pubsub().subscribe(self, 1, patterns)

    def ssubscribe(self, *channels):
        return _pubsub().subscribe(self, 2, channels)

    def _subscribed(self, sub, mode):
        # (pubsub.py, noperm.py, retry.py) the Subscription the pub/sub frames go to (None: none), RESP2 subscribed mode
        self._sub = sub
        self._resp2_subscribed = mode

    def _owe_raw(self, n):
        # (pubsub.py send_raw/read_raw) replies to send_raw() still unread; -1: unknown, so only a re-dial cleans up
        self._raw_replies = n

    # ---- what retry.py, retryon.py and sentinel.py change (docs/DESIGN.md "Owners and extension points") -----------
    def _set_retry(self, p):
        # the policy consulted before each claim, when the connection breaks and in wait() (None: none)
        self._retry = p

    def _rebind(self, conn, timeout_ms):
        # the same client on a new connection: the ring starts empty; what the application set on it (push_handler,
        # an open pipeline() block, the unwaited-error counts) is kept
        ph = self.push_handler
        batch = self._batch
        pipe = self._pipe
        ue = self.unwaited_errors
        le = self.last_unwaited_error
        type(self).__init__(self, conn, timeout_ms, self._clock)  # pyright: ignore[reportCallIssue]
        self.push_handler = ph
        self._batch = batch
        self._pipe = pipe
        self.unwaited_errors = ue
        self.last_unwaited_error = le

    def _idle_ms(self):
        # ms since the last command went out (the newest resolved slot's send time; _touch() sets it)
        i = self._head - 1
        if i < 0:
            i = self._cap - 1
        return self._clock.ticks_diff(self._clock.ticks_ms(), self._sent[i])

    def _touch(self, t):
        # the last command went out at ticks t (a fresh connection: now; one that may have idled: long ago)
        i = self._head - 1
        if i < 0:
            i = self._cap - 1
        self._sent[i] = t

    def send_raw(self, value):
        """Write a command (a list of arguments) or raw protocol bytes; only when no future is pending."""
        _pubsub().send_raw(self, value)

    def read_raw(self, timeout_ms=0):
        """The next frame (reply or push) or None after timeout_ms; only when no future is pending."""
        return _pubsub().read_raw(self, timeout_ms)

    _check = staticmethod(check)  # (pubsub.py: an argument check before anything is written)

    # ---- receiving ------------------------------------------------------------------------------------------
    # Every read path leaves the connection in step or drops it: an exception that escapes a read (a ^C in the
    # middle of parsing, a reply that cannot be copied) breaks the connection, except the push_handler's own
    # exceptions, which are raised after their push frame has been consumed (nothing is out of step then).
    def _poll(self):
        # ready(): take whatever has arrived, never block; a passed deadline fails the futures (so a ready() loop
        # ends) just as wait() would
        self.flush()
        while self._pending:
            if not self._read_one(0):
                h = self._head
                if self._pending and _remaining(self, h) == 0:
                    self._broken(TimeoutError("no reply within %d ms" % self._timeout_ms), self._fut[h])
                return

    def _remaining(self, h):
        return _remaining(self, h)

    def _dispatch(self, v):
        return _dispatch(self, v)

    def _read_one(self, limit):
        # Reads until the oldest slot is resolved (or, when a push_handler waited commands, until any slot was).
        # limit None: wait up to the oldest one's deadline; 0: only what has arrived. Returns True if a slot was
        # resolved. Push frames met on the way go to the subscription.
        self._handler_raised = False
        try:
            return self._read1(limit)
        except BaseException as e:
            if self._handler_raised:
                self._handler_raised = False  # the push_handler's own exception: its frame was consumed, all is in step
            elif self._conn is not None:
                self._lost(e)
            raise

    def _read1(self, limit):
        if self._unsent:
            self.flush()
        while True:
            d = self._head
            v = self._next(_remaining(self, d) if limit is None else limit)
            if v is NEED_DATA:
                if limit is not None:
                    return False
                if _remaining(self, d) == 0:
                    err = TimeoutError("no reply within %d ms" % self._timeout_ms)
                    self._broken(err, self._fut[d])
                    raise err
                continue
            g = self._resolved_count
            if _dispatch(self, v) or g != self._resolved_count:
                # (a push_handler that waited a command resolved slots: the caller re-checks.) A full ring in a
                # long pipeline (_claim_slow) gets every buffered reply's slot back, not one per receive
                if self._pending:
                    _drain(self)
                return True
            r = self._reader
            if r.rpos == r.wpos and self._pending:
                # an out-of-band frame and nothing else buffered: pushes that keep coming must not keep ready()
                # reading, nor stretch the deadline of close() or of a full ring
                if limit is not None:
                    return False
                d = self._head
                if _remaining(self, d) == 0:
                    err = TimeoutError("no reply within %d ms" % self._timeout_ms)
                    self._broken(err, self._fut[d])
                    raise err

    def _next(self, ms):
        # One frame, or NEED_DATA when it has not arrived after one receive of up to ms (0: no waiting; <0: no
        # limit); for the readers other than wait() (pubsub.py, ready(), close()), which break the connection on
        # a failed receive themselves (_recv). The oldest slot's get_into() reply is copied into its buffer.
        v = self._parse()
        if v is NEED_DATA and self._recv(ms):
            v = self._parse()
        return v

    def _parse(self):
        # A frame from what is buffered, or NEED_DATA. A frame dropped on the way (an oversized or undecodable
        # push) does not end the look: a reply buffered behind it is taken before anything is received.
        while True:
            v = fast(self._reader, self._into[self._head] if self._pending else None)
            if v is not _SLOW:
                return v
            p = self._reader.rpos
            v = self._get()
            if v is not NEED_DATA or self._reader.rpos == p:
                return v

    # ---- a frame the fast path (resp.fast: +OK, :n, $n and nil read in place) leaves to the reader's scanner ----
    def _get(self):
        r = self._reader
        dest = None
        if self._pending:
            dest = self._into[self._head]
        p = r.rpos  # where the frame starts: its type byte tells a push from a reply if it cannot be built
        if dest is not None and p < r.wpos and r.buf[p] == 62:
            dest = None  # a push ahead of a get_into() reply is built whole for push_handler, not copied or dropped
        try:
            v = r.gets() if dest is None else r.gets_into(dest)
        except MemoryFull as e:
            # the reader discarded a frame and is still in sync
            t = r.skipped_type
            if t == 62 or (self._resp2_subscribed and t == 42):
                s = self._sub  # a push (RESP2 subscribed mode: any array) was never a command's reply
                if s is not None:
                    s.dropped += 1
                return NEED_DATA
            return e
        except ProtocolError as e:
            from .rare import in_step, unbuilt
            if r.rpos != p and in_step(e):
                e = unbuilt(self, e, p)  # older readers raise this after consuming the frame
                return NEED_DATA if e is None else e
            self._broken(e, None)
            raise
        except BaseException as e:
            # e.g. a get_into() buffer that cannot be written, or ^C: the reader may be mid-reply, so the stream is
            # lost
            self._broken(e if isinstance(e, RedisError) else ProtocolError("reply could not be read: %r" % e), None)
            raise
        if dest is not None and v is not None and v is not NEED_DATA and not isinstance(v, Exception) and \
                not r.copied(v):
            # get_into() gives a length (what was copied) or None; any other reply was copied nowhere
            from .rare import failed
            v = failed(v, None, None, None)
        if type(v) is ProtocolError:
            from .rare import unbuilt
            v = unbuilt(self, v, p)
            return NEED_DATA if v is None else v
        return v

    def _recv(self, ms):
        try:
            return _fill(self, ms)
        except TimeoutError:
            _read_failed(self, TimeoutError)
            raise
        except BaseException:
            _read_failed(self, ConnectionError)
            raise

    def _push(self, v):
        # RESP3 out-of-band frames never resolve a command's future
        s = self._sub
        if s is not None and s._take_push(v):
            return True
        if self.push_handler is not None:
            try:
                self.push_handler(v)
            except BaseException:
                self._handler_raised = True  # (see _read_one)
                raise
        return True

    def _resolve_slow(self, h, c, v):
        # The slot is released before the reply is converted, so a conversion that fails (a reply of an
        # unexpected shape) fails only this future and every later reply still goes to its own future.
        f = self._fut[h]
        nm = self._name[h]
        key = self._key[h]
        self._fut[h] = None  # (as _resolve releases it)
        self._into[h] = None
        self._name[h] = None
        self._key[h] = None
        self._head = _slot(self, 1)
        self._pending -= 1
        self._resolved_count = (self._resolved_count + 1) & 0x3FFF
        if isinstance(v, Exception):
            if type(v) is ProtocolError and nm is not None:
                from .rare import failed
                v = failed(v, nm, key, None)
            else:
                v = self._refusal(v)  # a first reply that is a refusal on accept (protected mode)
        else:
            f._value = _CUT
            f._state = _DONE  # until the conversion returns: ^C in it must not leave a future with no slot pending
            try:
                v = c(v)
            except Exception as e:
                from .rare import failed
                v = failed(v, nm, key, e)
        f._value = v
        f._state = _DONE
        if isinstance(v, Exception):
            self.unwaited_errors += 1
            self.last_unwaited_error = v

    def _refusal(self, v):
        # A read or a send failed (v None), or v is the first reply, on a connection that has read nothing yet (the
        # transport's last_words, connection.py): a refusal on accept is raised (v None) or returned (rare.refusal)
        if self._resolved_count == (v is not None) and getattr(self._transport, "last_words", None) is not None:
            from .rare import refusal
            return refusal(self, v)
        return v

    def _seen_error(self, v):
        # wait() raised this error: it is no longer unseen
        if self.unwaited_errors:
            self.unwaited_errors -= 1
        if self.last_unwaited_error is v:
            self.last_unwaited_error = None

    def _broken(self, err, timed_out):
        # Replies can no longer be matched to commands: fail every pending future and drop the socket, so the
        # handler's next connect() dials again. `timed_out` (the future whose deadline ran out, or for a lost
        # connection the oldest) raises err; on a timeout so do the older futures whose deadlines have passed too.
        # The others raise InvalidFuture.
        timeout = isinstance(err, TimeoutError)
        if timed_out is None and self._pending:
            timed_out = self._fut[self._head]
        msg = "reply cannot be matched any more: %s" % err
        keep = self._retry.park(self, err) if self._retry is not None else None  # retry_on (retry.py): kept pending
        before = True
        while self._pending:
            h = self._head
            f = self._fut[h]
            if f is timed_out:
                late = True
                before = False
            else:
                late = timeout and before and _remaining(self, h) == 0
            self._fut[h] = None
            self._into[h] = None
            self._name[h] = None
            self._key[h] = None
            if keep is None or f not in keep:
                f._state = _INVALID
                f._value = err if late else InvalidFuture(msg)
            self._head = _slot(self, 1)
            self._pending -= 1
        self._unsent = 0
        conn = self._conn
        self._conn = None
        if conn is not None:
            conn.fail()
            if self._retry is not None:
                self._retry.h.last_error = err  # h.last_error (retry.py): the error that cost the connection

    def _lost(self, e):
        # an exception escaped a read or a send: the stream may be mid-reply or hold half a command
        self._broken(e if isinstance(e, RedisError) else ConnectionError("connection dropped: interrupted by %r" % e),
                     None)

    def close(self):
        """Read the replies of futures never waited, so the cached socket is clean for the next Client. If that
        fails (whatever the exception, a push_handler's or ^C included) the socket is dropped, never reused."""
        if self._conn is None:
            return
        clean = False
        try:
            if self._sub is not None:
                self._sub.close()
            self.flush()
            while self._pending:
                self._read_one(None)
            clean = True
        finally:
            if self._conn is not None:
                if clean:
                    if self._conn.client is self:  # the socket is free for the handler's next client
                        self._conn.client = None
                else:
                    self._lost(ConnectionError("close() could not read every pending reply"))
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, a, b, c):
        self.close()
        return False

