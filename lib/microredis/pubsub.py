"""Pub/Sub on RESP2 and RESP3 (Subscription, Message) and the low-level frame stream, on the client's one parser."""
# Subscribe-family commands take no reply slot: their confirmations are push frames (RESP3) or out-of-band arrays
# (RESP2), counted here, so they can never be matched to a command's future. RESP3 keeps the connection usable for
# commands; RESP2 puts it in subscribed mode, where the client refuses other commands before sending them.

from .errors import ConnectionError, RedisError, MemoryFull, NoPermissionError, ProtocolError, ReplyError, TimeoutError
from .resp import NEED_DATA, Push

_next_msg = None  # msginto.next_msg, loaded by the first receive_into() (a subscriber using receive() never pays)
_KINDS = (b"message", b"pmessage", b"smessage")
_CONFIRM = (b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe", b"punsubscribe", b"sunsubscribe")
_SUB = (b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE")
_UNSUB = (b"UNSUBSCRIBE", b"PUNSUBSCRIBE", b"SUNSUBSCRIBE")
_FRAME = 64  # bytes a confirmation or message frame adds around its channel name (with room to spare)


def _run(co):
    # Runs a body of Subscription (a coroutine that aio_pubsub.AsyncSubscription awaits) to its end: the waits of
    # this class block on the socket, so it never suspends
    try:
        co.send(None)
    except StopIteration as e:
        return e.value
    raise RuntimeError  # (never: a wait of this class that suspended)


def _b(x):
    # a name that passed the frame checks (bytes or str) as bytes
    return x.encode() if type(x) is str else x


def _s(x):
    # the server sends channels, patterns and message payloads as bulk strings (str with decode_responses)
    t = type(x)
    return t is bytes or t is str


def _size(x):
    # bytes a queued value occupies (a str's length counts characters, not bytes)
    t = type(x)
    if t is str:
        return len(x.encode())
    if t is list:
        n = 0
        for e in x:
            n += 16 + _size(e)  # each element also costs its reference and object header
        return n
    if x is None:
        return 0
    return len(x)


_INVALIDATE = b"__redis__:invalidate"


def _payload(x, ch):
    # a message payload is a bulk string, except in client-tracking invalidations redirected to the
    # __redis__:invalidate channel: a list of keys, or null when the whole database was flushed
    if _s(x):
        return True
    if not ((ch == _INVALIDATE) if type(ch) is bytes else (ch == "__redis__:invalidate")):
        return False
    if x is None:
        return True
    if type(x) is not list:
        return False
    for e in x:
        if not _s(e):
            return False
    return True


class Message:
    """A pub/sub message: kind (b"message", b"pmessage" or b"smessage"), channel, pattern (pmessage only), payload.
    channel, pattern and payload are bytes (str with decode_responses); kind is always bytes. The one exception:
    a client-tracking invalidation redirected to __redis__:invalidate has a list of keys as payload, or None."""

    def __init__(self, kind, channel, pattern, payload):
        self.kind = kind
        self.channel = channel
        self.pattern = pattern
        self.payload = payload

    def __repr__(self):
        return "Message(%r, %r, pattern=%r, payload=%r)" % (self.kind, self.channel, self.pattern, self.payload)


class Subscription:
    """Created by client.subscribe()/psubscribe()/ssubscribe(). Messages that arrive while commands are waited
    are queued, at most `queue` messages and memory_limit bytes; past that the oldest is dropped and counted in
    `dropped`, as is a message larger than memory_limit or (receive_into) than its buffer.
    A pub/sub frame of the wrong shape (a channel, pattern or payload that is not a bulk string, a count that is
    not an integer, a wrong number of elements) is never used: it is dropped and counted in `malformed`. The
    stream stays in sync and no command's future is affected. A malformed confirmation still counts as the
    confirmation it claims to be, so a subscribe call does not wait for it.
    receive_into() copies the message's channel into channel_buf (channel_buffer bytes, allocated once); a longer
    channel gets a buffer of its own for that message, so read sub.channel_buf after each call, never keep it.
    With the handler's retry policy (h.retry()), a lost connection is re-dialled (on the next command of the client,
    or inside receive()/receive_into(), which then return None instead of raising while the server is away), and
    the subscription subscribes again to every channel, pattern and shard channel it had; `gaps` counts these
    re-subscriptions and `on_gap(sub)` is called after each. Messages published while the connection was down are
    lost: Pub/Sub keeps nothing for a subscriber that is not connected (use a stream for that).
    `channels`, `patterns` and `shard_channels` hold what the server confirmed on the current connection (after a
    loss: what it had, until the re-dial subscribes again). With h.retry(), names the server refuses (NOPERM: an
    ACL change) are not dropped: they move to `refused_channels`, `refused_patterns`, `refused_shard_channels`, the
    error to `last_error` (kept after a later success), and they are asked for again on the retry policy's backoff
    (doubling up to max_backoff_ms, with jitter), one round trip per attempt, inside receive()/receive_into() and
    before the client's next command. A re-subscription after a re-dial never raises for a refusal (its gap is
    counted as usual, on_gap sees the refused names); a subscribe()/psubscribe()/ssubscribe() call on an existing
    subscription raises NoPermissionError and keeps the refused names (unsubscribe() drops them). Once the server
    accepts them, messages flow again: that counts as a gap too (messages published meanwhile were lost), and
    on_gap is called. Without h.retry() a refusal is only raised, and nothing is kept."""

    _KINDS = _KINDS  # the frame names, for the zero-copy message reads (msginto.py) and noperm.py
    _CONFIRM = _CONFIRM
    _run = staticmethod(_run)  # (retry.py, noperm.py: a body run to its end)

    gaps = 0  # re-subscriptions after a re-dial or a refusal (each one closes a window in which messages were lost)
    on_gap = None  # called with the Subscription after each re-subscription
    last_error = None  # h.retry(): the last refusal (NoPermissionError) of a name this subscription wants

    def __init__(self, client, queue=16, channel_buffer=64):
        self._c = client
        self._bind()
        self.channels = set()
        self.patterns = set()
        self.shard_channels = set()
        # h.retry(): names wanted but refused by the server (NOPERM), asked for again on the backoff (noperm.py)
        self.refused_channels = set()
        self.refused_patterns = set()
        self.refused_shard_channels = set()
        self._users = 0  # client.subscribe() calls on it in progress (aio): a failed one keeps it for the others
        self._q = [None] * queue
        self._qh = 0
        self._qn = 0
        self._qbytes = 0
        self._qlimit = client._reader._limit
        self._qs = [0] * queue  # bytes of each queued message
        self.dropped = 0  # messages dropped: queue full, larger than memory_limit or than receive_into's buffer
        self.malformed = 0  # pub/sub frames of the wrong shape, dropped
        self.kind = None  # receive_into(): kind of the last message
        self._cbase = bytearray(channel_buffer)
        self.channel_buf = self._cbase  # receive_into(): its channel, channel_buf[:channel_len]
        self.channel_len = 0
        self.active = True

    def _bind(self):
        # what belongs to the connection (also retry.py's, once the client is bound to a new one): nothing is
        # confirmed or due on it yet
        self._r2 = self._c._conn.protocol == 2
        self._want = 0  # confirmations still expected
        self._count = 0  # subscriptions the server reported in its last confirmation; -1: unknown (malformed)
        self._ahead = 0  # replies due before the answer to the subscribe-family command in flight (aio_pubsub.py)
        self._err = None  # the server's error reply to that command (e.g. SSUBSCRIBE before Redis 7, NOPERM)

    # ---- subscribing: one body for both clients -----------------------------------------------------------------
    # The bodies (_act, _close, _ping, _open) are coroutines: aio_pubsub.AsyncSubscription awaits them, this class
    # runs them with _run(). They wait only in _confirmed() (the confirmations due), in AsyncSubscription's turn
    # (_act) and for PING's reply (the client's own wait): the two classes differ in those alone, blocking reads
    # here, the reader task there.
    def subscribe(self, *channels):
        _run(self._act(0, channels, True, True))
        return self

    def psubscribe(self, *patterns):
        _run(self._act(1, patterns, True, True))
        return self

    def ssubscribe(self, *channels):
        """Sharded channels (Redis 7); older servers answer with an error, raised here."""
        _run(self._act(2, channels, True, True))
        return self

    def unsubscribe(self, *channels):
        _run(self._act(0, channels, False))

    def punsubscribe(self, *patterns):
        _run(self._act(1, patterns, False))

    def sunsubscribe(self, *channels):
        _run(self._act(2, channels, False))

    async def _act(self, i, names, sub, keep=False):
        # One subscribe-family command: sent, its confirmations waited for, the server's refusal raised. keep (a call
        # on an existing subscription): with h.retry(), the names of a refused call (NOPERM) are kept and asked for
        # again (noperm.py); the call still raises, as the answer to it
        self._err = None  # (a refusal nobody took, of an interrupted or cancelled call, is not this command's)
        try:
            self._send(i, names, sub)
            await self._confirmed()
            if self._want > 0:
                raise ConnectionError("connection lost before the server confirmed")
            err = self._err
            if err is not None:
                self._err = None
                raise err
        except NoPermissionError as err:
            c = self._c
            rp = c._retry
            if keep and rp is not None and rp.retry and c._conn is not None and self.active:
                from .noperm import refused  # (h.retry()'s, loaded on the first refusal)
                refused(rp, self, i, names, err)
            raise err

    def _sets(self, i):
        return (self.channels, self.patterns, self.shard_channels)[i]

    def _owes(self):
        # names wanted but refused, still to ask for (noperm.py)
        return bool(self.refused_channels or self.refused_patterns or self.refused_shard_channels)

    def _detach(self):
        # closed, or a first subscribe call that left nothing: the client no longer routes frames here
        self.active = False
        self.refused_channels.clear()
        self.refused_patterns.clear()
        self.refused_shard_channels.clear()
        c = self._c
        if c._sub is self:
            c._subscribed(None, False)

    def _live(self):
        # a closed subscription, or one of a closed client, must not read the socket another client now uses
        c = self._c
        if self.active and c._conn is None and c._retry is not None and c._retry.retry:
            c._retry.revive(c)  # retry.py: re-dial (paced) and subscribe again, or raise
        if not self.active or self._c._conn is None:
            raise ConnectionError("subscription is closed")

    def _raw_unread(self):
        # a reply to send_raw() would be read here as a frame nobody asked for
        if self._c._raw_replies > 0:
            raise RedisError("replies to send_raw() are unread: read them with read_raw() first")

    def _send(self, i, names, sub):
        # writes the command and counts the confirmations it is owed; raises before anything is written for a bad
        # name
        c = self._c
        self._live()
        if sub and not names:
            raise ValueError("name at least one channel or pattern")
        lim = c._reader._limit - _FRAME
        for n in names:
            c._check(n)
            if (type(n) is bytes or type(n) is str or type(n) is bytearray or type(n) is memoryview) and \
                    _size(n) > lim:
                # its confirmation (and every message) would be over memory_limit, dropped as it arrives, so the
                # confirmation would be waited for in vain
                raise ValueError("channel name of %d bytes does not fit memory_limit (raise it)" % _size(n))
        self._raw_unread()
        if self._r2 and c._pending:
            # RESP2: an array reply could look like a message, so settle every pending reply first
            while c._pending:
                c._read_one(None)
        c.flush()
        was = c._resp2_subscribed
        if self._r2:
            c._subscribed(self, True)  # RESP2 answers the subscribe family with pub/sub arrays, not replies
        e = c._encoder
        mark = e.n
        fl = e.flushes
        try:
            e.begin(1 + len(names))
            e.arg((_SUB if sub else _UNSUB)[i])
            for n in names:
                e.arg(n)
            e.flush()
        except RedisError as err:
            c._broken(err, None)
            raise err
        except Exception as err:
            if e.flushes != fl:
                c._broken(ProtocolError("a command failed half-sent: %r" % err), None)
            else:
                e.n = mark  # nothing left the buffer: the connection stays usable
                c._subscribed(self, was)
            raise err
        self._ahead = c._pending  # every queued command went first: their replies come before this one's answer
        if not sub and self._owes():
            from .noperm import unwanted  # (loaded: names were refused)
            unwanted(self, i, names)  # a refused name unsubscribed is no longer asked for
        if names:
            self._want += len(names)
        else:
            k = len(self._sets(i))
            self._want += k if k else 1  # the server confirms "unsubscribed from nothing" once

    def _left(self, start):
        # ms left of the client's timeout for the confirmations due since start (-1: no timeout); past it the
        # connection is broken (what the server holds is unknown)
        c = self._c
        if not c._timeout_ms:
            return -1
        ms = c._timeout_ms - c._clock.ticks_diff(c._clock.ticks_ms(), start)
        if ms <= 0:
            err = TimeoutError("subscription not confirmed within %d ms" % c._timeout_ms)
            c._broken(err, None)
            raise err
        return ms

    def _refused(self, err):
        # an error reply where the answer to the subscribe-family command in flight is due answers it (e.g.
        # SSUBSCRIBE on Redis 6, NOPERM): the server confirms nothing more; _act raises it
        if err.code == "DENIED":  # protected mode, after a dial that sent nothing (rare.refusal)
            from .rare import refusal
            err = refusal(self._c, err)
        self._want = 0
        self._err = err
        if self._r2 and not (self.channels or self.patterns or self.shard_channels):
            self._c._subscribed(self, False)  # RESP2: the server never entered subscribed mode

    async def _confirmed(self, each=None):
        # The confirmations due, read here (aio_pubsub.py: counted by the reader task): frames are read until every
        # one has arrived; messages are queued, replies resolve their futures. each (noperm.py): the names of
        # one-name commands just written, one confirmation due each, whose error replies are collected (returned),
        # not taken as the answer
        c = self._c
        bad = None
        if each is not None:
            self._want += len(each)
        start = c._clock.ticks_ms()
        while self._want > 0:
            v = c._next(self._left(start))
            if v is NEED_DATA:
                continue
            if not c._pending and isinstance(v, ReplyError):
                # with no command pending, an error reply answers the subscribe command itself: the server confirms
                # nothing more. Anything else (a reply over memory_limit) answers nothing: _dispatch() takes it as
                # the protocol error it is
                if each is not None:
                    # one name per command, answered in order: this refusal is for the name at its place
                    if bad is None:
                        bad = []
                    bad.append(each[len(each) - self._want])
                    self._want -= 1
                    self.last_error = v
                    continue
                self._refused(v)
                continue
            c._dispatch(v)
        return bad

    # ---- frames routed here by the client --------------------------------------------------------------------
    def _is_frame(self, v):
        # RESP2 subscribed mode (client.py's dispatch): an array starting with one of the frame names is a pub/sub
        # frame, not a reply (str with decode_responses)
        if type(v) is not list or not v:
            return False
        k = v[0]
        if type(k) is str:
            k = k.encode()
        return k in _KINDS or k in _CONFIRM

    def _take_push(self, v):
        # True if v was a pub/sub frame (message or confirmation), used or dropped as malformed
        n = len(v)
        if n == 0:
            return False
        k = v[0]
        if type(k) is str:
            k = k.encode()
        elif type(k) is not bytes:
            return False
        if n < 3:
            if k in _KINDS or k in _CONFIRM:
                self.malformed += 1
                return True
            return False
        if k in _KINDS:
            if n != (4 if k == b"pmessage" else 3) or not (_s(v[1]) and _s(v[n - 2]) and _payload(v[n - 1], v[n - 2])):
                self.malformed += 1
                return True
            if n == 4:
                self._queue(Message(_KINDS[1], v[2], v[1], v[3]))
            else:
                self._queue(Message(_KINDS[0] if k == b"message" else _KINDS[2], v[1], None, v[2]))
            return True
        if k in _CONFIRM:
            i = _CONFIRM.index(k)
            ch = v[1]
            asked = self._want > 0
            if asked:
                self._want -= 1
            # a subscribe confirmation nobody waits for is not believed (the sets stay as large as what was
            # asked for); an unsolicited unsubscribe is real (Redis 7 sends sunsubscribe when a slot moves)
            if n != 3 or type(v[2]) is not int or not (_s(ch) or (ch is None and i >= 3)) or (i < 3 and not asked):
                self.malformed += 1
                self._count = -1
                return True
            self._count = v[2]
            s = self._sets(i % 3)
            if ch is None:
                # "unsubscribed from nothing" comes once and ends that command's confirmations: the server has
                # none of this kind, whatever the bookkeeping says
                s.clear()
                self._want = 0
            elif i < 3:
                s.add(_b(ch))
            else:
                s.discard(_b(ch))
            if self._r2 and i >= 3 and v[2] == 0 and self._want == 0 and \
                    not (self.channels or self.patterns or self.shard_channels):
                self._c._subscribed(self, False)  # RESP2: the server left subscribed mode
            return True
        return False

    def _queue(self, m):
        q = self._q
        size = _size(m.payload) + _size(m.channel)
        if size > self._qlimit:
            self.dropped += 1  # never queued, and the queue is left as it is
            return
        while self._qn and (self._qn == len(q) or self._qbytes + size > self._qlimit):
            self._qbytes -= self._qs[self._qh]
            q[self._qh] = None
            i = self._qh + 1
            self._qh = i - len(q) if i >= len(q) else i
            self._qn -= 1
            self.dropped += 1
        i = self._qh + self._qn
        i = i - len(q) if i >= len(q) else i
        q[i] = m
        self._qs[i] = size
        self._qn += 1
        self._qbytes += size

    def _pop(self):
        q = self._q
        m = q[self._qh]
        q[self._qh] = None
        self._qbytes -= self._qs[self._qh]
        i = self._qh + 1
        self._qh = i - len(q) if i >= len(q) else i
        self._qn -= 1
        return m

    # ---- receiving ---------------------------------------------------------------------------------------------
    def receive(self, timeout_ms=0):
        """The next Message, or None if none arrives within timeout_ms (0: never blocks)."""
        rp = self._c._retry
        if rp is not None:
            return rp.receive(self, timeout_ms, None)  # retry.py: re-dials a lost connection within the call
        return self._receive(timeout_ms)

    def _receive(self, timeout_ms):
        self._live()
        self._raw_unread()
        c = self._c
        clock = c._clock
        start = clock.ticks_ms()
        while True:
            if self._qn:
                return self._pop()
            ms = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start) if timeout_ms > 0 else 0
            if timeout_ms > 0 and ms <= 0:
                return None
            v = c._next(ms if ms > 0 else 0)
            if v is NEED_DATA:
                if timeout_ms <= 0:
                    return None
                continue
            c._dispatch(v)

    def receive_into(self, buffer, timeout_ms=0):
        """Zero-copy receive: the payload of the next message is copied into `buffer` and its length returned
        (None when none arrives in time). self.kind is the message kind and channel_buf[:channel_len] its
        channel. A message longer than `buffer` is dropped and counted in self.dropped, as is one whose payload is
        not a string (a tracking invalidation: use receive() for those). Nothing is allocated
        for a message read straight off the wire with no command pending and a channel within channel_buffer."""
        rp = self._c._retry
        if rp is not None:
            return rp.receive(self, timeout_ms, buffer)  # retry.py: re-dials a lost connection within the call
        return self._receive_into(buffer, timeout_ms)

    def _receive_into(self, buffer, timeout_ms):
        global _next_msg
        next_msg = _next_msg
        if next_msg is None:
            from .msginto import next_msg
            _next_msg = next_msg
        self._live()
        self._raw_unread()
        t = type(buffer)
        if t is not bytearray and t is not memoryview:
            raise TypeError("buffer must be a bytearray or memoryview")
        try:
            buffer[0:0] = b""  # a read-only memoryview fails here, not after a message was taken off the wire
        except TypeError:
            raise TypeError("buffer must be writable")
        c = self._c
        clock = c._clock
        start = clock.ticks_ms()
        while True:
            if self._qn:
                n = self._copy_queued(buffer)
                if n >= 0:
                    return n
                continue
            ms = 0
            if timeout_ms > 0:
                ms = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
                if ms <= 0:
                    return None
            if c._pending:
                v = c._next(ms)
            else:
                try:
                    v = next_msg(c, ms, buffer, self._cbase)
                except MemoryFull as e:
                    if c._conn is None:
                        raise e  # the receive buffer could not grow: the connection was dropped
                    # over the buffer (or memory_limit): discarded by the reader, which is still in sync
                    self.dropped += 1
                    continue
                if type(v) is int:
                    r = c._reader
                    self.kind = r.msg_kind
                    self.channel_buf = self._cbase
                    self.channel_len = r.msg_clen
                    return v
            if v is NEED_DATA:
                if timeout_ms <= 0:
                    return None
                continue
            c._dispatch(v)

    def _copy_queued(self, buffer):
        # the oldest queued message into buffer: its length, or -1 when it did not fit (dropped and counted)
        m = self._pop()
        p = m.payload  # pyright: ignore[reportAttributeAccessIssue]  (a message is queued)
        if not _s(p):
            self.dropped += 1  # a tracking invalidation's list of keys (or None) is no byte string
            return -1
        p = _b(p)
        n = len(p)
        if n > len(buffer):
            self.dropped += 1
            return -1
        buffer[0:n] = p
        ch = _b(m.channel)  # pyright: ignore[reportAttributeAccessIssue]
        k = len(ch)
        cb = self._cbase
        if k > len(cb):
            cb = bytearray(k)  # rare: a channel longer than channel_buffer is never cut
        cb[0:k] = ch
        self.channel_buf = cb
        self.channel_len = k
        self.kind = m.kind  # pyright: ignore[reportAttributeAccessIssue]
        return n

    def channel_is(self, name):
        """After receive_into(): whether the message's channel is `name` (bytes compare without allocating; a
        str is encoded first)."""
        if type(name) is str:
            name = name.encode()
        n = self.channel_len
        if len(name) != n:
            return False
        b = self.channel_buf
        for i in range(n):
            if b[i] != name[i]:
                return False
        return True

    def ping(self, message=None):
        """PING through the subscription (allowed in RESP2 subscribed mode); returns the server's answer."""
        return _run(self._ping(message))

    async def _ping(self, message):
        self._live()
        c = self._c
        if message is not None:
            c._check(message)  # before anything is written
            if self._r2 and type(message) is not int and type(message) is not float and \
                    _size(message) > c._reader._limit - _FRAME:
                # RESP2 answers with an array, dropped as it arrives like an oversized message: waited in vain
                raise ValueError("ping message of %d bytes does not fit memory_limit (raise it)" % _size(message))
        self._raw_unread()
        f = c._begin(None, None, 0, True)
        c._encoder.begin(1 if message is None else 2)
        c._encoder.arg(b"PING")
        if message is not None:
            c._encoder.arg(message)
        w = c._end(f)
        v = f.wait() if w is f else await w  # (the asyncio client's _end gives its wait for the reply)
        if type(v) is list:  # RESP2 subscribed mode answers [b"pong", message]
            k = v[0] if len(v) == 2 else None
            if not ((k == b"pong") if type(k) is bytes else (k == "pong")) or not _s(v[1]):
                raise ProtocolError("PING in subscribed mode answered with %d elements, not [pong, message]" %
                                    len(v))
            return v[1] if message is not None else b"PONG"
        return v

    def close(self):
        """Unsubscribe from everything. RESP2 returns to normal mode; on failure the connection is closed."""
        if self.active:
            _run(self._close())

    async def _close(self):
        c = self._c
        try:
            if self._want > 0 and c._conn is not None:
                # confirmations still due (an interrupted call's; aio: a cancelled or concurrent one's) come first,
                # so that what is held is known
                await self._confirmed()
            if c._conn is not None:
                for i in range(3):
                    if self._sets(i):
                        await self._act(i, (), False)
                if self._r2 and self._count != 0:
                    # the server did not say it holds nothing any more (a confirmation was malformed, or one is
                    # still on its way): it may still be in subscribed mode, whose frames would be taken for replies
                    raise ConnectionError("RESP2 subscribed mode could not be left; the connection is dropped")
        except BaseException as err:
            if c._conn is not None:
                # still subscribed on the server: its frames could be taken for replies (RESP2) or reach the next
                # client, so the socket goes
                c._broken(ConnectionError("subscription could not be closed: %r" % (err,)), None)
            raise err
        finally:
            self._detach()


async def _open(client, cls, kind, names):
    # client.subscribe() (psubscribe, ssubscribe) of both clients: the client's one subscription, made by the first
    # call, once the server confirmed. Refused, a first call leaves no subscription (the caller gets none to receive
    # from), with retry() or without; one still owed an answer stays (aio: a cancelled call's, so that the reader
    # task routes that answer, a refusal included, to it and not to the next command's future)
    if client._conn is None:
        raise ConnectionError("client is closed")
    s = client._sub
    first = s is None
    if first:
        s = cls(client)
        client._subscribed(s, s._r2)
    s._users += 1
    try:
        await s._act(kind, names, True, not first)
    except BaseException:
        s._users -= 1
        if (s._want == 0 or client._conn is None) and s._users == 0 and client._sub is s and \
                not (s.channels or s.patterns or s.shard_channels or s._owes()):
            s._detach()
        raise
    s._users -= 1
    return s


def subscribe(client, kind, names):
    return _run(_open(client, Subscription, kind, names))


def send_raw(client, value):
    """Writes a command (list/tuple of arguments) or raw protocol bytes. Only with no future pending.
    Read its replies with read_raw() before the next command: until the connection is dialled again, nothing
    can tell them from a later command's reply. So the handler dials again on its next connect() (replies left
    unread, MONITOR lines or state the command changed never reach the next Client)."""
    if client._conn is None:
        raise ConnectionError("client is closed")
    if client._pending:
        raise RedisError("send_raw needs no pending futures (wait them first)")
    if not value:
        raise ValueError("send_raw needs a command or protocol bytes")
    t = type(value)
    if t is list or t is tuple:
        for a in value:
            client._check(a)  # TypeError before anything is written
        from .encoder import upper
        from .rare import _REFUSED
        name = upper(value[0])
        known = name not in _REFUSED and name != b"CLIENT"  # exactly one reply, and no change of protocol state
    elif t is bytes or t is bytearray or t is memoryview or t is str:
        known = False  # any number of commands
    else:
        raise TypeError("send_raw takes a list of arguments or protocol bytes (bytes, bytearray, memoryview, str)")
    client.flush()
    # the cached socket carries replies no future accounts for: the next connect() dials again
    client._conn.ok = False
    n = client._raw_replies
    client._owe_raw(n + 1 if known and n >= 0 else -1)  # replies still to read; -1: unknown
    e = client._encoder
    mark = e.n
    fl = e.flushes
    try:
        if t is list or t is tuple:
            e.command(value)
            e.flush()
        else:
            client._transport.send_obj(value.encode() if t is str else value)
    except RedisError as err:
        client._broken(err, None)
        raise err
    except Exception as err:
        if e.flushes != fl:
            client._broken(ProtocolError("a command failed half-sent: %r" % err), None)
        else:
            e.n = mark  # nothing left the buffer
            client._owe_raw(n)
        raise err


def read_raw(client, timeout_ms):
    """The next frame (reply or push) as the reader returns it, or None when none arrives within timeout_ms."""
    if client._conn is None:
        raise ConnectionError("client is closed")
    if client._pending:
        raise RedisError("read_raw needs no pending futures (wait them first)")
    v = client._next(timeout_ms)
    if v is NEED_DATA:
        return None
    n = client._raw_replies
    if n > 0 and type(v) is not Push:
        client._owe_raw(n - 1)
    return v
