"""Core Client and Future: implicit pipelining over one socket, reply slots allocated once, per-reply deadlines."""
# Replies arrive in command order, so pending commands form a ring of `frame_capacity` slots; the oldest slot is
# the one the next reply belongs to. Futures are recycled once wait() has handed over their value, which keeps the
# steady state free of allocation. The command catalogue lives in commands.py so the core can be loaded alone.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import TimeoutError, InvalidFuture, MemoryFull, ProtocolError, RedisError, ConnectionError
from .encoder import check
from .resp import NEED_DATA, Push, copy
from .future import Future, Batch
from . import future
from . import send
from .send import ok, _slot, _flush

# Future states (future.py)
_FREE = const(0)
_PENDING = const(1)
_DONE = const(2)
_INVALID = const(3)

# Reply conversions: None (the reply as read) or a function applied to the reply when it resolves its future
# (send.ok, the catalogue's). A conversion that raises makes the future's ProtocolError.

_CUT = ProtocolError("the conversion of this reply was interrupted")


# Builtins used on the hot path, as module globals (see send.py)
_len = len
_type = type
_bytes = bytes
_memoryview = memoryview
_isinstance = isinstance
_Exception = Exception


_OK = b"OK"  # +OK as _fast_ok gives it: _resolve knows these two objects
_OK_STR = "OK"
_SLOW = object()  # _fast(): the next frame is not a complete simple reply; the reader's scanner takes it


def _digits(buf, p, e):
    # buf[p:e] as a non-negative int of at most 9 digits (a small int on every board); -1 otherwise
    if e <= p or e - p > 9:
        return -1
    v = 0
    while p < e:
        c = buf[p] - 48
        if c < 0 or c > 9:
            return -1
        v = v * 10 + c
        p += 1
    return v


def _pubsub():
    try:
        from . import pubsub
    except ImportError as e:
        if "pubsub" not in str(e):
            raise
        from .errors import text
        raise ImportError(text("pubsub"))
    return pubsub


# ---- the hot read path (plain functions: see send.py) ----------------------------------------------------
def _read_until(c, f):
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
    v = _fast(c)
    if v is NEED_DATA:  # nothing buffered: receive, then parse what came
        if not _fill(c, _remaining(c, _slot_of(c, f))):
            _check_deadline(c, f)
            return
        v = _fast(c)
    if v is not _SLOW:
        if v is NEED_DATA:
            return
        if c._pending:
            _resolve(c, c._head, v)  # a simple reply is never a push frame
            if c._pending:
                _drain(c)
            return
    else:
        p = c._reader._start
        v = c._get()
        if v is NEED_DATA:
            if c._reader._start != p:
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
        v = _fast(c)
        if v is _SLOW or v is NEED_DATA:
            return
        _resolve(c, c._head, v)


def _after_push(c, f):
    # Pushes that keep coming must not stretch a deadline: once nothing else is buffered or waiting in the
    # socket, a passed deadline fails the wait (checked only if f is still pending: a push_handler may have waited
    # it)
    r = c._reader
    if f._state == _PENDING and r._start == r.wpos and _remaining(c, _slot_of(c, f)) == 0:
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


def _fast(c):
    # a value, NEED_DATA (nothing buffered, the reader is idle) or _SLOW
    r = c._reader
    p = r._start
    if r._scanned != p or r._ilen >= 0 or r._skip or r._pend is not None:
        return _SLOW
    if p == r.wpos:
        return NEED_DATA
    e = r.buf.find(b"\r\n", p + 1, r.wpos)
    if e < 0:
        return _SLOW
    t = r.buf[p]
    if t == 36:  # $
        return _fast_bulk(c, p, e)
    if c._pending and c._into[c._head] is not None:
        return _SLOW  # anything but a string is no answer to get_into(): the slow path says so
    if t == 43:  # +
        return _fast_ok(c, p, e)
    if t == 58:  # :
        return _fast_int(c, p, e)
    return _SLOW


def _fast_ok(c, p, e):
    buf = c._reader.buf
    if e == p + 3 and buf[p + 1] == 79 and buf[p + 2] == 75:
        _consume(c, e + 2)
        return _OK_STR if c._reader.decode else _OK
    return _SLOW


def _fast_int(c, p, e):
    buf = c._reader.buf
    neg = buf[p + 1] == 45
    v = _digits(buf, p + 2 if neg else p + 1, e)
    if v < 0:
        return _SLOW  # long, malformed or empty: the scanner decides
    _consume(c, e + 2)
    return -v if neg else v


