"""The sending half of the core client: claiming reply slots, encoding (with rollback), pipelining, hot commands."""
# CoreClient (client.py) inherits this; the attributes used here are set up in CoreClient.__init__.
# MicroPython takes the frame of a function from the heap on every call when its locals + stack exceed 11 words
# (an exception handler counts 3): the hot commands below are split so that every frame from get()/incr()/
# publish() to the encoder stays under that, and the try sits in one small function (_emit).

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import ConnectionError, ProtocolError, RedisError, TimeoutError
from .encoder import check
from .future import Future

_FREE = const(0)
_PENDING = const(1)


def ok(v):
    """Reply conversion of commands that answer +OK: True (nil and other values pass through)."""
    # compare like with like: MicroPython warns on bytes == str
    if (v == b"OK") if type(v) is bytes else (v == "OK"):
        return True
    return v


_SET3 = b"*3\r\n$3\r\nSET\r\n"
_GET2 = b"*2\r\n$3\r\nGET\r\n"
_INCR2 = b"*2\r\n$4\r\nINCR\r\n"
_PUBLISH3 = b"*3\r\n$7\r\nPUBLISH\r\n"
_NO = object()  # "no second argument" for _emit()


class Sender:
    # ---- claiming a reply slot ------------------------------------------------------------------------------
    def _claim(self, conv, into, name, key):
        # Claims a slot for one more reply (conv: None or a function applied to the reply; name/key: for error
        # messages). Arguments have been checked, so nothing after this can fail half-way except I/O, which breaks
        # the connection anyway. The encoder's position is kept so that a failed encoding can be rolled back.
        if self._conn is None or self._r2sub or self._rawn or self._n == self._cap:
            self._claim_slow()
        i = self._tail(self._n)
        self._fut[i] = self._future()
        self._conv[i] = conv
        self._into[i] = into
        self._nm[i] = name
        self._key[i] = key
        # a reply queued behind a blocking one cannot come sooner: it inherits the allowance (0 for a hot command)
        self._allow[i] = self._allow[self._tail(self._n - 1)] if self._n else 0
        self._n += 1
        self._unsent += 1
        self._mark = self._e.n
        self._mark_flushes = self._e.flushes
        self._last = self._fut[i]
        self._lasti = i

    def _tail(self, k):
        # slot index of the k-th pending reply (k = _n: the next free slot)
        i = self._head + k
        return i - self._cap if i >= self._cap else i

    def _future(self):
        n = self._pool_n
        if n == 0:
            return Future(self, _PENDING)  # only until every slot has a recycled future, or for futures never waited
        # a fixed ring, not list.pop(): MicroPython shrinks a list on pop and would re-grow it on append
        k = self._pool_head
        f = self._pool[k]
        self._pool[k] = None
        self._pool_head = 0 if k + 1 == len(self._pool) else k + 1
        self._pool_n = n - 1
        f._st = _PENDING
        return f

    def _claim_slow(self):
        if self._conn is None:
            raise ConnectionError("client is closed")
        if self._r2sub and not self._sub_ping:
            raise RedisError("RESP2 subscribed mode allows only the subscribe family and PING (sub.ping()); "
                             "close the subscription first, or use RESP3")
        if self._rawn:
            _raw_unread(self._rawn)
        while self._n == self._cap:
            # every slot pending: the oldest reply is read first (never an error for the caller)
            self._read_one(None)

    def _begin(self, conv, into, extra=0, allow=False, name=None, key=None):
        # the general form of _claim: a reply deadline allowance (ms added to the timeout of a blocking command;
        # -1: no deadline) and (allow=True, pubsub.py) a PING in RESP2 subscribed mode
        self._sub_ping = allow
        try:
            self._claim(conv, into, name, key)
        finally:
            self._sub_ping = False
        i = self._tail(self._n - 1)
        x = self._allow[i]  # inherited from the reply queued before it (0 when none)
        if not (x < 0 or (extra >= 0 and x > extra)):
            self._allow[i] = extra
        return self._last

    def _end(self, f):
        if self._batch == 0:
            self.flush()
        return f

    # ---- encoding -------------------------------------------------------------------------------------------
    def _emit(self, b):
        # Encodes the hot command just claimed: its prefix and first argument (kept in its slot for error messages)
        # and b (_NO: none), then sends it unless a pipeline() block is open. A try makes MicroPython take a frame
        # from the heap unless the function has at most two locals and binds no exception name: hence _put().
        try:
            self._put(b)
        except BaseException:
            self._unclaim()
            raise
        if self._batch == 0:
            self.flush()
        return self._last

    def _put(self, b):
        i = self._lasti
        self._e.raw(self._nm[i])
        self._e.arg(self._key[i])
        if b is not _NO:
            self._e.arg(b)

    def _cmd(self, conv, args, into=None, extra_ms=0):
        for a in args:
            check(a)
        f = self._begin(conv, into, extra_ms, False, args[0], args[1] if len(args) > 1 else None)
        e = self._e
        try:
            e.begin(len(args))
            for a in args:
                e.arg(a)
        except BaseException:
            self._unclaim()
            raise
        return self._end(f)

    def _unclaim(self):
        # Encoding failed after the slot was claimed (by _claim, which kept the encoder's position). If nothing of
        # the command left the send buffer, forget it and the connection stays usable; otherwise the server holds
        # half a command, so the connection is dropped.
        e = self._e
        if e.flushes != self._mark_flushes:
            self._broken(ProtocolError("a command failed half-sent (the exception raised with it says why)"), None)
            return
        e.n = self._mark
        i = self._tail(self._n - 1)
        self._fut[i] = None
        self._into[i] = None
        self._nm[i] = None
        self._key[i] = None
        self._n -= 1
        self._unsent -= 1
        f = self._last
        f._st = _FREE
        self._recycle(f)

    # ---- sending --------------------------------------------------------------------------------------------
    def flush(self):
        """Send what is queued (inside a pipeline() block, commands wait until its end or a full buffer)."""
        if self._unsent:
            try:
                self._e.flush()
            except TimeoutError:
                self._send_failed(TimeoutError)
                raise
            except BaseException:
                self._send_failed(ConnectionError)
                raise
            self._stamp()

    def _send_failed(self, kind):
        # whatever interrupted it, the server may hold half a command; the exception itself goes to the caller
        if self._conn is not None:
            self._broken(kind("connection dropped: a send failed or was interrupted"), None)

    def _stamp(self):
        # the deadline of each reply counts from when its command was sent
        now = self._clock.ticks_ms()
        k = self._n - self._unsent
        while k < self._n:
            self._sent[self._tail(k)] = now
            k += 1
        self._unsent = 0

    def pipeline(self):
        """`with client.pipeline():` coalesces the commands issued in the block into one send."""
        return self._pipe

    def command(self, *args):
        """Any command; returns a Future of the raw reply. Commands that would break the matching of replies to
        futures (the subscribe family, MONITOR, CLIENT REPLY, RESET, HELLO, QUIT) are refused with ValueError."""
        if not args:
            raise ValueError("command() needs at least the command name")
        _refuse(args)
        return self._cmd(None, args)

    # ---- hot-path commands: constant prefixes, no argument tuples, nothing allocated once warm ----------------
    def set(self, key, value, ex=None, px=None, nx=False, xx=False, keepttl=False, get=False, exat=None,
            pxat=None):
        if ex is None and px is None and exat is None and pxat is None and not (nx or xx or keepttl or get):
            check(key)
            check(value)
            self._claim(ok, None, _SET3, key)
            return self._emit(value)
        return self._set(key, value, ex, px, nx, xx, keepttl, get, exat, pxat)

    def _set(self, key, value, ex, px, nx, xx, keepttl, get, exat, pxat):
        args = [b"SET", key, value]
        for name, v in ((b"EX", ex), (b"PX", px), (b"EXAT", exat), (b"PXAT", pxat)):
            if v is not None:
                if type(v) is not int or v <= 0:
                    raise ValueError("%s must be a positive int" % name.decode())
                args.append(name)
                args.append(v)
        if nx and xx:
            raise ValueError("nx and xx are mutually exclusive")
        for name, v in ((b"NX", nx), (b"XX", xx), (b"KEEPTTL", keepttl), (b"GET", get)):
            if v:
                args.append(name)
        return self._cmd(None if get else ok, args)

    def get(self, key):
        check(key)
        self._claim(None, None, _GET2, key)
        return self._emit(_NO)

    def get_into(self, key, buffer):
        """GET whose value is copied into `buffer`; wait() gives the length, or None for a missing key."""
        t = type(buffer)
        if t is not bytearray and t is not memoryview:  # isinstance(x, (a, b)) would build a tuple
            raise TypeError("buffer must be a bytearray or memoryview")
        if t is memoryview:
            check(buffer)  # 1-D, contiguous, byte-sized: the reader copies bytes, not items or rows
        _writable(buffer)
        check(key)
        self._claim(None, buffer, _GET2, key)
        return self._emit(_NO)

    def incr(self, key):
        check(key)
        self._claim(None, None, _INCR2, key)
        return self._emit(_NO)

    def publish(self, channel, message):
        check(channel)
        check(message)
        self._claim(None, None, _PUBLISH3, channel)
        return self._emit(message)


