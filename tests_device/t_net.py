# Transport (microredis.net) and clock tests against a real redis-server; MicroPython and CPython.

import cfg
from tinytest import IS_MICROPYTHON, allocs, eq, ok, raises, skip
from devkit import command

from microredis import net
from microredis.clock import PeriodicTicks, Ticks29, default_clock
from microredis.errors import ConnectionError

PING = b"*1\r\n$4\r\nPING\r\n"
CLK = default_clock()


def _open(timeout_ms=2000):
    host, port = cfg.server()
    return net.open_transport(None, host, port, timeout_ms)


def _read_exact(t, buf, n, timeout_ms=2000):
    """Read until buf[0:n] is filled (start offsets > 0 exercise the slice path)."""
    got = 0
    t0 = CLK.ticks_ms()
    while got < n:
        r = t.recv_into(buf, got, 200)
        got += r
        if CLK.ticks_diff(CLK.ticks_ms(), t0) > timeout_ms:
            raise AssertionError("reply incomplete: %d of %d bytes" % (got, n))
    return got


def test_ping_round_trip():
    t = _open()
    try:
        buf = bytearray(64)
        t.send(PING, len(PING))
        eq(_read_exact(t, buf, 7), 7)
        eq(bytes(buf[:7]), b"+PONG\r\n")
        t.send_obj(PING)  # the whole-object form
        eq(_read_exact(t, buf, 7), 7)
        eq(bytes(buf[:7]), b"+PONG\r\n")
    finally:
        t.close()
    t.close()  # idempotent


def test_recv_timeout_zero_never_blocks():
    t = _open()
    try:
        buf = bytearray(16)
        t0 = CLK.ticks_ms()
        eq(t.recv_into(buf, 0, 0), 0)
        eq(t.recv_into(buf, 3, 0), 0)
        ok(CLK.ticks_diff(CLK.ticks_ms(), t0) < 20, "timeout 0 blocked")
    finally:
        t.close()


def test_recv_timeout_50ms():
    t = _open()
    try:
        buf = bytearray(16)
        t0 = CLK.ticks_ms()
        eq(t.recv_into(buf, 0, 50), 0)
        dt = CLK.ticks_diff(CLK.ticks_ms(), t0)
        ok(45 <= dt < 500, "waited %d ms for a 50 ms timeout" % dt)
        # still usable after a timeout (plain TCP: nothing is sticky)
        t.send(PING, len(PING))
        eq(_read_exact(t, buf, 7), 7)
    finally:
        t.close()


def test_peer_close_is_connection_error():
    t = _open()
    buf = bytearray(16)
    q = command("QUIT")
    t.send(q, len(q))
    eq(_read_exact(t, buf, 5), 5)
    eq(bytes(buf[:5]), b"+OK\r\n")
    e = raises(ConnectionError, t.recv_into, buf, 0, 2000)
    ok("closed" in str(e), str(e))
    # the transport closed itself: every later call is a ConnectionError, never OSError
    raises(ConnectionError, t.send, PING, len(PING))
    raises(ConnectionError, t.recv_into, buf, 0, 0)
    t.close()


def test_send_to_closed_peer_is_connection_error():
    t = _open()
    k = command("CLIENT", "KILL", "SKIPME", "no")  # kills this very connection
    buf = bytearray(16)
    t.send(k, len(k))
    # the server may or may not reply before it closes; then writes start failing
    try:
        for _ in range(50):
            t.send(PING, len(PING))
            t.recv_into(buf, 0, 20)
    except ConnectionError:
        pass
    else:
        raise AssertionError("writing to a killed connection never failed")


def test_closed_transport():
    t = _open()
    t.close()
    raises(ConnectionError, t.send, PING, len(PING))
    raises(ConnectionError, t.recv_into, bytearray(4), 0, 0)


def test_connection_refused():
    host, _ = cfg.server()
    e = raises(ConnectionError, net.open_transport, None, host, 1, 2000)
    ok("127.0.0.1:1" in str(e) or ":1 " in str(e), str(e))


