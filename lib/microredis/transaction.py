"""Transactions: `with client.transaction() as t:` queues t.<command>(...) calls; when the block ends, MULTI, the
commands and EXEC go out in one write, and each queued command's result resolves from the EXEC reply."""
# Loaded by the first client.transaction() (commands.py) or the first use of microredis.WatchError; the core never
# imports it. A transaction is a catalogue user: the command mixins need only self._cmd(conv, args), which here
# records the command instead of sending it. Not a hot path: each transaction allocates (README "Transactions").

from .errors import ConnectionError, InvalidFuture, ProtocolError, RedisError, ReplyError
from .encoder import check
from .resp import Push
from .client import ok, _refuse
from .encoder import upper


class WatchError(RedisError):
    """EXEC was aborted because a key given to watch() changed after WATCH: none of the transaction's commands ran,
    and every one of them raises this error."""


_TAKEN = ("taken",)  # Queued._value once wait() has handed the value over
_BUSY = ("busy",)  # _Tx._futures while _finish() reads the replies (a push_handler may wait a result meanwhile)

_MULTI = (b"MULTI",)  # (bytes: a str name is encoded, a new bytes object, each time it is sent)
_EXEC = (b"EXEC",)
# names a queued command may not have: each would end or nest the transaction out of our sight (MULTI, EXEC, DISCARD)
# or is refused inside MULTI by the server without aborting it (WATCH)
_NOT_QUEUED = (b"MULTI", b"EXEC", b"DISCARD", b"WATCH")


class Queued:
    """The result of one command of a transaction: ready() and wait() as on a Future. The EXEC reply resolves the
    results of the whole transaction at once, when one of them is waited (or found ready)."""

    # Four attributes, no more (a fifth grows each instance's table a third time, on MicroPython a new 96-byte
    # table): pending while _args is set; then _value holds the result, and _TAKEN once wait() handed it over.
    def __init__(self, t, conv, args):
        self._tx = t
        self._conv = conv
        self._args = args  # the command, until the transaction is resolved (error messages name it)
        self._value = None

    def ready(self):
        """True once wait() will not block. Never blocks, never raises the command's error."""
        if self._args is not None:
            return self._tx._ready()
        return True

    def wait(self):
        """The command's converted reply; raises its error (WatchError, ReplyError, ...). Hands the value over once."""
        if self._args is not None:
            self._tx._finish()
        v = self._value
        if v is _TAKEN:
            raise InvalidFuture("this result was already waited (its value was handed over)")
        self._value = _TAKEN
        if isinstance(v, Exception):
            raise v
        return v

    def __repr__(self):
        return "<Queued %s>" % ("pending" if self._args is not None else "waited" if self._value is _TAKEN else "done")


