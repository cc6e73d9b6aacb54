"""The sending half of the core client: claiming reply slots, encoding (with rollback), pipelining, hot commands."""
# CoreClient (client.py) inherits this; the attributes used here are set up in CoreClient.__init__.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import ConnectionError, ProtocolError, RedisError
from .encoder import check
from .future import Future

_FREE = const(0)
_PENDING = const(1)

# Reply conversions known to the core (the catalogue adds its own, from 2 up)
RAW = const(0)
OK = const(1)  # +OK -> True (nil and other values pass through)

_SET3 = b"*3\r\n$3\r\nSET\r\n"
_GET2 = b"*2\r\n$3\r\nGET\r\n"
_INCR2 = b"*2\r\n$4\r\nINCR\r\n"
_PUBLISH3 = b"*3\r\n$7\r\nPUBLISH\r\n"
_NO = object()  # "no second argument" for _pre()


class Sender:
    _rp = None  # retry.Policy of the handler (h.retry()/h.health_check()); set per client only then

    # ---- sending --------------------------------------------------------------------------------------------
    def _begin(self, conv, into, extra=0, allow=False, name=None, key=None):
        # Claims a slot for one more reply. Arguments have been checked, so nothing after this can fail half-way
        # except I/O, which breaks the connection anyway.
        if self._rp is not None:
            self._rp.before(self)  # retry.py: re-dial a lost connection, PING an idle one
        if self._conn is None:
            raise ConnectionError("client is closed")
        if self._r2sub and not allow:
            raise RedisError("RESP2 subscribed mode allows only the subscribe family and PING (sub.ping()); "
                             "close the subscription first, or use RESP3")
        if self._rawn:
            _raw_unread(self._rawn)
        while self._n == self._cap:
            # every slot pending: the oldest reply is read first (never an error for the caller)
            self._read_one(None)
        if self._npool:
            # a fixed ring, not list.pop(): MicroPython shrinks a list on pop and would re-grow it on append
            k = self._ph
            f = self._pool[k]
            self._pool[k] = None
            self._ph = 0 if k + 1 == len(self._pool) else k + 1
            self._npool -= 1
        else:
            f = Future(self)  # only until every slot has a recycled future, or for futures never waited
        f._st = _PENDING
        i = self._head + self._n
        if i >= self._cap:
            i -= self._cap
        self._fut[i] = f
        self._conv[i] = conv
        self._into[i] = into
        self._nm[i] = name
        self._key[i] = key
        if self._n:  # a reply queued behind a blocking one cannot come sooner: inherit its allowance
            x = self._xtra[i - 1 if i else self._cap - 1]
            if x < 0 or (extra >= 0 and x > extra):
                extra = x
        self._xtra[i] = extra
        self._n += 1
        self._unsent += 1
        return f

    def _end(self, f):
        if self._batch == 0:
            self.flush()
        return f

    def flush(self):
        """Send what is queued (inside a pipeline() block, commands wait until its end or a full buffer)."""
        if self._unsent:
            try:
                self._e.flush()
            except BaseException as e:
                self._lost(e)  # whatever interrupted it, the server may hold half a command
                raise
            now = self._clock.ticks_ms()
            k = self._n - self._unsent
            i = self._head + k
            while k < self._n:
                if i >= self._cap:
                    i -= self._cap
                self._sent[i] = now
                i += 1
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
        return self._cmd(RAW, args)

    def _cmd(self, conv, args, into=None, extra_ms=0):
        for a in args:
            check(a)
        f = self._begin(conv, into, extra_ms, False, args[0], args[1] if len(args) > 1 else None)
        e = self._e
        mark = e.n
        fl = e.flushes
        try:
            e.begin(len(args))
            for a in args:
                e.arg(a)
        except BaseException as err:
            self._unclaim(f, mark, fl, err)
            raise
        return self._end(f)

    def _unclaim(self, f, mark, flushes, err):
        # Encoding failed after the slot was claimed. If nothing of the command left the send buffer, forget it and
        # the connection stays usable; otherwise the server holds half a command, so the connection is dropped.
        e = self._e
        if e.flushes != flushes:
            self._broken(ProtocolError("a command failed half-sent: %r" % err), None)
            return
        e.n = mark
        i = self._head + self._n - 1
        if i >= self._cap:
            i -= self._cap
        self._fut[i] = None
        self._into[i] = None
        self._nm[i] = None
        self._key[i] = None
        self._n -= 1
        self._unsent -= 1
        f._st = _FREE
        self._recycle(f)

    # hot-path commands: constant prefixes, no argument tuples, nothing allocated once warm
    def set(self, key, value, ex=None, px=None, nx=False, xx=False, keepttl=False, get=False, exat=None,
            pxat=None):
        if ex is None and px is None and exat is None and pxat is None and not (nx or xx or keepttl or get):
            return self._pre(_SET3, key, value, OK, None)
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
        return self._cmd(RAW if get else OK, args)

    def _pre(self, prefix, a, b, conv, into):
        # a command with a constant prefix and one argument (b is _NO: GET, INCR) or two (SET, PUBLISH)
        check(a)
        if b is not _NO:
            check(b)
        f = self._begin(conv, into, 0, False, prefix, a)
        e = self._e
        mark = e.n
        fl = e.flushes
        try:
            e.raw(prefix)
            e.arg(a)
            if b is not _NO:
                e.arg(b)
        except BaseException as err:
            self._unclaim(f, mark, fl, err)
            raise
        return self._end(f)

    def get(self, key):
        return self._pre(_GET2, key, _NO, RAW, None)

    def get_into(self, key, buffer):
        """GET whose value is copied into `buffer`; wait() gives the length, or None for a missing key."""
        t = type(buffer)
        if t is not bytearray and t is not memoryview:  # isinstance(x, (a, b)) would build a tuple
            raise TypeError("buffer must be a bytearray or memoryview")
        if t is memoryview:
            check(buffer)  # 1-D, contiguous, byte-sized: the reader copies bytes, not items or rows
        try:
            buffer[0:0] = b""  # a read-only memoryview fails here, not half-way through a reply
        except (TypeError, ValueError):
            raise TypeError("buffer must be writable")
        return self._pre(_GET2, key, _NO, RAW, buffer)

    def incr(self, key):
        return self._pre(_INCR2, key, _NO, RAW, None)

    def publish(self, channel, message):
        return self._pre(_PUBLISH3, channel, message, RAW, None)


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