class _NoDNS:
    # The platform's socket module whose name resolution fails at once, the way each platform reports it, so the
    # test sends no DNS query off this machine.
    def __init__(self):
        import socket
        self._real = socket
        if not IS_MICROPYTHON:
            class Sock(socket.socket):
                def connect(self, address):
                    raise socket.gaierror(-2, "Name or service not known")
            self.socket = Sock

    def __getattr__(self, name):
        return getattr(self._real, name)

    def getaddrinfo(self, *args):
        raise OSError("[addrinfo error -2]")  # MicroPython: the errno is a string


def test_dns_failure():
    try:
        import socket  # noqa: F401
    except ImportError:
        skip("no socket module on this board")
    e = raises(ConnectionError, net.open_transport, _NoDNS(), "no-such-host.invalid", 6379, 3000)
    ok("resolve" in str(e) or "no-such-host" in str(e), str(e))


def test_bad_tls_argument():
    host, port = cfg.server()
    raises(TypeError, net.open_transport, None, host, port, 1000, "yes")


def test_partial_reads_small_buffer():
    t = _open()
    try:
        val = b"0123456789abcdefghij" * 5  # 100 bytes
        c = command("ECHO", val)
        t.send(c, len(c))
        want = b"$100\r\n" + val + b"\r\n"
        # a 4-byte buffer: many reads at start 0
        small = bytearray(4)
        got = b""
        t0 = CLK.ticks_ms()
        while len(got) < len(want):
            n = t.recv_into(small, 0, 200)
            ok(n <= 4)
            got += bytes(small[:n])
            ok(CLK.ticks_diff(CLK.ticks_ms(), t0) < 3000, "reply incomplete")
        eq(got, want)
        # a buffer filled through growing start offsets
        t.send(c, len(c))
        big = bytearray(len(want))
        eq(_read_exact(t, big, len(want)), len(want))
        eq(bytes(big), want)
        raises(ValueError, t.recv_into, big, len(big), 0)  # no room: not a ConnectionError
    finally:
        t.close()


def test_big_send_1mb():
    size = cfg.get("big_send", 1 << 20)
    try:
        val = bytearray(size)
    except MemoryError:
        skip("no room for a %d byte value" % size)
    for i in range(0, size, 4096):
        val[i] = 65 + (i >> 12) % 26
    key = b"t_net:big"
    hdr = b"*3\r\n$3\r\nSET\r\n$" + str(len(key)).encode() + b"\r\n" + key + b"\r\n$" + \
        str(size).encode() + b"\r\n"
    t = _open(10000)
    try:
        t.send(hdr, len(hdr))
        t.send_obj(memoryview(val))  # one call: partial sends are the transport's business
        t.send(b"\r\n", 2)
        buf = bytearray(32)
        eq(_read_exact(t, buf, 5, 10000), 5)
        eq(bytes(buf[:5]), b"+OK\r\n")
        c = command("STRLEN", key)
        t.send(c, len(c))
        want = (":%d\r\n" % size).encode()
        eq(_read_exact(t, buf, len(want)), len(want))
        eq(bytes(buf[: len(want)]), want)
        c = command("DEL", key)
        t.send(c, len(c))
        eq(_read_exact(t, buf, 4), 4)
    finally:
        t.close()


