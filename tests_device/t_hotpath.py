# The core client's hot path (client.py _put_fast, resp.py fast): commands written straight into the send buffer
# and simple replies read straight from the receive buffer must give exactly what the general encoder and the
# reader's scanner give, at every size boundary, and with the server's bytes in whatever chunks a TCP stack delivers
# them. In-process fake transports; plain MicroPython, runs under CPython.
from tinytest import eq, ok, raises
from devkit import Script, fake_client, chunked_client, outcome
import microredis as mr
from microredis.encoder import encode


def client(buffer_size=128, decode=False, t=None, cap=4):
    # t: a Script (records what is sent; serves scripted replies from t.inb)
    if t is None:
        t = Script()
    c = fake_client(t, mr.MemoryParameters(buffer_size=buffer_size, frame_capacity=cap, memory_limit=4096), 500, decode)
    return c, t


def test_commands_written_in_place_are_byte_exact():
    # a 128-byte buffer: values up to 32 bytes go in place, longer ones through the encoder (sent uncopied)
    for n in (0, 1, 9, 10, 11, 31, 32, 33, 99, 100, 101):
        for value in (b"v" * n, bytearray(b"w" * n), memoryview(b"m" * n), "s" * n, n):
            c, t = client()
            key = b"k" * (n if n <= 40 else 7)
            if type(value) is not bytes:
                key = type(value)(key) if type(value) is not str and type(value) is not int else key
            t.inb = b"+OK\r\n:1\r\n:2\r\n$-1\r\n"
            eq(c.set(key, value).wait(), True)
            eq(c.publish(key, value).wait(), 1)
            eq(c.incr(key).wait(), 2)
            eq(c.get(key).wait(), None)
            want = encode(b"SET", key, value) + encode(b"PUBLISH", key, value) + encode(b"INCR", key) + \
                encode(b"GET", key)
            eq(t.out, want, repr((n, type(value))))


def test_pipelined_commands_in_place_fill_the_buffer_then_flush():
    c, t = client()
    t.inb = b"+OK\r\n" * 12
    with c.pipeline():
        fs = [c.set(b"key%d" % i, b"0123456789") for i in range(12)]  # 12 x 37 bytes > 128: flushed on the way
    for f in fs:
        eq(f.wait(), True)
    eq(t.out, b"".join(encode(b"SET", b"key%d" % i, b"0123456789") for i in range(12)))


def test_simple_replies_read_in_place_match_the_reader():
    c, t = client()
    cases = ((b"+OK\r\n", b"OK"), (b":0\r\n", 0), (b":-7\r\n", -7), (b":123456789\r\n", 123456789),
             (b":1234567890123\r\n", 1234567890123), (b"$0\r\n\r\n", b""), (b"$-1\r\n", None),
             (b"$10\r\n0123456789\r\n", b"0123456789"), (b"+PONG\r\n", b"PONG"), (b"-ERR x\r\n", None))
    for wire, want in cases:
        t.inb = wire
        f = c.command(b"X")
        if wire[0:1] == b"-":
            e = raises(mr.ReplyError, f.wait)
            eq(str(e), "ERR x")
        else:
            eq(f.wait(), want, repr(wire))
    # malformed simple replies are the reader's to refuse (the connection is dropped)
    c, t = client()
    t.inb = b":12a\r\n"
    raises(mr.ProtocolError, c.command(b"X").wait)
    ok(c._conn is None)
    c, t = client()
    t.inb = b"$3\r\nabcd\r\n"
    raises(mr.ProtocolError, c.command(b"X").wait)
    ok(c._conn is None)


def test_replies_split_across_receives_and_together_in_one():
    c, t = client()
    t.inb = b"$5\r\nhel"
    f = c.get(b"k")
    g = c.incr(b"k")
    eq(f.ready(), False)
    t.inb = b"lo\r\n:4"
    eq(f.wait(), b"hello")
    t.inb = b"2\r\n+OK\r\n"
    eq(g.wait(), 42)
    eq(c.set(b"k", b"v").wait(), True)
    buf = bytearray(8)
    t.inb = b"$3\r\nabc\r\n$9\r\n123456789\r\n$2\r\nxy\r\n"
    f = c.get_into(b"k", buf)
    g = c.get_into(b"k", buf)
    h = c.get_into(b"k", bytearray(2))
    eq(f.wait(), 3)
    eq(bytes(buf[0:3]), b"abc")
    raises(mr.MemoryFull, g.wait)  # too long for the buffer: discarded by the reader, the stream stays in step
    eq(h.wait(), 2)
    ok(c._conn is not None)


