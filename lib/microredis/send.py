"""The sending half of the core client: claiming reply slots, encoding (with rollback), pipelining, hot commands."""
# Plain functions taking the client: CoreClient (client.py), which creates the state they use, binds the public ones
# as its methods.
# MicroPython takes the frame of a function from the heap on every call when its locals + stack exceed 11 words
# (an exception handler counts 3): the hot commands below are split so that every frame from get()/incr()/
# publish() to the encoder stays under that, and the try sits in one small function (_emit).

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import ConnectionError, ProtocolError, RedisError, TimeoutError, text
from .encoder import check
from .future import take_future, recycle

_FREE = const(0)
_PENDING = const(1)


def ok(v):
    """Reply conversion of commands that answer +OK: True (nil and other values pass through)."""
    # compare like with like: MicroPython warns on bytes == str
    if (v == b"OK") if _type(v) is _bytes else (v == "OK"):
        return True
    return v


# Builtins used on the hot path, as module globals: MicroPython looks a builtin name up in the module's globals first
# (a miss, probing a nearly full hash table) and then in the builtins table; a global is one cached hit.
_len = len
_type = type
_bytes = bytes
_bytearray = bytearray
_memoryview = memoryview

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
        n = _digits(buf, n, k)
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


def _digits(buf, n, k):
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
    for a in args:
        check(a)
    f = _begin(c, conv, into, extra_ms, False, args[0], args[1] if len(args) > 1 else None)
    e = c._encoder
    try:
        e.begin(len(args))
        for a in args:
            e.arg(a)
    except TimeoutError:
        _unclaim(c, TimeoutError)
        raise
    except RedisError:
        _unclaim(c, ConnectionError)
        raise
    except BaseException:
        _unclaim(c, ProtocolError)
        raise
    return c._end(f)  # a method: the asyncio client (aio.py) returns an awaitable instead


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


def _upper(a):
    t = type(a)
    if t is str:
        return a.upper().encode()
    if t is bytes or t is bytearray or t is memoryview:
        return bytes(a).upper()
    return b""  # not a name: check() rejects it


# generic command() only (the catalogue and the subscription send these the right way): the names it refuses end
# in SUBSCRIBE, are one of these or CLIENT REPLY; rare.py says why
_SCREEN = (b"MONITOR", b"RESET", b"HELLO", b"QUIT", b"SYNC", b"PSYNC")


def _refuse(args):
    name = _upper(args[0])
    if name.endswith(b"SUBSCRIBE") or name in _SCREEN or (
            name == b"CLIENT" and len(args) > 1 and _upper(args[1]) == b"REPLY"):
        from .rare import refuse
        refuse(name)
