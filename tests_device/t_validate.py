# Argument and configuration validation: buffers sized by their bytes (never by items), call-site TypeError /
# ValueError with no password text, from_url query parameters, the handshake's memory exemption.
# Plain MicroPython; runs under CPython too.
import cfg
from tinytest import eq, ok, raises, skip, allocs, IS_MICROPYTHON
import microredis as mr
from microredis.connection import MAX_TIMEOUT_MS
from microredis.encoder import Encoder, check, encode
from devkit import handler, counting

SMALL_HEAP = False  # connection.py and the client do not fit a 64 KB heap next to the tests
P = b"t_validate:"


class Sink:
    def __init__(self):
        self.n = 0

    def send(self, buf, n):
        self.n += 1

    def send_obj(self, obj):
        self.n += 1


def _wide():
    try:
        import array
    except ImportError:
        return None
    return memoryview(array.array("H", [0x0d0a, 0x2a33, 0x0d0a, 0x2433]))


# ---- buffers ---------------------------------------------------------------------------------------------------
def test_wide_memoryview_is_refused_before_anything_is_written():
    wide = _wide()
    if wide is None:
        skip("no array module")
    raises(TypeError, check, wide)
    s = Sink()
    e = Encoder(bytearray(64), s)
    raises(TypeError, e.command, [b"SET", b"k", wide])
    eq((e.n, s.n), (0, 0))
    big = Encoder(bytearray(8 * 64), s)  # above a quarter of the buffer the value would go out uncopied
    import array
    raises(TypeError, big.command, [b"SET", b"k", memoryview(array.array("H", range(200)))])
    eq((big.n, s.n), (0, 0))


def test_byte_views_are_accepted_and_sized_by_bytes():
    ba = bytearray(b"0123456789")
    for v, want in ((memoryview(ba), b"0123456789"), (memoryview(ba)[2:5], b"234"), (memoryview(b"ro"), b"ro"),
                    (memoryview(bytearray(0)), b"")):
        check(v)
        eq(encode(b"X", v), b"*2\r\n$1\r\nX\r\n$%d\r\n" % len(want) + want + b"\r\n")
    try:
        import array
        sb = memoryview(array.array("b", [65, 66]))
        check(sb)
        eq(encode(sb), b"*1\r\n$2\r\nAB\r\n")
    except ImportError:
        pass
    ok(encode(b"X", memoryview(ba)) == b"*2\r\n$1\r\nX\r\n$10\r\n0123456789\r\n")


def test_checking_a_byte_view_allocates_nothing():
    mv = memoryview(bytearray(100))
    check(mv)
    n = allocs(lambda: check(mv))
    ok(n in (None, 0), "check(memoryview) allocated %r bytes" % n)


def test_array_is_refused():
    try:
        import array
    except ImportError:
        skip("no array module")
    for tc in ("B", "H"):
        e = raises(TypeError, check, array.array(tc, [1, 2]))
        ok("memoryview" in str(e), str(e))


class _LyingBytes(bytes):
    def __len__(self):
        return 1


class _LyingBytearray(bytearray):
    def __len__(self):
        return 2


def test_bytes_subclasses_are_sized_by_their_bytes():
    eq(encode(b"X", _LyingBytes(b"abc\r\n*1")), b"*2\r\n$1\r\nX\r\n$7\r\nabc\r\n*1\r\n")
    eq(encode(_LyingBytearray(b"hello")), b"*1\r\n$5\r\nhello\r\n")


def test_refused_buffer_sends_nothing_and_the_connection_stays_usable():
    wide = _wide()
    if wide is None:
        skip("no array module")
    c = handler().connect()
    w = counting(c)
    k = P + b"buf"
    raises(TypeError, c.set, k, wide)
    raises(TypeError, c.command, b"SET", k, wide)
    with c.pipeline():
        raises(TypeError, c.set, k, wide)
    eq((w.sends, c._pending, c._encoder.n), (0, 0, 0))
    eq(c.set(k, _LyingBytes(b"v\r\n*1\r\n$4\r\nPING\r\n")).wait(), True)
    eq(c.get(k).wait(), b"v\r\n*1\r\n$4\r\nPING\r\n")
    eq(c.command(b"PING").wait(), b"PONG")
    c.command(b"DEL", k).wait()