def test_decode_responses_in_place():
    c, t = client(decode=True)
    t.inb = b"+OK\r\n$3\r\nabc\r\n:5\r\n"
    eq(c.command(b"X").wait(), "OK")
    eq(c.get(b"k").wait(), "abc")
    eq(c.incr(b"k").wait(), 5)


class Failing(Script):
    def __init__(self):
        Script.__init__(self)
        self.recv_error = None
        self.send_error = None

    def recv_into(self, buf, start, ms):
        if self.recv_error is not None:
            raise self.recv_error
        return Script.recv_into(self, buf, start, ms)

    def send(self, buf, n):
        if self.send_error is not None:
            raise self.send_error
        Script.send(self, buf, n)

    def send_obj(self, o):
        if self.send_error is not None:
            raise self.send_error
        Script.send_obj(self, o)


def failing():
    return client(t=Failing())


def test_a_failed_receive_raises_its_own_error_once_and_of_its_kind_after():
    # the hot read path catches without binding the exception (a bound name puts the frame on the heap): the wait()
    # that was reading raises the transport's exception itself, the futures keep an error of the same class
    for err in (mr.ConnectionError("reset by the fake"), mr.TimeoutError("TLS receive timed out (fake)")):
        c, t = failing()
        f = c.get(b"a")
        g = c.get(b"b")
        t.recv_error = err
        e = raises(type(err), f.wait)
        ok(e is err, repr(e))
        ok(c._conn is None)
        e = raises(type(err), f.wait)  # later waits: the futures' copy, same class
        ok(isinstance(e, type(err)))
        raises(mr.InvalidFuture, g.wait)
        raises(mr.ConnectionError, c.get, b"c")


def test_a_failed_send_raises_its_own_error_and_fails_the_older_futures():
    c, t = failing()
    with c.pipeline():
        f = c.get(b"a")
    t.inb = b""
    t.send_error = mr.ConnectionError("broken pipe (fake)")
    e = raises(mr.ConnectionError, c.get, b"b")
    ok("fake" in str(e), str(e))
    ok(c._conn is None)
    raises(mr.ConnectionError, f.wait)  # the older command may or may not have reached the server
    raises(mr.ConnectionError, c.get, b"c")
    # after a command written in place is sent and waited, nothing is claimed and the buffer is empty again
    c, t = failing()
    t.inb = b"+OK\r\n"
    n = c._encoder.n
    eq(c.set(b"k", b"v").wait(), True)
    eq((c._pending, c._encoder.n), (0, n))


# ---- the pipelined path (issue 9: per-command work) ------------------------------------------------------------
class Sends(Script):
    def __init__(self):
        Script.__init__(self)
        self.sends = []

    def send(self, buf, n):
        Script.send(self, buf, n)
        self.sends.append(bytes(buf[0:n]))


def test_a_pipeline_that_fills_the_buffer_sends_whole_commands():
    # a command of byte strings that does not fit the room left starts the buffer again: each send ends at a
    # command's end (before, the command that overflowed went through the encoder and was split across two sends)
    c, t = client(buffer_size=128, t=Sends(), cap=12)
    t.inb = b"+OK\r\n" * 12
    cmds = [encode(b"SET", b"key%02d" % i, b"0123456789") for i in range(12)]
    with c.pipeline():
        fs = [c.set(b"key%02d" % i, b"0123456789") for i in range(12)]
    for f in fs:
        eq(f.wait(), True)
    eq(b"".join(t.sends), b"".join(cmds))
    ok(len(t.sends) > 1)
    for s in t.sends:
        eq(len(s) % len(cmds[0]), 0, repr(s))
    # a command whose values are small but whose whole does not fit even an empty 64-byte buffer goes the
    # encoder's way (the buffer never grows)
    c, t = client(buffer_size=64)
    t.inb = b"+OK\r\n"
    eq(c.set(b"k" * 16, b"v" * 16).wait(), True)
    eq(t.out, encode(b"SET", b"k" * 16, b"v" * 16))
    eq(len(c._encoder.buf), 64)


