# Adversarial review of the hot read path (client.py _fast/_consume) against the reader's scanner state, and of
# the in-place encoder (send.py). Scripted in-process transports that deliver the server's bytes in the chunks a
# TCP stack could produce. test_bug_*: confirmed bugs (they fail until fixed); the other tests are regression
# guards that pass today. Plain MicroPython; runs under CPython too.
from tinytest import eq, ok, raises, now_ms, since, sleep_ms
from devkit import Script, fake_client
import microredis as mr
from microredis.encoder import encode


class Chunks(Script):
    # delivers each scripted chunk in its own receive (as TCP may split a reply anywhere); with nothing left it
    # waits like a socket that gets no more data
    def __init__(self):
        Script.__init__(self)
        self.chunks = []

    def add(self, *chunks):
        for c in chunks:
            self.chunks.append(c)

    def recv_into(self, buf, start, ms):
        if not self.chunks:
            sleep_ms(ms if 0 <= ms < 1000 else 50)
            return 0
        c = self.chunks[0]
        n = len(buf) - start
        if n > len(c):
            n = len(c)
        buf[start:start + n] = c[0:n]
        if n < len(c):
            self.chunks[0] = c[n:]
        else:
            self.chunks.pop(0)
        return n


def client(protocol=3, decode=False, buffer_size=128, limit=4096, timeout=300, cap=8, t=None):
    if t is None:
        t = Chunks()
    params = mr.MemoryParameters(buffer_size=buffer_size, frame_capacity=cap, memory_limit=limit)
    return fake_client(t, params, timeout, decode, protocol), t


def _outcome(f):
    try:
        return f.wait()
    except Exception as e:
        return type(e).__name__


# ---- confirmed bugs ----------------------------------------------------------------------------------------
# The scanner remembers how far it searched an incomplete simple line (Reader._searched) so the next search resumes
# there. When the rest of that line arrives and the line is a +OK or a short :n, the fast path (client._fast)
# consumes it, but _searched stays set, and the scanner's next frame is searched for its CRLF from _searched bytes
# past its start: a shorter first line is not found (the reply waits for bytes that never come: TimeoutError) or the
# frame is taken to run into the next one (ProtocolError "trailing data": every pending future fails).

def test_bug_split_integer_then_simple_string_breaks_the_stream():
    c, t = client(protocol=2)
    t.add(b":123456", b"7\r\n+PONG\r\n:1234\r\n:5\r\n")
    a = c.incr(b"x")
    b = c.command(b"PING")
    d = c.incr(b"y")
    e = c.incr(b"z")
    got = [_outcome(a), _outcome(b), _outcome(d), _outcome(e)]
    eq(got, [1234567, b"PONG", 1234, 5])


def test_bug_split_integer_then_last_reply_times_out():
    c, t = client(protocol=2)
    t.add(b":123456", b"7\r\n+PONG\r\n")
    a = c.incr(b"x")
    b = c.command(b"PING")
    eq([_outcome(a), _outcome(b)], [1234567, b"PONG"])


def test_bug_split_ok_then_resp3_null_times_out():
    # RESP3: SET answered "+OK" in two segments ("+OK", "\r\n"), then GET of a missing key ("_\r\n")
    c, t = client(protocol=3)
    a = c.set(b"k", b"v")
    b = c.get(b"missing")
    t.add(b"+OK", b"\r\n_\r\n")
    eq([_outcome(a), _outcome(b)], [True, None])


def test_bug_split_ok_then_resp3_null_via_ready():
    c, t = client(protocol=3)
    a = c.set(b"k", b"v")
    b = c.hget(b"h", b"f")
    t.add(b"+OK", b"\r\n", b"_\r\n")
    ok(not a.ready())  # reads "+OK": the scanner has searched it
    eq(_outcome(a), True)
    eq(_outcome(b), None)



# Out-of-band frames never check the deadline: _step() (wait) and CoreClient._read1() (ready, close) check it
# only when a receive brought nothing. A server (or a busy RESP3 subscription / tracking stream) that keeps
# sending pushes while the reply does not come keeps wait() past its deadline and makes ready() block.
class PushStream(Chunks):
    # a push on every receive for `secs` seconds (a receive that may wait takes 20 ms), then the reply
    def __init__(self, secs, reply):
        Chunks.__init__(self)
        self.t0 = now_ms()
        self.span = int(secs * 1000)
        self.reply = reply

    def recv_into(self, buf, start, ms):
        if self.reply is None or self.chunks:
            return Chunks.recv_into(self, buf, start, ms)
        if since(self.t0) < self.span:
            if ms != 0:
                sleep_ms(20)
            p = b">2\r\n$10\r\ninvalidate\r\n$1\r\nk\r\n"
        else:
            p = self.reply
            self.reply = None
        buf[start:start + len(p)] = p
        return len(p)