def test_clock_periodic_wrap():
    p = 1 << 29
    now = [p - 10]
    c = PeriodicTicks(lambda: now[0], p)
    t0 = c.ticks_ms()
    now[0] = 15  # the counter wrapped: 25 ms later
    eq(c.ticks_diff(c.ticks_ms(), t0), 25)
    eq(c.ticks_diff(t0, c.ticks_ms()), -25)
    eq(c.ticks_add(p - 1, 2), 1)
    # range [-period/2, period/2)
    eq(c.ticks_diff(p // 2, 0), -(p // 2))
    eq(c.ticks_diff(p // 2 - 1, 0), p // 2 - 1)
    eq(c.ticks_diff(0, p // 2), -(p // 2))
    eq(c.ticks_diff(5, 5), 0)
    small = PeriodicTicks(lambda: 0, 16)
    for a in range(16):
        for b in range(16):
            d = small.ticks_diff(a, b)
            ok(-8 <= d < 8)
            eq((b + d) % 16, a)
    ok(Ticks29 is PeriodicTicks)
    eq(Ticks29(lambda: 0).period, p)


def test_default_clock():
    c = default_clock()
    ok(c is default_clock(), "default_clock is cached")
    a = c.ticks_ms()
    if IS_MICROPYTHON:
        import time
        ok(c is time)
    b = c.ticks_ms()
    ok(c.ticks_diff(b, a) >= 0)


def test_clock_ticks_diff_allocates_nothing():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    c = PeriodicTicks(lambda: 5, 1 << 29)
    res = [0]

    def run():
        for i in range(100):
            res[0] = c.ticks_diff(i, (1 << 29) - 7)

    run()
    eq(allocs(run), 0)
    eq(res[0], 99 + 7)


class _Counting:
    """Proxy in front of the transport's socket that counts the calls it makes."""

    def __init__(self, s):
        self._s = s
        self.calls = {}

    def _hit(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1

    def write(self, *a):
        self._hit("write")
        return self._s.write(*a)

    def readinto(self, *a):
        self._hit("readinto")
        return self._s.readinto(*a)

    def send(self, *a):
        self._hit("send")
        return self._s.send(*a)

    def recv_into(self, *a):
        self._hit("recv_into")
        return self._s.recv_into(*a)

    def settimeout(self, *a):
        self._hit("settimeout")
        return self._s.settimeout(*a)

    def close(self):
        self._hit("close")
        return self._s.close()


def test_socket_calls_per_ping():
    t = _open()
    try:
        buf = bytearray(16)
        t.send(PING, len(PING))  # warm up: sets the socket timeout once
        eq(t.recv_into(buf, 0, 1000), 7)
        proxy = _Counting(t._sock)
        t._sock = proxy
        for _ in range(10):
            t.send(PING, len(PING))
            eq(t.recv_into(buf, 0, 1000), 7)  # poll/timeout first, so one read gets it all
        if IS_MICROPYTHON:
            eq(proxy.calls, {"write": 10, "readinto": 10})
        else:
            eq(proxy.calls, {"send": 10, "recv_into": 10})
        t._sock = proxy._s
    finally:
        t.close()


def test_zero_alloc_send_recv():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    t = _open()
    try:
        buf = bytearray(64)
        ping = bytearray(PING)  # the client sends from its own bytearray
        n = len(ping)
        res = [0, 0, 0]

        def round_trips():
            for i in range(50):
                t.send(ping, n)
                res[0] += t.recv_into(buf, 0, 1000)
            res[1] = t.recv_into(buf, 0, 0)   # nothing pending: poll only
            res[2] = t.recv_into(buf, 0, 1)   # nothing pending: a 1 ms wait

        round_trips()  # warm up (lazy objects, first-use caches)
        res[0] = 0
        delta = allocs(round_trips)
        eq(res, [50 * 7, 0, 0])
        eq(delta, 0, "bytes allocated by 50 PING round trips + 2 empty polls")
        print("    zero-alloc: 50 PINGs + 2 empty reads: %d bytes" % delta)
    finally:
        t.close()


def test_no_heap_frame_send_recv():
    # A bytecode frame over 11 words comes from the heap on every call, and with the heap locked it falls back to
    # the C stack silently, so allocs() cannot see it; mem_total() counts it. send/recv_into keep their common case
    # (a whole write; a wait and one read; a read with nothing there; a wait that runs out) off the heap.
    if not IS_MICROPYTHON:
        skip("heap frames are MicroPython's")
    import gc
    import micropython
    if not hasattr(micropython, "mem_total"):
        skip("this port has no micropython.mem_total()")
    t = _open()
    try:
        buf = bytearray(64)
        ping = bytearray(PING)
        n = len(ping)
        res = [0, 0]

        def round_trips(k):
            for i in range(k):
                t.send(ping, n)
                res[0] += t.recv_into(buf, 0, 1000)
                res[1] += t.recv_into(buf, 0, 0) + t.recv_into(buf, 0, 1)

        def heap(k):
            # what k rounds take, less what 1 does: the test's own frames cancel out
            gc.collect()
            gc.disable()
            try:
                m = micropython.mem_total()
                round_trips(1)
                m1 = micropython.mem_total()
                round_trips(k)
                return micropython.mem_total() - m1 - (m1 - m)
            finally:
                gc.enable()

        round_trips(2)
        m = heap(21)
        eq(res, [24 * 7, 0])
        eq(m, 0, "heap bytes (frames included) taken by 20 PING round trips with 40 empty reads")
    finally:
        t.close()