def test_one_wait_resolves_the_simple_replies_buffered_behind_its_own():
    # a pipeline's replies arrive together: the first wait() resolves them all, the later ones return at once
    c, t = client()
    t.inb = b"+OK\r\n:7\r\n$2\r\nOK\r\n$-1\r\n"
    with c.pipeline():
        fs = [c.set(b"a", b"1"), c.incr(b"b"), c.set(b"c", b"2"), c.get(b"d")]
    eq(fs[0].wait(), True)
    eq(c._pending, 0)
    eq([f.wait() for f in fs[1:]], [7, True, None])  # (a bulk "OK" to SET converts as before)
    # an error reply or an aggregate ends it: those go through the reader, at their own wait()
    t.inb = b"+OK\r\n-ERR no\r\n+OK\r\n"
    with c.pipeline():
        fs = [c.set(b"a", b"1"), c.set(b"b", b"2"), c.set(b"c", b"3")]
    eq(fs[0].wait(), True)
    eq(c._pending, 2)
    raises(mr.ReplyError, fs[1].wait)
    eq(fs[2].wait(), True)


def test_a_get_into_buffer_is_written_only_when_a_wait_reaches_its_reply():
    # the same buffer may serve two pipelined get_into(): the first value is there until the second is waited
    c, t = client()
    buf = bytearray(3)
    t.inb = b"+OK\r\n$3\r\nabc\r\n$3\r\nxyz\r\n"
    with c.pipeline():
        f0 = c.set(b"a", b"1")
        f1 = c.get_into(b"k1", buf)
        f2 = c.get_into(b"k2", buf)
    eq(f0.wait(), True)
    eq(bytes(buf), b"\0\0\0")
    eq(f1.wait(), 3)
    eq(bytes(buf), b"abc")
    eq(f2.wait(), 3)
    eq(bytes(buf), b"xyz")


def test_a_pipeline_longer_than_the_ring_sends_a_ring_at_a_time():
    # frame_capacity 4, 12 commands: a full ring reads the oldest reply and takes back the slots of every simple
    # reply buffered behind it, so the commands go out four at a time (before: one send per command once full)
    c, t = client(buffer_size=512, t=Sends(), cap=4)
    t.inb = b"+OK\r\n" * 12
    with c.pipeline():
        fs = [c.set(b"key%02d" % i, b"v") for i in range(12)]
    eq(len(t.sends), 3)
    eq(b"".join(t.sends), b"".join(encode(b"SET", b"key%02d" % i, b"v") for i in range(12)))
    for f in fs:
        eq(f.wait(), True)


# ---- replies in the chunks TCP delivers (a Chunks transport: one receive per chunk) ------------------------------
# The scanner remembers how far it searched an incomplete simple line (Reader._searched) so that the next search
# resumes there. When the rest of that line arrives and it is a +OK or a short :n, the fast path consumes it: the
# next frame must still be searched for its CRLF from its own start (else a shorter first line is not found and the
# reply waits for bytes that never come, or the frame is taken to run into the next one and every pending future
# fails with a ProtocolError "trailing data").
def test_an_integer_split_across_receives_leaves_the_next_replies_in_step():
    c, t = chunked_client(protocol=2)
    t.add(b":123456", b"7\r\n+PONG\r\n:1234\r\n:5\r\n")
    a = c.incr(b"x")
    b = c.command(b"PING")
    d = c.incr(b"y")
    e = c.incr(b"z")
    got = [outcome(a), outcome(b), outcome(d), outcome(e)]
    eq(got, [1234567, b"PONG", 1234, 5])


def test_a_simple_string_after_a_split_integer_is_read_as_the_last_reply():
    c, t = chunked_client(protocol=2)
    t.add(b":123456", b"7\r\n+PONG\r\n")
    a = c.incr(b"x")
    b = c.command(b"PING")
    eq([outcome(a), outcome(b)], [1234567, b"PONG"])