class _Tx:
    # the transaction; begin() makes its class with every mixin of the catalogue
    _tx = True  # scripts.py: a script run inside a transaction is sent as EVAL (NOSCRIPT could not be answered)

    def __init__(self, client):
        self._client = client
        self._queued = []  # Queued, in command order
        self._futures = None  # once sent: the client's futures of MULTI, each command (QUEUED), EXEC

    def __enter__(self):
        return self

    def __exit__(self, a, b, c):
        if a is None:
            self._send()
        elif self._futures is None:
            # nothing was sent, so there is nothing to DISCARD
            self._futures = ()
            self._fail(RedisError("the transaction was not sent: its with block raised %s" % a.__name__))
        return False

    def _cmd(self, conv, args, into=None, extra_ms=0):
        # into: get_into() is not offered here; extra_ms: a blocking command never blocks inside MULTI
        if self._futures is not None:
            raise RedisError("this transaction was sent already: start another with client.transaction()")
        _check_all(args)
        x = Queued(self, conv, args)
        self._queued.append(x)
        return x

    # the core client's own commands (client.py), with the same argument shapes
    def set(self, key, value, ex=None, px=None, nx=False, xx=False, keepttl=False, get=False, exat=None,
            pxat=None):
        if ex is None and px is None and exat is None and pxat is None and not (nx or xx or keepttl or get):
            return self._cmd(ok, (b"SET", key, value))
        from .setopts import set_args
        return self._cmd(None if get else ok, set_args(key, value, ex, px, nx, xx, keepttl, get, exat, pxat))

    def get(self, key):
        return self._cmd(None, (b"GET", key))

    def incr(self, key):
        return self._cmd(None, (b"INCR", key))

    def publish(self, channel, message):
        return self._cmd(None, (b"PUBLISH", channel, message))

    def command(self, *args):
        """Any command, queued; the raw reply. Refuses what client.command() refuses, and MULTI, EXEC, DISCARD,
        WATCH (watch() on the client, before the block)."""
        if not args:
            raise ValueError("command() needs at least the command name")
        _refuse(args)
        if upper(args[0]) in _NOT_QUEUED:
            raise ValueError("%s cannot be queued in a transaction: the with block sends MULTI/EXEC, and "
                             "client.watch() goes before it" % upper(args[0]).decode())
        return self._cmd(None, args)

    # ---- sending and resolving ---------------------------------------------------------------------------------
    # (_send and the calls in it keep their frames under 11 words where they can: MicroPython takes a larger frame
    # from the heap on every call; what only watch() and a push_handler need is in functions of their own)
    def _send(self):
        if self._futures is not None:
            return
        c = self._client
        self._futures = []
        if not self._queued:
            return  # an empty transaction sends nothing
        if getattr(c, "_watching", None) is not None and not self._watched(c):
            return
        if c.push_handler is None:
            self._write(c, self._futures)
        else:
            self._held(c, self._futures)

    def _watched(self, c):
        # False (every result failed) when the watch was lost: then nothing is sent
        watched = getattr(c, "_watching", None)  # the connection WATCH was sent on
        c._watch_ended()  # EXEC ends the watch (and so does a lost connection)
        if c._conn is watched and c._retry is not None:
            try:
                c._retry.before(c)  # retry.py: a health check's PING (or re-dial) now, not after MULTI is queued
            except BaseException as e:
                self._fail(e if isinstance(e, RedisError) else ConnectionError("transaction not sent: %r" % e))
                raise
        if c._conn is not watched:
            # redis-py does the same: a WATCH lost with its connection cannot protect this transaction
            self._fail(WatchError("the connection was lost after watch(), so the watch with it: nothing was "
                                  "sent; watch() and read again"))
            return False
        return True

    def _held(self, c, fs):
        # A push_handler called while the transaction is written (a full ring of replies is read first) could send
        # commands between MULTI and EXEC, where they would be queued (its wait() would give b"QUEUED") and the EXEC
        # array would no longer match: pushes are held until EXEC is written, then handed over in order.
        handler = c.push_handler
        held = []
        c.push_handler = held.append
        try:
            self._write(c, fs)
        except BaseException:
            self._unhold(c, handler, held, False)
            raise
        self._unhold(c, handler, held, True)

    def _unhold(self, c, push_handler, held, sent):
        c.push_handler = push_handler
        err = None
        for v in held:
            try:
                push_handler(v)
            except Exception as e:
                if err is None:
                    err = e
        if err is not None and sent:
            raise err  # as from a wait(): the push was consumed; the transaction was written

    def _write(self, c, fs):
        started = False
        with c.pipeline():  # one write (unless more than frame_capacity replies or the send buffer's size)
            try:
                fs.append(c._cmd(None, _MULTI))
                started = True
                for x in self._queued:
                    fs.append(c._cmd(None, x._args))
                fs.append(c._cmd(self._exec_reply, _EXEC))
            except BaseException as e:
                # A MULTI without its EXEC would queue every later command of the connection: drop it (the server
                # discards the transaction with the connection). Before MULTI nothing was written.
                if started and c._conn is not None:
                    c._broken(ConnectionError("a transaction was interrupted while it was sent: connection dropped"),
                              None)
                self._fail(e if isinstance(e, RedisError) else ConnectionError("transaction not sent: %r" % e))
                raise

    def _exec_reply(self, v):
        # The EXEC slot's conversion: it runs as soon as the reply is read, before the next frame. Redis before 7.2
        # (redis/redis#12326) puts the RESP3 push of a message EXEC publishes to a channel this connection
        # subscribes to inside the EXEC array, where it counts as an element: the array ends early and its last
        # replies would be taken for the next commands' replies. Drop the connection instead.
        if type(v) is list and _has_push(v):
            err = ProtocolError("the server put a push message inside the EXEC reply (Redis < 7.2, "
                                "redis/redis#12326): connection dropped, the transaction ran; do not "
                                "publish to this connection's own channels in a transaction")
            if self._client._conn is not None:
                self._client._broken(err, None)
            return err
        return v

    def _fail(self, err):
        for x in self._queued:
            if x._args is not None:
                x._value = err
                x._args = None

    def _ready(self):
        if self._futures is None:
            return True  # inside the with block: wait() raises at once, saying why
        if self._futures is _BUSY:
            return False  # its reply is being read (by a wait() that called the push_handler that asks)
        for f in self._futures:
            if not f.ready():  # pyright: ignore[reportAttributeAccessIssue]  (not _BUSY here)
                return False
        self._finish()
        return True

    def _finish(self):
        fs = self._futures
        if fs is None:
            raise RedisError("a transaction is sent when its with block ends: wait() its results after the block")
        if fs is _BUSY:
            raise RedisError("the transaction's reply is being read (this wait() came from a push_handler called "
                             "by that read): wait its results after it")
        q = self._queued
        if len(fs) != len(q) + 2:
            self._fail(RedisError("the transaction was not sent"))  # (every result was failed already: a guard)
            return
        self._futures = _BUSY
        try:
            for i in range(len(fs)):
                # (in place: the futures are recycled once waited; in this frame: MicroPython takes the frame of a
                # function with `except ... as e` from the heap, on every call)
                try:
                    fs[i] = fs[i].wait()  # pyright: ignore[reportAttributeAccessIssue]  (not _BUSY here)
                except RedisError as e:
                    fs[i] = e
        except BaseException as e:
            # interrupted while reading (^C, MemoryError): the core dropped the connection, so no reply will come
            self._futures = ()
            self._fail(ConnectionError("the transaction's reply was not read: %r interrupted it" % e))
            raise
        self._futures = ()
        # the results (in this frame too: a call more would be another heap frame)
        for v in fs:
            if isinstance(v, Exception) and not isinstance(v, ReplyError):
                self._fail(v)  # the connection failed (a deadline, a lost socket): its error, for every command
                return
        for i in range(len(q)):
            v = fs[i + 1]
            if isinstance(v, Exception):
                _set(q[i], v)  # refused while queued (arity, unknown command...): its own error; EXEC aborts
            elif not ((v == b"QUEUED") if type(v) is bytes else (v == "QUEUED")):
                _set(q[i], ProtocolError("unexpected reply to a queued %s: %r" % (_name(q[i]), v)))
        r = fs[-1]  # MULTI's +OK is fs[0] (an error there: the replies above say what happened)
        if isinstance(r, Exception):
            self._fail(r)  # EXECABORT (a command was refused while queued), or the connection's error
        elif r is None:
            self._fail(WatchError("transaction aborted: a watched key changed (nothing ran)"))
        elif type(r) is not list or len(r) != len(q):
            self._fail(ProtocolError("unexpected reply to EXEC of %d commands: %r" % (len(q), r)))
        else:
            for i in range(len(q)):
                x = q[i]
                if x._args is not None:
                    v = r[i]
                    c = x._conv
                    if c is not None and not isinstance(v, Exception):
                        v = ok(v) if c is ok else _convert(x, v)  # (ok never raises: the client calls it bare too)
                    _set(x, v)


def _has_push(v):
    # (a loop of its own: its iterator's stack words would take _exec_reply's frame past 11 words, onto the heap)
    for x in v:
        if type(x) is Push:
            return True
    return False


def _check_all(args):
    for a in args:
        check(a)


def _set(x, v):
    x._value = v
    x._args = None


def _name(x):
    from .rare import about
    a = x._args
    return about(a[0], a[1] if len(a) > 1 else None)


def _convert(x, v):
    # (an error reply inside the EXEC array fails only its own command, as in Redis: the others ran)
    try:
        return x._conv(v)
    except Exception as e:
        from .rare import failed
        a = x._args
        return failed(v, a[0], a[1] if len(a) > 1 else None, e)


_cls = None


def begin(client, catalogue):
    # commands.py passes its mixins (importing them here would be an import cycle); the class is made once
    global _cls
    if _cls is None:
        _cls = type("Transaction", (_Tx,) + catalogue, {})
    return _cls(client)
