"""Pub/Sub on RESP2 and RESP3 (Subscription, Message) and the low-level frame stream, on the client's one parser."""
# Subscribe-family commands take no reply slot: their confirmations are push frames (RESP3) or out-of-band arrays
# (RESP2), counted here, so they can never be matched to a command's future. RESP3 keeps the connection usable for
# commands; RESP2 puts it in subscribed mode, where the client refuses other commands before sending them.

from .errors import ConnectionError, RedisError, MemoryFull, TimeoutError
from .resp import NEED_DATA

_KINDS = (b"message", b"pmessage", b"smessage")
_CONFIRM = (b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe", b"punsubscribe", b"sunsubscribe")
_SUB = (b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE")
_UNSUB = (b"UNSUBSCRIBE", b"PUNSUBSCRIBE", b"SUNSUBSCRIBE")


def _b(x):
    if type(x) is str:
        return x.encode()
    if type(x) is not bytes:
        return bytes(x)
    return x


class Message:
    """A pub/sub message: kind (b"message", b"pmessage" or b"smessage"), channel, pattern (pmessage only), payload."""

    def __init__(self, kind, channel, pattern, payload):
        self.kind = kind
        self.channel = channel
        self.pattern = pattern
        self.payload = payload

    def __repr__(self):
        return "Message(%r, %r, pattern=%r, payload=%r)" % (self.kind, self.channel, self.pattern, self.payload)


class Subscription:
    """Created by client.subscribe()/psubscribe()/ssubscribe(). Messages that arrive while commands are waited
    are queued, at most `queue` messages and memory_limit bytes; past that the oldest is dropped and counted."""

    def __init__(self, client, queue=16, channel_buffer=64):
        self._c = client
        self._r2 = client._conn.protocol == 2
        self.channels = set()
        self.patterns = set()
        self.shard_channels = set()
        self._want = 0  # confirmations still expected
        self._q = [None] * queue
        self._qh = 0
        self._qn = 0
        self._qbytes = 0
        self._qlimit = client._r._limit
        self.dropped = 0  # messages dropped because the queue was full
        self.kind = None  # receive_into(): kind of the last message
        self.channel_buf = bytearray(channel_buffer)  # receive_into(): its channel, channel_buf[:channel_len]
        self.channel_len = 0
        self.active = True

    # ---- subscribing -------------------------------------------------------------------------------------
    def subscribe(self, *channels):
        self._send(0, channels, True)
        return self

    def psubscribe(self, *patterns):
        self._send(1, patterns, True)
        return self

    def ssubscribe(self, *channels):
        """Sharded channels (Redis 7); older servers answer with an error, raised here."""
        self._send(2, channels, True)
        return self

    def unsubscribe(self, *channels):
        self._send(0, channels, False)

    def punsubscribe(self, *patterns):
        self._send(1, patterns, False)

    def sunsubscribe(self, *channels):
        self._send(2, channels, False)

    def _sets(self, i):
        return (self.channels, self.patterns, self.shard_channels)[i]

    def _live(self):
        # a closed subscription, or one of a closed client, must not read the socket another client now uses
        if not self.active or self._c._conn is None:
            raise ConnectionError("subscription is closed")

    def _send(self, i, names, sub):
        c = self._c
        self._live()
        if sub and not names:
            raise ValueError("name at least one channel or pattern")
        for n in names:
            c._check(n)
        if self._r2 and c._n:
            # RESP2: an array reply could look like a message, so settle every pending reply first
            while c._n:
                c._read_one(None)
        c.flush()
        if self._r2:
            c._r2sub = True  # RESP2 answers the subscribe family with pub/sub arrays, not replies
        e = c._e
        e.begin(1 + len(names))
        e.arg((_SUB if sub else _UNSUB)[i])
        for n in names:
            e.arg(n)
        try:
            e.flush()
        except RedisError as err:
            c._broken(err, None)
            raise
        if names:
            self._want += len(names)
        else:
            k = len(self._sets(i))
            self._want += k if k else 1  # the server confirms "unsubscribed from nothing" once
        self._settle()

    def _settle(self):
        # Reads frames until every confirmation has arrived; messages are queued, replies resolve their futures.
        c = self._c
        clock = c._clock
        start = clock.ticks_ms()
        while self._want > 0:
            ms = -1
            if c._tmo:
                ms = c._tmo - clock.ticks_diff(clock.ticks_ms(), start)
                if ms <= 0:
                    err = TimeoutError("subscription not confirmed within %d ms" % c._tmo)
                    c._broken(err, None)
                    raise err
            v = c._next(ms)
            if v is NEED_DATA:
                continue
            if not c._n and isinstance(v, Exception):
                # with no command pending, an error answers the subscribe command itself (e.g. SSUBSCRIBE on
                # Redis 6): the server confirms nothing more
                self._want = 0
                raise v
            c._dispatch(v)

    # ---- frames routed here by the client --------------------------------------------------------------------
    def _take_push(self, v):
        # True if v was a pub/sub frame (message or confirmation)
        if len(v) < 3:
            return False
        k = v[0]
        if type(k) is str:
            k = k.encode()
        if k in _KINDS:
            if k == b"pmessage":
                if len(v) < 4:
                    return False
                self._queue(Message(b"pmessage", v[2], v[1], v[3]))
            else:
                self._queue(Message(_KINDS[0] if k == b"message" else _KINDS[2], v[1], None, v[2]))
            return True
        if k in _CONFIRM:
            i = _CONFIRM.index(k)
            s = self._sets(i % 3)
            if v[1] is not None:
                if i < 3:
                    s.add(_b(v[1]))
                else:
                    s.discard(_b(v[1]))
            if self._want > 0:
                self._want -= 1
            if self._r2 and not (self.channels or self.patterns or self.shard_channels) and self._want == 0:
                self._c._r2sub = False  # RESP2: back to normal mode
            return True
        return False

    def _queue(self, m):
        q = self._q
        size = len(m.payload) + len(m.channel)
        while self._qn and (self._qn == len(q) or self._qbytes + size > self._qlimit):
            old = q[self._qh]
            q[self._qh] = None
            self._qbytes -= len(old.payload) + len(old.channel)
            self._qh = (self._qh + 1) % len(q)
            self._qn -= 1
            self.dropped += 1
        if size > self._qlimit:
            self.dropped += 1
            return
        q[(self._qh + self._qn) % len(q)] = m
        self._qn += 1
        self._qbytes += size

    def _pop(self):
        q = self._q
        m = q[self._qh]
        q[self._qh] = None
        self._qh = (self._qh + 1) % len(q)
        self._qn -= 1
        self._qbytes -= len(m.payload) + len(m.channel)
        return m

    # ---- receiving ---------------------------------------------------------------------------------------------
    def receive(self, timeout_ms=0):
        """The next Message, or None if none arrives within timeout_ms (0: never blocks)."""
        self._live()
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
        channel. Nothing is allocated for a message read straight off the wire with no command pending."""
        self._live()
        c = self._c
        clock = c._clock
        start = clock.ticks_ms()
        while True:
            if self._qn:
                return self._copy_queued(buffer)
            ms = 0
            if timeout_ms > 0:
                ms = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
                if ms <= 0:
                    return None
            if c._n:
                v = c._next(ms)
            else:
                v = c._next_msg(ms, buffer, self.channel_buf)
                if type(v) is int:
                    r = c._r
                    self.kind = r.msg_kind
                    self.channel_len = r.msg_clen
                    return v
            if v is NEED_DATA:
                if timeout_ms <= 0:
                    return None
                continue
            c._dispatch(v)

    def _copy_queued(self, buffer):
        m = self._pop()
        n = len(m.payload)
        if n > len(buffer):
            raise MemoryFull("message of %d bytes does not fit the %d-byte buffer" % (n, len(buffer)))
        buffer[0:n] = m.payload
        ch = m.channel
        k = len(ch) if len(ch) <= len(self.channel_buf) else len(self.channel_buf)
        self.channel_buf[0:k] = ch[0:k]
        self.channel_len = k
        self.kind = m.kind
        return n

    def channel_is(self, name):
        """After receive_into(): whether the message's channel is `name` (compared without allocating)."""
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
        self._live()
        c = self._c
        if message is not None:
            c._check(message)  # before anything is written
        f = c._begin(0, None, 0, True)
        c._e.begin(1 if message is None else 2)
        c._e.arg(b"PING")
        if message is not None:
            c._e.arg(message)
        c._end(f)
        v = f.wait()
        if type(v) is list:  # RESP2 subscribed mode answers [b"pong", message]
            return v[1] if message is not None else b"PONG"
        return v

    def close(self):
        """Unsubscribe from everything. RESP2 returns to normal mode; on failure the connection is closed."""
        if not self.active:
            return
        c = self._c
        try:
            if c._conn is not None:
                if self.channels:
                    self._send(0, (), False)
                if self.patterns:
                    self._send(1, (), False)
                if self.shard_channels:
                    self._send(2, (), False)
        finally:
            self.active = False
            if c._sub is self:
                c._sub = None
                c._r2sub = False


def subscribe(client, kind, names):
    s = client._sub
    if s is None:
        s = Subscription(client)
        client._sub = s
        if s._r2:
            client._r2sub = True
    try:
        s._send(kind, names, True)
    except BaseException:
        if not (s.channels or s.patterns or s.shard_channels) and client._sub is s:
            s.active = False
            client._sub = None
            client._r2sub = False
        raise
    return s


def send_raw(client, value):
    """Writes a command (list/tuple of arguments) or raw protocol bytes. Only with no future pending."""
    if client._conn is None:
        raise ConnectionError("client is closed")
    if client._n:
        raise RedisError("send_raw needs no pending futures (wait them first)")
    if not value:
        raise ValueError("send_raw needs a command or protocol bytes")
    client.flush()
    if type(value) is list or type(value) is tuple:
        client._e.command(value)
        client._e.flush()
    else:
        client._t.send_obj(_b(value))


def read_raw(client, timeout_ms):
    """The next frame (reply or push) as the reader returns it, or None when none arrives within timeout_ms."""
    if client._conn is None:
        raise ConnectionError("client is closed")
    if client._n:
        raise RedisError("read_raw needs no pending futures (wait them first)")
    v = client._next(timeout_ms)
    return None if v is NEED_DATA else v