def test_a_resp3_null_after_a_split_ok_is_read():
    # RESP3: SET answered "+OK" in two segments ("+OK", "\r\n"), then GET of a missing key ("_\r\n")
    c, t = chunked_client(protocol=3)
    a = c.set(b"k", b"v")
    b = c.get(b"missing")
    t.add(b"+OK", b"\r\n_\r\n")
    eq([outcome(a), outcome(b)], [True, None])


def test_a_resp3_null_after_a_split_ok_seen_first_by_ready_is_read():
    c, t = chunked_client(protocol=3)
    a = c.set(b"k", b"v")
    b = c.hget(b"h", b"f")
    t.add(b"+OK", b"\r\n", b"_\r\n")
    ok(not a.ready())  # reads "+OK": the scanner has searched it
    eq(outcome(a), True)
    eq(outcome(b), None)


def test_too_small_get_into_then_fast_replies_stay_in_step():
    c, t = chunked_client(protocol=3)
    small = bytearray(2)
    big = bytearray(16)
    f = c.get_into(b"k", small)
    g = c.set(b"k", b"v")
    h = c.get_into(b"k", big)
    i = c.incr(b"n")
    t.add(b"$5\r\nhel", b"lo\r\n+O", b"K\r\n$3\r\nabc\r\n:7", b"\r\n")
    eq([outcome(f), outcome(g), outcome(h), outcome(i)], ["MemoryFull", True, 3, 7])
    eq(bytes(big[0:3]), b"abc")


def test_pushes_and_dropped_pushes_between_fast_replies():
    c, t = chunked_client(protocol=3, limit=128, buffer_size=64)
    seen = []
    c.push_handler = seen.append
    f = c.set(b"k", b"v")
    g = c.incr(b"n")
    h = c.get(b"k")
    big = b">2\r\n$10\r\ninvalidate\r\n$200\r\n" + b"x" * 200 + b"\r\n"
    small = b">2\r\n$10\r\ninvalidate\r\n$1\r\nk\r\n"
    t.add(big[0:70], big[70:] + b"+OK\r\n" + small[0:9], small[9:] + b":42\r\n" + big + b"$1\r\nv\r\n")
    eq([outcome(f), outcome(g), outcome(h)], [True, 42, b"v"])
    eq(len(seen), 1)


def test_fast_reply_straddling_the_buffer_end_after_compaction():
    # 64-byte buffer: a value fills most of it, so the next reply is split at the buffer's end and compacted
    c, t = chunked_client(protocol=2, buffer_size=64)
    v = b"y" * 50
    f = c.get(b"a")
    g = c.incr(b"n")
    h = c.get(b"b")
    t.add(b"$50\r\n" + v + b"\r\n:12345", b"6789\r\n$-1\r\n")
    eq([outcome(f), outcome(g), outcome(h)], [v, 123456789, None])


def test_in_place_encoding_at_the_quarter_buffer_boundary():
    # 128-byte send buffer: values of 31, 32 (in place) and 33 bytes (through the encoder), str with multibyte
    # UTF-8 of 32 bytes (str always goes through the encoder), and 20-digit ints
    for value in (b"a" * 31, b"b" * 32, b"c" * 33, memoryview(b"d" * 32), bytearray(b"e" * 32), "\u00e9" * 16,
                  10 ** 19, -(10 ** 19), 2 ** 64):
        c, t = chunked_client(protocol=2)
        with c.pipeline():
            fs = [c.set(b"k%d" % i, value) for i in range(5)]
        t.add(b"+OK\r\n" * 5)
        for f in fs:
            eq(f.wait(), True)
        eq(t.out, b"".join(encode(b"SET", b"k%d" % i, value) for i in range(5)), repr(value))


def test_a_send_failing_inside_the_encoder_fails_the_futures_with_the_transports_error():
    # a value over a quarter of the buffer, or a pipeline that fills the buffer, fails its send inside the encoder:
    # the pending futures get an error of the transport's kind (ConnectionError/TimeoutError), as a send that fails
    # in the final flush gives them, not a ProtocolError("a command failed half-sent")
    got = []
    for err, big in ((mr.ConnectionError("broken pipe (fake)"), True),
                     (mr.TimeoutError("send stalled (fake)"), False)):
        c, t = chunked_client(t=Failing())
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
        got.append(outcome(f))
    eq(got, ["ConnectionError", "TimeoutError"])