# ---- call-site validation ------------------------------------------------------------------------------------------
def test_from_url_refuses_non_str():
    for bad in (None, b"redis://h", 6379):
        e = raises(TypeError, mr.from_url, bad)
        ok("str" in str(e), str(e))


def test_ports_are_checked_by_the_config_call():
    for port in (70000, 0, -1, 65536):
        raises(ValueError, mr.ConnectionHandler.resp3, ("127.0.0.1", port))
    for port in ("6379", 6379.0, None, True):
        raises(TypeError, mr.ConnectionHandler.resp3, ("127.0.0.1", port))
    raises(TypeError, mr.ConnectionHandler.resp2, (None, 6379))
    raises(ValueError, mr.ConnectionHandler, ("h", 6379), 4)
    for url in ("redis://h:70000", "redis://h:-1", "redis://h:0", "redis://h:+5", "redis://h: 5", "redis://h:5_0",
                "redis://[::1]:99999", "redis://h:"):
        raises(ValueError, mr.from_url, url)
    eq(mr.from_url("redis://h:65535").address, ("h", 65535))


def test_timeout_has_a_tick_safe_maximum():
    h = handler()
    for bad in (2 ** 62, 2 ** 30, MAX_TIMEOUT_MS + 1, -1):
        e = raises(ValueError, h.timeout, bad)
        ok("ms" in str(e), str(e))
    raises(TypeError, h.timeout, 1.5)
    raises(TypeError, h.timeout, None)
    eq(h.timeout(MAX_TIMEOUT_MS)._timeout_ms, MAX_TIMEOUT_MS)
    ok(MAX_TIMEOUT_MS + 86400000 < 1 << 28, "a deadline stays below half of CircuitPython's tick period")


def test_connect_checks_the_clock():
    h = handler()
    for bad in (object(), 5, "time"):
        e = raises(TypeError, h.connect, None, bad)
        ok("ticks_ms" in str(e), str(e))
    e = raises(TypeError, h.connect, object())
    ok("stack" in str(e), str(e))
    eq(h.connect().command(b"PING").wait(), b"PONG")


def test_blocking_pop_timeouts_are_finite_and_not_negative():
    c = handler().connect()
    w = counting(c)
    inf = float("inf")
    for bad in (inf, -inf, float("nan"), -1, -0.5):
        for fn in (c.blpop, c.brpop):
            e = raises(ValueError, fn, P + b"l", bad)
            ok("timeout" in str(e), str(e))
    raises(TypeError, c.blpop, P + b"l", "1")
    raises(TypeError, c.blpop, P + b"l", True)
    eq((w.sends, c._pending, c._encoder.n), (0, 0, 0))
    eq(c.blpop(P + b"l", 0.05).wait(), None)


# ---- passwords never in exceptions -------------------------------------------------------------------------------
def _chain(e):
    out = []
    seen = 0
    while e is not None and seen < 10:
        out.append(e)
        seen += 1
        nxt = getattr(e, "__cause__", None)
        if nxt is None:
            nxt = getattr(e, "__context__", None)
        e = nxt
    return out


def _no_secret(e, secret):
    for x in _chain(e):
        text = repr(x) + str(x) + repr(x.args)
        ok(secret not in text, "%s leaked the password" % type(x).__name__)


def test_bad_escapes_in_a_url_password_never_show_it():
    for url in ("redis://u:SECRETpw%FF@h", "redis://u:SECRETpw%C3%28@h", "redis://u:SECRETpw%zz@h",
                "redis://u:SECRETpw%4@h", "redis://u:SECRETpw%@h", "redis://SECRETpw%FF@h"):
        e = raises(ValueError, mr.from_url, url)
        _no_secret(e, "SECRETpw")
    eq(mr.from_url("redis://u:p%25%41%c3%a9@h")._creds.password, "p%A\u00e9")