def _writable(buffer):
    try:
        buffer[0:0] = b""  # a read-only memoryview fails here, not half-way through a reply
    except (TypeError, ValueError):
        raise TypeError("buffer must be writable")


def _raw_unread(n):
    # a reply to send_raw() would be taken for this command's
    if n > 0:
        raise RedisError("replies to send_raw() are unread: read them with read_raw() first")
    raise RedisError("this connection carried raw traffic of unknown length: connect() again (it re-dials)")


_REFUSED = {
    b"SUBSCRIBE": "use client.subscribe()", b"PSUBSCRIBE": "use client.psubscribe()",
    b"SSUBSCRIBE": "use client.ssubscribe()", b"UNSUBSCRIBE": "use the Subscription",
    b"PUNSUBSCRIBE": "use the Subscription", b"SUNSUBSCRIBE": "use the Subscription",
    b"MONITOR": "use client.send_raw() and read_raw()", b"RESET": "use handler.disconnect()",
    b"HELLO": "use ConnectionHandler.resp2() or resp3()", b"QUIT": "use client.close() and handler.disconnect()",
}


def _upper(a):
    t = type(a)
    if t is str:
        return a.upper().encode()
    if t is bytes or t is bytearray or t is memoryview:
        return bytes(a).upper()
    return b""  # not a name: check() rejects it


def _refuse(args):
    # generic command() only: the catalogue and the subscription send these the right way
    name = _upper(args[0])
    why = _REFUSED.get(name)
    if why is None and name == b"CLIENT" and len(args) > 1 and _upper(args[1]) == b"REPLY":
        name = b"CLIENT REPLY"
        why = "every command must get its reply"
    if why is not None:
        raise ValueError("%s cannot go through command(): %s" % (name.decode(), why))