def _push_client(secs):
    c, t = client(protocol=3, timeout=300)
    s = PushStream(secs, b":5\r\n")
    c._transport = s
    c.push_handler = lambda v: None
    return c


def test_bug_pushes_keep_wait_past_its_deadline():
    c = _push_client(1.5)
    t0 = now_ms()
    f = c.incr(b"n")
    got = _outcome(f)
    took = since(t0) / 1000
    eq((got, took < 1.0), ("TimeoutError", True), "took %.2f s" % took)


def test_bug_ready_blocks_while_pushes_arrive():
    c = _push_client(1.5)
    f = c.incr(b"n")
    t0 = now_ms()
    f.ready()
    took = since(t0) / 1000
    ok(took < 0.5, "ready() blocked %.2f s (deadline 0.3 s)" % took)



def test_bug_close_waits_past_the_deadline_while_pushes_arrive():
    # close() drains the pending futures through _read1(None): the same unchecked loop
    c = _push_client(1.5)
    c.incr(b"n")
    t0 = now_ms()
    try:
        c.close()
    except mr.RedisError:
        pass
    took = since(t0) / 1000
    ok(took < 1.0, "close() took %.2f s (deadline 0.3 s)" % took)



# A send that fails inside the encoder (a value over a quarter of the buffer, or a pipeline that fills the buffer)
# goes through send._unclaim(), which fails every pending future with ProtocolError("a command failed
# half-sent"), whatever the transport raised; a send that fails in _flush() gives them an error of the
# transport's kind (ConnectionError/TimeoutError), as t_hotpath promises. Low severity: still a RedisError.
class FailingSend(Chunks):
    def __init__(self):
        Chunks.__init__(self)
        self.send_error = None

    def send(self, buf, n):
        if self.send_error is not None:
            raise self.send_error
        Chunks.send(self, buf, n)

    def send_obj(self, o):
        if self.send_error is not None:
            raise self.send_error
        Chunks.send_obj(self, o)


def _failing_send():
    return client(t=FailingSend())


def test_bug_send_failing_inside_the_encoder_gives_the_futures_a_protocol_error():
    got = []
    for err, big in ((mr.ConnectionError("broken pipe (fake)"), True),
                     (mr.TimeoutError("send stalled (fake)"), False)):
        c, t = _failing_send()
        with c.pipeline():
            f = c.get(b"a")
        t.send_error = err
        try:
            if big:
                c.set(b"k", b"x" * 100)  # over a quarter of the buffer: header, flush, then the value uncopied
            else:
                with c.pipeline():
                    for i in range(10):
                        c.set(b"key%d" % i, "\u00e9" * 10)  # str: through the encoder, which flushes when full
        except mr.RedisError:
            pass
        got.append(_outcome(f))
    eq(got, ["ConnectionError", "TimeoutError"])



# CoreClient._next() (close(), a full ring of slots, ready(), pubsub) receives whenever its first parse gives
# NEED_DATA, even when that parse consumed a frame it then dropped (a push that is not UTF-8 with
# decode_responses; a push over memory_limit): a reply already buffered behind it is not looked at, the receive
# waits out the deadline and the future fails with TimeoutError (the connection is dropped). wait() (_step) gets
# this right: it looks at the buffer again when _r moved.
_BIN_PUSH = b">2\r\n$10\r\ninvalidate\r\n$2\r\n\xff\xfe\r\n"


def test_bug_close_times_out_on_a_reply_buffered_behind_a_dropped_push():
    c, t = client(protocol=3, decode=True, timeout=300)
    f = c.incr(b"a")
    g = c.incr(b"b")
    t.add(b":1\r\n" + _BIN_PUSH + b":2\r\n")
    try:
        c.close()
    except mr.RedisError:
        pass
    eq([_outcome(f), _outcome(g)], [1, 2])