# ---- from_url query parameters -------------------------------------------------------------------------------------
def test_from_url_query_parameters():
    h = mr.from_url("redis://h/2?protocol=2&socket_timeout=1.5&client_name=dev%2D1")
    eq((h.protocol, h._timeout_ms, h._name, h._db), (2, 1500, "dev-1", 2))
    h = mr.from_url("redis://h/2?db=5&timeout=0")
    eq((h._db, h._timeout_ms), (5, 0))
    eq(mr.from_url("redis://h?timeout=0.0001")._timeout_ms, 1)
    eq(mr.from_url("redis://h?")._timeout_ms, 5000)
    for url, name in (("redis://u:SECRET@h?socket_timeout=5&ssl_cert_reqs=none", "ssl_cert_reqs"),
                      ("redis://h?health_check_interval=3", "health_check_interval"), ("redis://h?x", "'x'")):
        e = raises(ValueError, mr.from_url, url)
        ok(name in str(e) and "SECRET" not in str(e), str(e))
    for url in ("redis://h?timeout=inf", "redis://h?timeout=nan", "redis://h?timeout=-1", "redis://h?timeout=x",
                "redis://h?socket_timeout=1e30", "redis://h?db=-1", "redis://h?protocol=4"):
        raises(ValueError, mr.from_url, url)


def test_from_url_parameters_reach_the_server():
    host, port = cfg.server()
    c = mr.from_url("redis://%s:%d?db=3&client_name=t_validate_url&socket_timeout=2" % (host, port)).connect()
    eq(c.command(b"CLIENT", b"GETNAME").wait(), b"t_validate_url")
    info = c.command(b"CLIENT", b"INFO").wait()
    ok(b" db=3 " in info, info)
    c.close()


# ---- handshake memory ----------------------------------------------------------------------------------------------
def test_tiny_memory_limit_still_connects_with_resp3_and_then_applies():
    h = handler(3).memory(mr.MemoryParameters(64, 1, 64))
    c = h.connect()
    eq(c._conn.protocol, 3)
    eq(c.command(b"PING").wait(), b"PONG")
    k = P + b"mem"
    eq(c.set(k, b"x" * 100).wait(), True)
    raises(mr.MemoryFull, c.get(k).wait)
    eq(c._reader._limit, 64)
    eq(len(c._reader.buf), 64)  # the buffer grown for HELLO was given back
    eq(c.command(b"DEL", k).wait(), 1)


def test_tiny_memory_limit_handshake_with_select_and_client_name():
    for proto in (3, 2):
        h = handler(proto).memory(mr.MemoryParameters(64, 1, 64)).select(2).client_name("t_validate_tiny")
        c = h.connect()
        eq(c.command(b"CLIENT", b"GETNAME").wait(), b"t_validate_tiny")
        eq(c._reader._limit, 64)
        c.close()


def test_tls_configuration_is_checked_by_the_config_call():
    h = handler()
    for bad in (1, "yes", object()):
        raises(TypeError, h.tls, bad)
    raises(TypeError, h.tls, True, 5)
    eq(h.tls(False)._tls, False)


class _A:
    pass


_AS = _A()


def _set_views():
    c = _AS.c
    _AS.r0 = c.set(_AS.key, _AS.small).wait()  # copied into the send buffer
    _AS.r1 = c.set(_AS.key, _AS.big).wait()  # above a quarter of the send buffer: sent uncopied


def test_set_with_byte_memoryviews_allocates_nothing():
    # The item-size check of a bytearray-backed view must stay free on MicroPython (no itemsize attribute there).
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    h = handler().memory(mr.MemoryParameters(buffer_size=256, frame_capacity=4, memory_limit=1024))
    _AS.c = h.connect()
    _AS.key = P + b"mvalloc"
    raw = bytearray(b"v" * 200)
    _AS.small = memoryview(raw)[0:10]
    _AS.big = memoryview(raw)
    _AS.r0 = _AS.r1 = None
    for _ in range(3):
        _set_views()
    n = allocs(_set_views)
    eq(n, 0, "set(memoryview) allocated %r bytes" % n)
    eq((_AS.r0, _AS.r1), (True, True))
    eq(_AS.c.get(_AS.key).wait(), b"v" * 200)
    _AS.c.command(b"DEL", _AS.key).wait()