def _fast_bulk(c, p, e):
    n = _digits(c._reader.buf, p + 1, e)
    if n < 0:
        if e == p + 3 and c._reader.buf[p + 1] == 45 and c._reader.buf[p + 2] == 49:  # $-1: nil
            _consume(c, e + 2)
            return None
        return _SLOW
    p = e + 4 + n  # where the frame ends
    if p > c._reader.wpos or c._reader.buf[p - 2] != 13 or c._reader.buf[p - 1] != 10:
        return _SLOW
    if c._pending and c._into[c._head] is not None:
        return _fast_into(c, e + 2, n, p)
    if c._reader.decode:
        return _SLOW
    n = _bytes(_buffer_view(c)[e + 2:p - 2])
    _consume(c, p)
    return n


def _fast_into(c, a, n, end):
    dest = c._into[c._head]
    if n > _len(dest):
        return _SLOW  # the scanner discards it and raises MemoryFull
    copy(dest, 0, c._reader.buf, a, n)
    _consume(c, end)
    return n


def _buffer_view(c):
    # a memoryview of the receive buffer, made once (a slice of it, then bytes(), copies a value with the
    # fewest allocations); a buffer grown for one large reply is viewed for that reply only
    r = c._reader
    v = c._view
    if v is None or _len(r.buf) != r.params.buffer_size:
        v = _memoryview(r.buf)
        if _len(r.buf) == r.params.buffer_size:
            c._view = v
    return v


def _consume(c, end):
    # what the reader does once it has taken a frame; with everything consumed the next receive starts at 0
    # (no slice, so no allocation), as Reader.space() would arrange
    r = c._reader
    r._need = 0
    r._searched = 0  # the scanner's search hint belongs to the line just taken
    if end == r.wpos and _len(r.buf) == r.params.buffer_size:
        r._start = r._scanned = r.wpos = 0
    else:
        r._start = r._scanned = end


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

    # the sending half (send.py): functions of the client bound as its methods
    _begin = send._begin  # claim a reply slot (pubsub.py, retry.py, retryon.py; the catalogue goes through _cmd)
    _end = send._end  # after the command is encoded: send it unless a pipeline() block is open
    _claim_slow = send._claim_slow  # a full ring, a lost or closed connection, retry(): before a slot is claimed
    _cmd = send._cmd  # the catalogue's one entry: (conv, args, into=None, extra_ms=0) -> Future
    flush = send.flush
    pipeline = send.pipeline
    command = send.command
    set = send.set
    get = send.get
    get_into = send.get_into
    incr = send.incr
    publish = send.publish

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
        # argument; the hot path encodes from them (send._put), error messages quote them
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
        # the command being encoded (send.py): its slot, and the encoder's position to roll back to
        self._last = 0
        self._mark = 0
        self._mark_flushes = 0
        self._sub_ping = False  # a PING the subscription sends in RESP2 subscribed mode (_begin)
        self._view = None  # memoryview of the reader's buffer, for get() values (see _buffer_view)
        self._dropped = None  # the error the futures got when a read broke the connection (future.py)
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
                # long pipeline (send._claim_slow) gets every buffered reply's slot back, not one per receive
                if self._pending:
                    _drain(self)
                return True
            r = self._reader
            if r._start == r.wpos and self._pending:
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
            v = _fast(self)
            if v is not _SLOW:
                return v
            p = self._reader._start
            v = self._get()
            if v is not NEED_DATA or self._reader._start == p:
                return v

    # ---- the fast path: +OK, :n, $n and nil replies read in place --------------------------------------------
    # It reads the reader's documented buffer fields (buf, wpos, _start of the unread data, _scanned position,
    # _skip, _ilen, _pend) and only when the reader is between frames; it consumes a frame as the reader would
    # (_consume). Everything else (errors, aggregates, pushes, frames not yet complete) is left to the scanner.
    def _get(self):
        r = self._reader
        dest = None
        if self._pending:
            dest = self._into[self._head]
            if dest is not None and not getattr(r, "_skip", True):
                # A get_into() value that does not fit is discarded with MemoryFull; older readers leave
                # skipped_type as it was (62 after a dropped push), so clear it: only a skip that begins now sets it
                r.skipped_type = 0
            if dest is not None and r._ilen < 0:
                r._ipos = -1  # a copy that completes sets it to the length: tells a copied value from an integer
        p = r._start  # where the frame starts: its type byte tells a push from a reply if it cannot be built
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
            if r._start != p and in_step(e):
                return unbuilt(self, e, p)  # older readers raise this after consuming the frame
            self._broken(e, None)
            raise
        except BaseException as e:
            # e.g. a get_into() buffer that cannot be written, or ^C: the reader may be mid-reply, so the stream is
            # lost
            self._broken(e if isinstance(e, RedisError) else ProtocolError("reply could not be read: %r" % e), None)
            raise
        if dest is not None and v is not None and v is not NEED_DATA and not isinstance(v, Exception) and \
                (type(v) is not int or r._ipos != v):
            # get_into() gives a length (what was copied) or None; any other reply was copied nowhere
            from .rare import failed
            v = failed(v, None, None, None)
        if type(v) is ProtocolError:
            from .rare import unbuilt
            return unbuilt(self, v, p)
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


future.read_until = _read_until
