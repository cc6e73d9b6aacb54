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
from .resp import NEED_DATA, Push
from .future import Future, Batch
from .send import Sender, RAW, OK  # noqa: F401 (RAW and OK are re-exported for the catalogue)

# Future states (future.py)
_FREE = const(0)
_PENDING = const(1)
_DONE = const(2)
_INVALID = const(3)

# Reply conversions, applied when a reply resolves its future
# codes 2 and up, and functions, are the catalogue's (commands2.py), applied by its _convert()
# a callable conv (commands.py) is applied as conv(reply)

# RESP2 subscribed mode: arrays starting with these are pub/sub frames, not replies
_PUBSUB2 = (b"message", b"pmessage", b"smessage", b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe",
            b"punsubscribe", b"sunsubscribe")

_PUBSUB2S = ("message", "pmessage", "smessage", "subscribe", "psubscribe", "ssubscribe", "unsubscribe",
             "punsubscribe", "sunsubscribe")  # the same with decode_responses



_CUT = ProtocolError("the conversion of this reply was interrupted")


def _pubsub():
    try:
        from . import pubsub
    except ImportError as e:
        if "pubsub" not in str(e):
            raise
        raise ImportError("microredis.pubsub is not installed: install package-pubsub.json (mip) or copy pubsub.py")
    return pubsub


def _in_step(e):
    # a ProtocolError raised by a reader that had consumed the frame (older readers raise on text that is not
    # UTF-8; newer ones return the error)
    return "UTF-8" in str(e)


def _short(v):
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _about(nm, key):
    # "GET b'key'" for error messages (rare path); never the argument of AUTH
    try:
        if type(nm) is not str:
            nm = bytes(nm)
            if nm[:1] == b"*":  # a hot command's constant prefix: *2 $3 GET
                nm = nm.split(b"\r\n")[2]
            nm = nm.decode()
        if key is None or nm.upper() in ("AUTH", "HELLO"):
            return nm
        if type(key) is not str and type(key) is not int and type(key) is not float:
            key = bytes(key[:40])
        return "%s %s" % (nm, _short(key))
    except Exception:
        return "a command"


