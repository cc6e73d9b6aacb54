# No reply ever reaches the wrong future: dropped pushes vs get_into, reads interrupted by any exception (close()
# included), conversions of unexpected reply shapes, re-entrant push handlers, replies that cannot be decoded,
# replies buffered behind a dropped push.
# Real redis-server where it can produce the case; an in-process fake transport for shapes a server never sends.
# Plain MicroPython; runs under CPython too.
import sys

from tinytest import eq, ok, raises, skip, sleep_ms, IS_MICROPYTHON
from devkit import handler, admin as other, Script, fake_client, interpose, bulk, chunked_client, outcome
import microredis as mr

P = b"t_misdelivery:"


class Boom(Exception):
    pass


def fake(decode=False, params=None, timeout=300):
    t = Script()
    params = params or mr.MemoryParameters(buffer_size=128, frame_capacity=4, memory_limit=1024)
    return fake_client(t, params, timeout, decode), t


class Wrap:
    # wraps a real transport: recv_ms bounds waits that would block forever; send_fail interrupts a send
    def __init__(self, t):
        self.t = t
        self.send_fail = None
        self.recv_fail = None
        self.recv_ms = -1

    def send(self, buf, n):
        e = self.send_fail
        if e is not None:
            self.send_fail = None
            self.t.send(buf, n // 2)  # half of the command is on the wire when ^C comes
            raise e
        self.t.send(buf, n)

    def send_obj(self, o):
        self.t.send_obj(o)

    def recv_into(self, buf, start, ms):
        e = self.recv_fail
        if e is not None:
            self.recv_fail = None
            raise e
        if ms < 0 and self.recv_ms > 0:
            k = self.t.recv_into(buf, start, self.recv_ms)
            if k == 0:
                raise AssertionError("a read blocked with no reply to come")
            return k
        return self.t.recv_into(buf, start, ms)

    def close(self):
        self.t.close()


def wrap(c):
    return interpose(c, Wrap(c._transport))


def _push(kind, chan, payload):
    return b">3\r\n" + bulk(kind) + bulk(chan) + bulk(payload)


# ---- 1. a dropped push must not poison get_into ------------------------------------------------------------
def test_dropped_push_then_get_into_too_small_is_its_own_error():
    h = handler(tmo=1000, mem=mr.MemoryParameters(buffer_size=128, frame_capacity=4, memory_limit=1024))
    c = h.connect()
    sub = c.subscribe(P + b"big")
    o = other()
    o.set(P + b"long", b"L" * 50).wait()
    o.set(P + b"short", b"abc").wait()
    o.publish(P + b"big", b"x" * 4000).wait()
    eq(c.set(P + b"k", b"v").wait(), True)  # reads (and drops) the oversized push first
    eq(sub.dropped, 1)
    buf = bytearray(10)
    f = c.get_into(P + b"long", buf)
    g = c.get(P + b"short")
    e = raises(mr.MemoryFull, f.wait)
    ok("10" in str(e), str(e))
    eq(g.wait(), b"abc")
    eq(buf, bytearray(10))
    eq(sub.dropped, 1)  # the value that did not fit was not counted as a dropped push
    eq(c.get_into(P + b"short", buf).wait(), 3)
    eq(bytes(buf[0:3]), b"abc")
    sub.close()
    o.delete(P + b"long", P + b"short", P + b"k").wait()


def test_oversized_push_while_get_into_pending_is_dropped():
    # the push arrives between get_into's command and its reply, and spans many receives
    c, t = fake()
    t.add(_push(b"message", b"ch", b"x" * 3000) + b"$5\r\nhello\r\n" + b"$8\r\ntoo-long\r\n" + b"+PONG\r\n")
    buf = bytearray(6)
    eq(c.get_into(b"k", buf).wait(), 5)
    eq(bytes(buf[0:5]), b"hello")
    f = c.get_into(b"k", buf)
    g = c.command(b"PING")
    raises(mr.MemoryFull, f.wait)
    eq(g.wait(), b"PONG")
    eq(bytes(buf[0:5]), b"hello")
    ok(c._conn is not None)


def test_too_small_get_into_right_after_a_dropped_push_in_one_read():
    c, t = fake(params=mr.MemoryParameters(buffer_size=128, frame_capacity=4, memory_limit=256))
    t.add(_push(b"message", b"ch", b"y" * 300) + b"$20\r\n" + b"z" * 20 + b"\r\n" + b"$2\r\nok\r\n")
    buf = bytearray(4)
    f = c.get_into(b"a", buf)
    g = c.get_into(b"b", buf)
    raises(mr.MemoryFull, f.wait)
    eq(g.wait(), 2)
    eq(bytes(buf[0:2]), b"ok")


# ---- 2. an exception on a read path leaves the connection in step or drops it -------------------------------
def _tracking_client(h, raise_exc):
    c = h.connect()
    calls = []

    def on_push(p):
        calls.append(p)
        if raise_exc is not None:
            raise raise_exc

    c.command(b"CLIENT", b"TRACKING", b"on").wait()
    c.set(P + b"tracked", b"1").wait()
    c.get(P + b"tracked").wait()
    c.push_handler = on_push
    other().set(P + b"tracked", b"2").wait()  # the invalidate push is now on c's socket
    return c, calls


def test_close_that_raises_drops_the_socket():
    for exc in (Boom("handler bug"), KeyboardInterrupt()):
        h = handler()
        c, calls = _tracking_client(h, exc)
        c.echo(b"old")  # never waited: close() must read it, meets the push first
        raises(type(exc), c.close)
        eq(len(calls), 1)
        eq(h.connect().echo(b"mine").wait(), b"mine")


def test_connect_after_a_handler_that_raises_on_close():
    for exc in (Boom("handler bug"), KeyboardInterrupt()):
        h = handler()
        c, calls = _tracking_client(h, exc)
        c.echo(b"old")
        try:
            c2 = h.connect()  # closes c first; its push_handler raises there
        except KeyboardInterrupt:
            c2 = h.connect()
        eq(c2.echo(b"mine").wait(), b"mine")


def test_handler_exception_in_wait_keeps_everything_in_step():
    h = handler()
    c, calls = _tracking_client(h, Boom("handler bug"))
    f = c.echo(b"a")
    g = c.echo(b"b")
    raises(Boom, f.wait)  # raised after its push frame was consumed: nothing moved
    eq(f.wait(), b"a")
    eq(g.wait(), b"b")
    eq(c.echo(b"c").wait(), b"c")
    c.close()
    eq(h.connect().echo(b"mine").wait(), b"mine")


def test_interrupted_send_drops_the_connection():
    h = handler()
    c = h.connect()
    w = wrap(c)
    w.send_fail = KeyboardInterrupt()
    try:
        c.echo(b"half-sent")
        ok(False, "the send was not interrupted")
    except KeyboardInterrupt:
        pass
    ok(c._conn is None, "a half-sent command left the connection in use")
    raises(mr.ConnectionError, c.echo, b"x")
    eq(h.connect().echo(b"mine").wait(), b"mine")
    # inside a pipeline block the send happens at its end
    c = h.connect()
    w = wrap(c)
    f = None
    try:
        with c.pipeline():
            f = c.echo(b"one")
            w.send_fail = KeyboardInterrupt()
        ok(False, "the send was not interrupted")
    except KeyboardInterrupt:
        pass
    raises(mr.RedisError, f.wait)
    eq(h.connect().echo(b"mine").wait(), b"mine")


def test_interrupted_read_drops_the_connection():
    # ^C may land anywhere in a read (mid-reply in the parser): the replies can no longer be trusted
    h = handler()
    c = h.connect()
    w = wrap(c)
    f = c.echo(b"a")
    g = c.echo(b"b")
    w.recv_fail = KeyboardInterrupt()
    try:
        f.wait()
        ok(False, "the read was not interrupted")
    except KeyboardInterrupt:
        pass
    ok(c._conn is None, "the connection stayed in use")
    raises(mr.RedisError, f.wait)
    raises(mr.InvalidFuture, g.wait)
    eq(h.connect().echo(b"mine").wait(), b"mine")


# ---- 3. a conversion that fails releases the slot first ---------------------------------------------------------
_BOOL = (b"$1\r\n1\r\n", b"*0\r\n", b"_\r\n")
_FLOAT = (b"*1\r\n:1\r\n", b"$3\r\nabc\r\n", b":5\r\n")
_PAIRS = (b"$1\r\nx\r\n", b"*3\r\n:1\r\n:2\r\n:3\r\n", b":1\r\n")
_SET = (b":1\r\n", b"$1\r\nx\r\n", b"_\r\n")
_PAIRLIST = (b":1\r\n", b"*3\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n", b"*1\r\n*1\r\n$1\r\na\r\n",
             b"*2\r\n$1\r\na\r\n$1\r\nz\r\n")
_ENTRIES = (b":1\r\n", b"*1\r\n:1\r\n", b"*1\r\n*1\r\n$1\r\na\r\n", b"*1\r\n*2\r\n$1\r\na\r\n*1\r\n$1\r\nf\r\n")
_PAIR = (b"$2\r\nab\r\n", b"*1\r\n$1\r\na\r\n", b":1\r\n")
_SCAN = (b"*2\r\n:0\r\n*0\r\n", b"*2\r\n$1\r\nx\r\n*0\r\n", b"$1\r\n0\r\n", b"*1\r\n$1\r\n0\r\n",
         b"*2\r\n$1\r\n0\r\n$1\r\nk\r\n")
_TIME = (b"*1\r\n$1\r\n1\r\n", b"$1\r\n1\r\n", b"*2\r\n$1\r\na\r\n$1\r\n1\r\n", b"*2\r\n:1\r\n:2\r\n")
_TRUE = (b":1\r\n", b"*0\r\n", b"_\r\n")

# every command of the catalogue whose reply is converted (not RAW or OK)
CONVERTED = (
    ("INCRBYFLOAT", "incrbyfloat", (b"k", 1.5), _FLOAT),
    ("HINCRBYFLOAT", "hincrbyfloat", (b"k", b"f", 1.5), _FLOAT),
    ("ZSCORE", "zscore", (b"k", b"m"), _FLOAT),
    ("ZINCRBY", "zincrby", (b"k", 1, b"m"), _FLOAT),
    ("ZADD", "zadd", (b"k", {b"m": 1}, False, False, False, True), _FLOAT),
    ("SETNX", "setnx", (b"k", b"v"), _BOOL),
    ("EXPIRE", "expire", (b"k", 5), _BOOL),
    ("PEXPIRE", "pexpire", (b"k", 5), _BOOL),
    ("EXPIREAT", "expireat", (b"k", 5), _BOOL),
    ("PEXPIREAT", "pexpireat", (b"k", 5), _BOOL),
    ("PERSIST", "persist", (b"k",), _BOOL),
    ("HEXISTS", "hexists", (b"k", b"f"), _BOOL),
    ("SISMEMBER", "sismember", (b"k", b"m"), _BOOL),
    ("HGETALL", "hgetall", (b"k",), _PAIRS),
    ("SMEMBERS", "smembers", (b"k",), _SET),
    ("ZRANGE", "zrange", (b"k", 0, -1, False, True), _PAIRLIST),
    ("XRANGE", "xrange", (b"k",), _ENTRIES),
    ("XREVRANGE", "xrevrange", (b"k",), _ENTRIES),
    ("BLPOP", "blpop", (b"k", 1), _PAIR),
    ("BRPOP", "brpop", (b"k", 1), _PAIR),
    ("SCAN", "scan", (0,), _SCAN),
    ("TIME", "time", (), _TIME),
    ("PING", "ping", (), _TRUE),
    ("BGSAVE", "bgsave", (), _TRUE),
)


def test_unexpected_reply_shapes_fail_only_their_own_future():
    c, t = fake()
    n = 0
    for name, meth, args, shapes in CONVERTED:
        for shape in shapes:
            t.add(shape + b"$4\r\nnext\r\n")
            f = getattr(c, meth)(*args)
            g = c.get(b"after")
            e = raises(mr.ProtocolError, f.wait)
            ok(("unexpected reply to " + name) in str(e), "%s %r: %s" % (name, shape, e))
            eq(g.wait(), b"next", "%s %r" % (name, shape))
            n += 1
    eq(c.unwaited_errors, 0)
    ok(c._conn is not None)
    # fire and forget: the error is counted, the next future unaffected
    t.add(b"$1\r\nx\r\n+PONG\r\n")
    c.hgetall(b"k")
    eq(c.command(b"PING").wait(), b"PONG")
    eq(c.unwaited_errors, 1)
    ok("HGETALL" in str(c.last_unwaited_error))


def test_expected_reply_shapes_still_convert():
    c, t = fake()
    t.add(b"*2\r\n$2\r\n17\r\n*1\r\n$1\r\na\r\n" + b"*2\r\n$3\r\n100\r\n$2\r\n42\r\n" + b":1\r\n" +
          b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n" + b",1.5\r\n" + b"$3\r\n2.5\r\n" + b"_\r\n" + b"+PONG\r\n" +
          b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n" + b"~1\r\n$1\r\nm\r\n")
    eq(c.scan().wait(), (17, [b"a"]))
    eq(c.time().wait(), (100, 42))
    eq(c.setnx(b"k", b"v").wait(), True)
    eq(c.hgetall(b"k").wait(), {b"f": b"v"})
    eq(c.zscore(b"k", b"m").wait(), 1.5)
    eq(c.incrbyfloat(b"k", 1).wait(), 2.5)
    eq(c.blpop(b"k", 1).wait(), None)
    eq(c.ping().wait(), True)
    eq(c.zrange(b"k", 0, -1, withscores=True).wait(), [(b"a", 1.0), (b"b", 2.0)])
    eq(c.smembers(b"k").wait(), {b"m"})


# ---- 4. a push_handler may wait commands --------------------------------------------------------------------
def test_push_handler_waits_a_command():
    for tmo in (2000, 0):
        for cap in (8, 2):
            h = handler(tmo=tmo, mem=mr.MemoryParameters(buffer_size=256, frame_capacity=cap,
                                                                memory_limit=4096))
            c = h.connect()
            w = wrap(c)
            w.recv_ms = 1500  # timeout(0) would otherwise block forever where it must not
            o = other()
            o.set(P + b"setting", b"s1").wait()
            o.set(P + b"tracked", b"1").wait()
            got = []

            def on_push(p):
                if p[0] == b"invalidate":
                    got.append(c.get(P + b"setting").wait())

            c.push_handler = on_push
            c.command(b"CLIENT", b"TRACKING", b"on").wait()
            eq(c.get(P + b"tracked").wait(), b"1")
            o.set(P + b"tracked", b"2").wait()  # invalidate is on c's socket, before the replies below
            f1 = c.echo(b"outer1")
            f2 = c.echo(b"outer2")
            eq(f1.wait(), b"outer1", "timeout %d cap %d" % (tmo, cap))
            eq(f2.wait(), b"outer2")
            eq(got, [b"s1"])
            ok(c._conn is not None, "the connection was dropped")
            eq(c.get(P + b"tracked").wait(), b"2")
            # again, the push read by ready() and by close()
            o.set(P + b"tracked", b"3").wait()
            f = c.echo(b"polled")
            while not f.ready():
                sleep_ms(5)
            eq(f.wait(), b"polled")
            eq(got, [b"s1", b"s1"])
            eq(c.get(P + b"tracked").wait(), b"3")
            o.set(P + b"tracked", b"4").wait()
            c.echo(b"drained")
            c.close()
            eq(got, [b"s1", b"s1", b"s1"])
            eq(h.connect().echo(b"mine").wait(), b"mine")
    other().delete(P + b"setting", P + b"tracked").wait()


# ---- 5. a reply that cannot be decoded fails only its own future -------------------------------------------------
def test_undecodable_value_fails_only_its_future():
    o = other()
    o.set(P + b"bad", b"\xff\xfe").wait()
    o.set(P + b"good", b"fine").wait()
    c = handler().decode_responses().connect()
    with c.pipeline():
        fb = c.get(P + b"bad")
        fg = c.get(P + b"good")
        fp = c.ping()
    e = raises(mr.ProtocolError, fb.wait)
    ok("UTF-8" in str(e) and "GET" in str(e) and "bad" in str(e), str(e))
    eq(fg.wait(), "fine")
    eq(fp.wait(), True)
    # not waited: counted like any error reply
    c.get(P + b"bad")
    eq(c.echo(b"x").wait(), "x")
    eq(c.unwaited_errors, 1)
    ok(isinstance(c.last_unwaited_error, mr.ProtocolError))
    ok(c._conn is not None)
    o.delete(P + b"bad", P + b"good").wait()


def test_undecodable_push_is_dropped_not_a_reply():
    c = handler().decode_responses().connect()
    sub = c.subscribe(P + b"bin")
    o = other()
    o.publish(P + b"bin", b"\xff\xfe").wait()
    o.set(P + b"good", b"fine").wait()
    eq(c.get(P + b"good").wait(), "fine")
    eq(sub.dropped, 1)
    o.publish(P + b"bin", b"text").wait()
    eq(sub.receive(1000).payload, "text")
    sub.close()
    o.delete(P + b"good").wait()


def test_undecodable_reply_with_fake_transport():
    c, t = fake(decode=True)
    t.add(b"$2\r\n\xff\xfe\r\n" + _push(b"message", b"c", b"\xff") + b"+PONG\r\n")
    f = c.get(b"bin")
    g = c.command(b"PING")
    e = raises(mr.ProtocolError, f.wait)
    ok("GET" in str(e) and "bin" in str(e), str(e))
    eq(g.wait(), "PONG")
    ok(c._conn is not None)


# ---- 6. pubsub not installed; ready() --------------------------------------------------------------------------
def test_subscribe_without_the_pubsub_module_names_the_fix():
    if IS_MICROPYTHON:
        skip("a missing module cannot be simulated once it is on the path")
    c, t = fake()
    saved = sys.modules.get("microredis.pubsub")
    sys.modules["microredis.pubsub"] = None  # what `import` does when the file is absent
    attr = getattr(mr, "pubsub", None)
    if attr is not None:
        del mr.pubsub
    try:
        for call in (lambda: c.subscribe(b"x"), lambda: c.psubscribe(b"x"), lambda: c.ssubscribe(b"x"),
                     lambda: c.send_raw(b"PING\r\n"), lambda: c.read_raw()):
            e = raises(ImportError, call)
            ok("package-pubsub.json" in str(e), str(e))
    finally:
        if attr is not None:
            mr.pubsub = attr
        if saved is None:
            del sys.modules["microredis.pubsub"]
        else:
            sys.modules["microredis.pubsub"] = saved


def test_ready_never_raises_the_futures_error():
    c, t = fake()
    t.add(b"+OK\r\n!garbage\r\n")
    f = c.command(b"PING")
    g = c.command(b"PING")
    eq(f.ready(), True)
    ok(g.ready())  # the stream broke: ready, and wait() raises
    eq(f.wait(), b"OK")
    raises(mr.RedisError, g.wait)
    # a passed deadline
    c, t = fake(timeout=50)
    f = c.command(b"PING")
    g = c.command(b"PING")
    sleep_ms(80)
    ok(g.ready())
    ok(f.ready())
    raises(mr.TimeoutError, f.wait)
    raises(mr.RedisError, g.wait)


# ---- 7. a reply buffered behind a dropped push, or behind a push read first -------------------------------------
# CoreClient._next() (close(), a full ring of slots, ready(), pubsub) must look at the buffer again when its parse
# consumed a frame it then dropped (a push that is not UTF-8 with decode_responses; a push over memory_limit): a reply
# already buffered behind it is its future's, not a receive that waits out the deadline (TimeoutError, the connection
# dropped). wait() (_step) looks at the buffer again when _r moved.
_BIN_PUSH = b">2\r\n$10\r\ninvalidate\r\n$2\r\n\xff\xfe\r\n"


def test_close_reads_a_reply_buffered_behind_a_dropped_push():
    c, t = chunked_client(protocol=3, decode=True, timeout=300)
    f = c.incr(b"a")
    g = c.incr(b"b")
    t.add(b":1\r\n" + _BIN_PUSH + b":2\r\n")
    try:
        c.close()
    except mr.RedisError:
        pass
    eq([outcome(f), outcome(g)], [1, 2])


def test_a_full_ring_reads_a_reply_buffered_behind_a_dropped_push():
    c, t = chunked_client(decode=True, limit=1024, cap=1)
    f = c.incr(b"a")
    t.add(b":0\r\n" + _BIN_PUSH + b":1\r\n")
    g = c.incr(b"b")  # ring full: reads f's reply; the push and g's reply stay buffered
    got = [outcome(f)]
    try:
        h = c.incr(b"c")  # ring full: reads g's reply (behind the push)
        got.append(outcome(g))
        t.add(b":2\r\n")
        got.append(outcome(h))
    except mr.RedisError as e:
        got.append(type(e).__name__)
    eq(got, [0, 1, 2])


def test_a_push_ahead_of_a_get_into_reply_reaches_the_push_handler():
    a = other(P + b"k", P + b"s")
    h = handler()
    c = h.connect()
    try:
        seen = []
        c.push_handler = seen.append
        c.command(b"CLIENT", b"TRACKING", b"ON", b"BCAST", b"PREFIX", P).wait()
        a.set(P + b"s", b"12").wait()
        a.set(P + b"k", b"1").wait()  # its invalidation waits in c's socket
        sleep_ms(50)
        eq(c.get_into(P + b"s", bytearray(4)).wait(), 2)  # reads the push first: the head is this get_into()
        eq(c.ping().wait(), True)
        ok([b"invalidate", [P + b"k"]] in seen, repr(seen))
        c.push_handler = None
        c.command(b"CLIENT", b"TRACKING", b"OFF").wait()
    finally:
        c.close()
        h.disconnect()
        a.close()