def test_bug_full_ring_times_out_on_a_reply_buffered_behind_a_dropped_push():
    c, t = client(decode=True, limit=1024, cap=1)
    f = c.incr(b"a")
    t.add(b":0\r\n" + _BIN_PUSH + b":1\r\n")
    g = c.incr(b"b")  # ring full: reads f's reply; the push and g's reply stay buffered
    got = [_outcome(f)]
    try:
        h = c.incr(b"c")  # ring full: reads g's reply (behind the push)
        got.append(_outcome(g))
        t.add(b":2\r\n")
        got.append(_outcome(h))
    except mr.RedisError as e:
        got.append(type(e).__name__)
    eq(got, [0, 1, 2])



# RESP2 subscribed mode: Subscription.ping(message) with a message over memory_limit. Its reply (an array) is
# discarded as if it were a pub/sub frame (client._get: skipped_type 42 in subscribed mode), so the PING's
# future waits out its deadline and the connection is dropped. Expected: refused before sending (ValueError, as
# _send() refuses channel names over memory_limit) or MemoryFull for that PING with the connection kept.
def test_bug_resp2_subscribed_ping_over_memory_limit_times_out():
    c, t = client(protocol=2, buffer_size=64, limit=256, timeout=300)
    t.add(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
    s = c.subscribe(b"ch")
    t.add(b"*2\r\n$4\r\npong\r\n$300\r\n" + b"x" * 300 + b"\r\n")
    try:
        s.ping(b"x" * 300)
        got = "no error"
    except (ValueError, mr.RedisError) as e:
        got = type(e).__name__
    ok(got in ("ValueError", "MemoryFull"), got)
    ok(c._conn is not None, "the connection was dropped")


# ---- regression guards (pass today) --------------------------------------------------------------------------
def test_too_small_get_into_then_fast_replies_stay_in_step():
    c, t = client(protocol=3)
    small = bytearray(2)
    big = bytearray(16)
    f = c.get_into(b"k", small)
    g = c.set(b"k", b"v")
    h = c.get_into(b"k", big)
    i = c.incr(b"n")
    t.add(b"$5\r\nhel", b"lo\r\n+O", b"K\r\n$3\r\nabc\r\n:7", b"\r\n")
    eq([_outcome(f), _outcome(g), _outcome(h), _outcome(i)], ["MemoryFull", True, 3, 7])
    eq(bytes(big[0:3]), b"abc")


def test_pushes_and_dropped_pushes_between_fast_replies():
    c, t = client(protocol=3, limit=128, buffer_size=64)
    seen = []
    c.push_handler = seen.append
    f = c.set(b"k", b"v")
    g = c.incr(b"n")
    h = c.get(b"k")
    big = b">2\r\n$10\r\ninvalidate\r\n$200\r\n" + b"x" * 200 + b"\r\n"
    small = b">2\r\n$10\r\ninvalidate\r\n$1\r\nk\r\n"
    t.add(big[0:70], big[70:] + b"+OK\r\n" + small[0:9], small[9:] + b":42\r\n" + big + b"$1\r\nv\r\n")
    eq([_outcome(f), _outcome(g), _outcome(h)], [True, 42, b"v"])
    eq(len(seen), 1)


def test_fast_reply_straddling_the_buffer_end_after_compaction():
    # 64-byte buffer: a value fills most of it, so the next reply is split at the buffer's end and compacted
    c, t = client(protocol=2, buffer_size=64)
    v = b"y" * 50
    f = c.get(b"a")
    g = c.incr(b"n")
    h = c.get(b"b")
    t.add(b"$50\r\n" + v + b"\r\n:12345", b"6789\r\n$-1\r\n")
    eq([_outcome(f), _outcome(g), _outcome(h)], [v, 123456789, None])


def test_in_place_encoding_at_the_quarter_buffer_boundary():
    # 128-byte send buffer: values of 31, 32 (in place) and 33 bytes (through the encoder), str with multibyte
    # UTF-8 of 32 bytes (str always goes through the encoder), and 20-digit ints
    for value in (b"a" * 31, b"b" * 32, b"c" * 33, memoryview(b"d" * 32), bytearray(b"e" * 32), "\u00e9" * 16,
                  10 ** 19, -(10 ** 19), 2 ** 64):
        c, t = client(protocol=2)
        with c.pipeline():
            fs = [c.set(b"k%d" % i, value) for i in range(5)]
        t.add(b"+OK\r\n" * 5)
        for f in fs:
            eq(f.wait(), True)
        eq(t.out, b"".join(encode(b"SET", b"k%d" % i, value) for i in range(5)), repr(value))