class CoreClient(Sender):
    """push_handler: called with each RESP3 push frame no subscription takes (e.g. CLIENT TRACKING invalidations),
    from whichever wait(), ready() or close() reads it. It may issue and wait commands of this client (re-read an
    invalidated key): the outer wait() still returns its own future's reply. An exception it raises comes out of
    that wait()/ready() after the push was consumed, so every future stays matched; raised during close(), the
    socket is dropped instead of being reused."""

    def __init__(self, conn, timeout_ms, clock):
        self._conn = conn  # the handler's live connection: transport, reader, encoder
        self._t = conn.transport
        self._r = conn.reader
        self._e = conn.encoder
        self._clock = clock
        self._tmo = timeout_ms
        self._rawn = 0  # replies to send_raw() still unread (pubsub.py); -1: unknown, so only a re-dial cleans up
        cap = conn.reader.params.frame_capacity
        self._cap = cap
        self._fut = [None] * cap
        self._conv = [0] * cap
        self._into = [None] * cap
        self._sent = [0] * cap
        self._xtra = [0] * cap  # ms added to the deadline of a blocking command (BLPOP); -1: no deadline
        self._head = 0
        self._n = 0  # pending (sent or queued) replies
        self._unsent = 0  # of those, queued in the send buffer and not yet sent
        self._batch = 0
        self._pipe = Batch(self)
        # Waited futures are reissued first-in first-out, so a handle kept after wait() is detected as stale for
        # as long as possible (until frame_capacity more futures have been waited).
        # twice frame_capacity: a pipelined batch may hold more futures than there are slots
        self._pool = [Future(self) for _ in range(cap)] + [None] * cap
        self._npool = cap
        self._ph = 0  # oldest free future in the ring
        self.unwaited_errors = 0  # error replies read for futures nobody has waited (yet)
        self.last_unwaited_error = None
        self.push_handler = None  # called with each RESP3 push frame that no subscription takes
        self._sub = None  # the Subscription sharing this connection, if any
        self._waiting = None  # the future a wait() is reading for (told apart on a timeout)
        self._r2sub = False  # RESP2 subscribed mode: only the subscribe family and PING may be sent
        self._gen = 0  # counts resolved slots (mod 2**14), so a read notices what a push_handler resolved
        self._hx = False  # the exception being raised is the push_handler's own
        # per slot, for error messages only (references, nothing allocated): command name (or a hot command's
        # prefix) and first argument
        self._nm = [None] * cap
        self._key = [None] * cap

    # ---- pub/sub and the low-level stream (pubsub.py) -----------------------------------------------------------
    def subscribe(self, *channels):
        return _pubsub().subscribe(self, 0, channels)

    def psubscribe(self, *patterns):
        return _pubsub().subscribe(self, 1, patterns)

    def ssubscribe(self, *channels):
        return _pubsub().subscribe(self, 2, channels)

    def send_raw(self, value):
        """Write a command (a list of arguments) or raw protocol bytes; only when no future is pending."""
        _pubsub().send_raw(self, value)

    def read_raw(self, timeout_ms=0):
        """The next frame (reply or push) or None after timeout_ms; only when no future is pending."""
        return _pubsub().read_raw(self, timeout_ms)

    def _check(self, a):
        check(a)

    # ---- receiving ------------------------------------------------------------------------------------------
    # Every read path leaves the connection in step or drops it: an exception that escapes a read (a ^C in the
    # middle of parsing, a reply that cannot be copied) breaks the connection, except the push_handler's own
    # exceptions, which are raised after their push frame has been consumed (nothing is out of step then).
    def _poll(self):
        # ready(): take whatever has arrived, never block; a passed deadline fails the futures (so a ready() loop
        # ends) just as wait() would
        self.flush()
        while self._n:
            if not self._read_one(0):
                h = self._head
                if self._n and self._remaining(h) == 0:
                    self._broken(TimeoutError("no reply within %d ms" % self._tmo), self._fut[h])
                return

    def _read_for(self, f):
        self.flush()
        if self._n == 0:
            raise InvalidFuture("future does not belong to a pending command of this client")
        prev = self._waiting  # a push_handler may wait a command while an outer wait() reads
        self._waiting = f
        try:
            self._read_one(None)
        finally:
            self._waiting = prev

    def _read_one(self, limit):
        # Reads until the oldest slot is resolved (or, when a push_handler waited commands, until any slot was).
        # limit None: wait up to the deadline of the future being waited (else the oldest one's); 0: only what has
        # arrived. Returns True if a slot was resolved. Push frames met on the way go to the subscription.
        self._hx = False
        try:
            return self._read1(limit)
        except BaseException as e:
            if self._hx:
                self._hx = False  # the push_handler's own exception: its frame was consumed, all is in step
            elif self._conn is not None:
                self._lost(e)
            raise

    def _read1(self, limit):
        if self._unsent:
            self.flush()
        while True:
            d = self._deadline_slot()
            v = self._next(self._remaining(d) if limit is None else limit)
            if v is NEED_DATA:
                if limit is not None:
                    return False
                if self._remaining(d) == 0:
                    err = TimeoutError("no reply within %d ms" % self._tmo)
                    self._broken(err, self._fut[d])
                    raise err
                continue
            g = self._gen
            if self._dispatch(v) or g != self._gen:
                return True  # (a push_handler that waited a command resolved slots: the caller re-checks)

    def _deadline_slot(self):
        w = self._waiting
        i = self._head
        if w is not None:
            k = 0
            while k < self._n:
                if self._fut[i] is w:
                    return i
                i = 0 if i + 1 == self._cap else i + 1
                k += 1
            i = self._head
        return i

    def _next(self, ms):
        # One frame, or NEED_DATA when it has not arrived after one receive of up to ms (0: no waiting; <0: no
        # limit). The oldest slot's get_into() reply is copied straight into its buffer.
        v = self._get()
        if v is NEED_DATA and self._recv(ms):
            v = self._get()
        return v

    def _get(self):
        r = self._r
        dest = None
        if self._n:
            dest = self._into[self._head]
            if dest is not None and not getattr(r, "_skip", True):
                # A get_into() value that does not fit is discarded with MemoryFull; older readers leave
                # skipped_type as it was (62 after a dropped push), so clear it: only a skip that begins now sets it
                r.skipped_type = 0
        p = r._r  # where the frame starts: its type byte tells a push from a reply if it cannot be built
        try:
            v = r.gets() if dest is None else r.gets_into(dest)
        except MemoryFull as e:
            # the reader discarded a frame and is still in sync
            t = r.skipped_type
            if t == 62 or (self._r2sub and t == 42):
                self._push_dropped()  # a push (RESP2 subscribed mode: any array) was never a command's reply
                return NEED_DATA
            return e
        except ProtocolError as e:
            if r._r != p and _in_step(e):
                return self._unbuilt(e, p)  # older readers raise this after consuming the frame
            self._broken(e, None)
            raise
        except BaseException as e:
            # e.g. a get_into() buffer that cannot be written, or ^C: the reader may be mid-reply, so the stream is
            # lost
            self._broken(e if isinstance(e, RedisError) else ProtocolError("reply could not be read: %r" % e), None)
            raise
        if type(v) is ProtocolError:
            return self._unbuilt(v, p)
        return v

    def _unbuilt(self, e, p):
        # A frame was consumed but could not be built (e.g. not UTF-8 with decode_responses): the error is the
        # reply of the oldest slot, unless the frame was a push, which is dropped like an oversized one
        t = self._r.buf[p]
        if t == 62 or (self._r2sub and t == 42):
            self._push_dropped()
            return NEED_DATA
        return e

    def _push_dropped(self):
        s = self._sub
        if s is not None:
            s.dropped += 1

    def _next_msg(self, ms, dest, chan):
        # receive_into(): like _next(), but a pub/sub message is copied into dest/chan (its length returned)
        r = self._r
        v = self._get_msg(dest, chan)
        if v is NEED_DATA and self._recv(ms):
            v = self._get_msg(dest, chan)
        return v

    def _get_msg(self, dest, chan):
        r = self._r
        p = r._r
        try:
            v = r.gets_msg_into(dest, chan)
        except MemoryFull:
            raise  # a message that does not fit: discarded, the reader is in step
        except ProtocolError as e:
            if r._r != p and _in_step(e):
                return self._unbuilt(e, p)
            self._broken(e, None)
            raise
        except BaseException as e:
            self._lost(e)  # ^C half-way through a message leaves the stream mid-frame
            raise
        if type(v) is ProtocolError:
            return self._unbuilt(v, p)
        return v

    def _recv(self, ms):
        r = self._r
        try:
            r.space()
            k = self._t.recv_into(r.buf, r.wpos, ms)
        except BaseException as e:
            self._lost(e)
            raise
        if k:
            r.wrote(k)
            return True
        return False

    def _dispatch(self, v):
        # True if v resolved the oldest slot; False if it was an out-of-band frame
        t = type(v)
        if t is Push or (self._r2sub and t is list and v and
                         (v[0] in _PUBSUB2 if type(v[0]) is bytes else v[0] in _PUBSUB2S)):
            self._push(v)
            return False
        if self._n == 0:
            err = ProtocolError("reply received with no command pending")
            self._broken(err, None)
            raise err
        self._resolve(self._head, v)
        return True

    def _remaining(self, h):
        # ms left before slot h's deadline (0: passed); -1: no deadline
        x = self._xtra[h]
        if not self._tmo or x < 0:
            return -1
        c = self._clock
        left = self._tmo + x - c.ticks_diff(c.ticks_ms(), self._sent[h])
        return left if left > 0 else 0

    def _push(self, v):
        # RESP3 out-of-band frames never resolve a command's future
        s = self._sub
        if s is not None and s._take_push(v):
            return True
        if self.push_handler is not None:
            try:
                self.push_handler(v)
            except BaseException:
                self._hx = True  # (see _read_one)
                raise
        return True

    def _resolve(self, h, v):
        # The slot is released before the reply is converted, so a conversion that fails (a reply of an
        # unexpected shape) fails only this future and every later reply still goes to its own future.
        f = self._fut[h]
        c = self._conv[h]
        nm = self._nm[h]
        key = self._key[h]
        if self._into[h] is not None and v is not None and type(v) is not int and not isinstance(v, Exception):
            # get_into() gives a length or None; a reply of another shape was not copied anywhere
            v = ProtocolError("unexpected reply to GET (get_into): %s" % _short(v))
        self._fut[h] = None
        self._into[h] = None
        self._nm[h] = None
        self._key[h] = None
        self._head = 0 if h + 1 == self._cap else h + 1
        self._n -= 1
        self._gen = (self._gen + 1) & 0x3FFF
        if isinstance(v, Exception):
            if type(v) is ProtocolError and nm is not None:
                v = ProtocolError("%s (reply to %s)" % (v, _about(nm, key)))
        elif c:
            f._v = _CUT
            f._st = _DONE  # until the conversion returns: ^C in it must not leave a future with no slot pending
            try:
                v = self._convert(c, v)
            except Exception as e:
                v = ProtocolError("unexpected reply to %s: %s (%s)" % (_about(nm, key), _short(v), e))
        f._v = v
        f._st = _DONE
        if isinstance(v, Exception):
            self.unwaited_errors += 1
            self.last_unwaited_error = v

    def _convert(self, c, v):
        # the core knows RAW and OK; the command catalogue overrides this for its other conversions
        if c == OK:
            # compare like with like: MicroPython warns on bytes == str
            if (v == b"OK") if type(v) is bytes else (v == "OK"):
                return True
        return v

    def _recycle(self, f):
        n = self._npool
        p = len(self._pool)
        if n < p:
            k = self._ph + n
            self._pool[k - p if k >= p else k] = f
            self._npool = n + 1

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
        if timed_out is None and self._n:
            timed_out = self._fut[self._head]
        msg = "reply cannot be matched any more: %s" % err
        before = True
        while self._n:
            h = self._head
            f = self._fut[h]
            if f is timed_out:
                late = True
                before = False
            else:
                late = timeout and before and self._remaining(h) == 0
            self._fut[h] = None
            self._into[h] = None
            self._nm[h] = None
            self._key[h] = None
            f._st = _INVALID
            f._v = err if late else InvalidFuture(msg)
            self._head = 0 if h + 1 == self._cap else h + 1
            self._n -= 1
        self._unsent = 0
        conn = self._conn
        self._conn = None
        if conn is not None:
            conn.fail()
            if self._rp is not None:
                self._rp.h.last_error = err  # h.last_error (retry.py): the error that cost the connection

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
            while self._n:
                self._read_one(None)
            clean = True
        finally:
            if self._conn is not None:
                if clean:
                    self._conn.release(self)
                else:
                    self._lost(ConnectionError("close() could not read every pending reply"))
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, a, b, c):
        self.close()
        return False
