"""microredis.net through a fake CircuitPython socketpool (tests_device/fakepool.py) over real sockets."""

import socket
import sys
import threading
import time

import pytest

import fakepool
from microredis import clock, net
from microredis.errors import ConnectionError, TimeoutError
from testkit import encode_command as cmd

PING = b"*1\r\n$4\r\nPING\r\n"
API = {"connect", "send", "recv_into", "settimeout", "setblocking", "close"}


def read_exact(t, n, timeout_ms=5000, step_ms=200):
    buf = bytearray(n)
    got = 0
    deadline = time.monotonic() + timeout_ms / 1000
    while got < n:
        got += t.recv_into(buf, got, step_ms)
        assert time.monotonic() < deadline, "reply incomplete: %d of %d" % (got, n)
    return bytes(buf)


@pytest.fixture
def missing(monkeypatch):
    """Every attribute looked up on a fake socket that the fake (like the real one) lacks."""
    seen = []

    def getattr_(self, name):
        seen.append(name)
        raise AttributeError(name)

    monkeypatch.setattr(fakepool.Socket, "__getattr__", getattr_, raising=False)
    return seen


@pytest.fixture
def pool(missing):
    p = fakepool.SocketPool(partial=True, chunk=3)
    yield p
    # whatever the test did, the adapter called only what CircuitPython's socket has, and only
    # probed (hasattr) for setsockopt, which a real socket has and the fake leaves out
    assert set(p.calls) <= API, p.calls
    assert set(missing) <= {"setsockopt"}, missing


@pytest.fixture
def fake_clock(monkeypatch):
    """Make the library's default clock a 29-bit supervisor.ticks_ms 20 ms before its wrap."""
    sup = fakepool.FakeSupervisor(before_wrap=20)
    monkeypatch.setattr(clock, "_default", clock.PeriodicTicks(sup.ticks_ms, 1 << 29))
    return clock.default_clock()


def open_t(pool, srv, timeout_ms=2000):
    return net.open_transport(pool, srv.host, srv.port, timeout_ms)


def test_adapter_for_pool(pool, missing, redis_server):
    t = open_t(pool, redis_server)
    try:
        assert type(t).__name__ == "SockTransport"
        assert pool.calls["connect"] == 1
        mine = len(missing)
        for name in ("recv", "read", "readinto", "write", "sendall", "fileno"):
            assert not hasattr(pool.sockets[0], name)  # the fake really is that poor
        del missing[mine:]  # the probes above are the test's, not the adapter's
        assert not hasattr(pool, "getaddrinfo")
    finally:
        t.close()
    assert pool.sockets[0]._closed


def test_ping_with_partial_io(pool, redis_server):
    t = open_t(pool, redis_server)
    try:
        for _ in range(3):
            before = dict(pool.calls)
            t.send(PING, len(PING))
            assert read_exact(t, 7) == b"+PONG\r\n"
            sends = pool.calls["send"] - before.get("send", 0)
            recvs = pool.calls["recv_into"] - before.get("recv_into", 0)
            assert sends == 5          # 14 bytes, 3 per send
            assert recvs >= 3          # 7 bytes, 3 per recv_into
    finally:
        t.close()


def test_one_send_one_recv_per_ping(missing, redis_server):
    p = fakepool.SocketPool()  # whole sends and reads
    t = open_t(p, redis_server)
    buf = bytearray(64)
    try:
        t.send(PING, len(PING))
        assert t.recv_into(buf, 0, 1000) == 7
        before = dict(p.calls)
        for _ in range(10):
            t.send(PING, len(PING))
            assert t.recv_into(buf, 0, 1000) == 7  # the timeout is already set: no settimeout
        delta = {k: p.calls[k] - before.get(k, 0) for k in p.calls if p.calls[k] != before.get(k, 0)}
        assert delta == {"send": 10, "recv_into": 10}
    finally:
        t.close()


def test_recv_timeout_zero_is_eagain_and_returns_0(pool, redis_server):
    t = open_t(pool, redis_server)
    try:
        buf = bytearray(16)
        t0 = time.monotonic()
        assert t.recv_into(buf, 0, 0) == 0
        assert t.recv_into(buf, 5, 0) == 0
        assert time.monotonic() - t0 < 0.02
        assert pool.sockets[0]._timeout_ms == 0  # non-blocking: the EAGAIN path
    finally:
        t.close()


@pytest.mark.parametrize("timeout_errno", [110, 116])
def test_recv_timeout_50ms(missing, redis_server, timeout_errno):
    p = fakepool.SocketPool(partial=True, timeout_errno=timeout_errno)
    t = open_t(p, redis_server)
    try:
        buf = bytearray(16)
        t0 = time.monotonic()
        assert t.recv_into(buf, 0, 50) == 0
        assert 0.045 <= time.monotonic() - t0 < 0.5
        t.send(PING, len(PING))  # a timeout is not fatal on a plain socket
        assert read_exact(t, 7) == b"+PONG\r\n"
    finally:
        t.close()


def test_timed_wait_across_29bit_wrap(pool, redis_server, fake_clock):
    clk = fake_clock
    t = open_t(pool, redis_server)
    try:
        t0 = clk.ticks_ms()
        assert t0 > (1 << 29) - 50
        assert t.recv_into(bytearray(8), 0, 100) == 0
        t1 = clk.ticks_ms()
        assert t1 < t0                      # the raw counter wrapped during the wait
        assert 95 <= clk.ticks_diff(t1, t0) < 600
    finally:
        t.close()


def test_send_stall_times_out_across_29bit_wrap(missing, fake_clock):
    # a peer that accepts and never reads: the send buffer fills, CircuitPython's send raises
    # EAGAIN without waiting, and the transport measures the stall with the 29-bit clock
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(ls.accept()[0]), daemon=True).start()
    p = fakepool.SocketPool()
    t = net.open_transport(p, "127.0.0.1", ls.getsockname()[1], 300)
    try:
        clk = fake_clock
        t0 = clk.ticks_ms()
        big = bytes(16 << 20)
        with pytest.raises(TimeoutError):
            t.send_obj(big)
        dt = clk.ticks_diff(clk.ticks_ms(), t0)
        assert 300 <= dt < 3000, dt
        assert p.calls.get("send", 0) > 1
        with pytest.raises(ConnectionError):  # closed after the timeout
            t.send(PING, len(PING))
    finally:
        t.close()
        ls.close()
        for c in held:
            c.close()


def test_default_clock_prefers_supervisor(monkeypatch):
    sup = fakepool.FakeSupervisor(before_wrap=5)
    monkeypatch.setitem(sys.modules, "supervisor", sup)
    monkeypatch.setattr(clock, "_default", None)
    c = clock.default_clock()
    assert isinstance(c, clock.PeriodicTicks) and c.period == 1 << 29
    t0 = c.ticks_ms()
    time.sleep(0.02)
    t1 = c.ticks_ms()
    assert t1 < t0 and 15 <= c.ticks_diff(t1, t0) < 200


def test_peer_close_nonblocking_enotconn(pool, redis_server):
    t = open_t(pool, redis_server)
    t.send(cmd("QUIT"), len(cmd("QUIT")))
    assert read_exact(t, 5) == b"+OK\r\n"
    buf = bytearray(8)
    deadline = time.monotonic() + 2
    with pytest.raises(ConnectionError):
        while time.monotonic() < deadline:  # EAGAIN (0) until the FIN lands, then ENOTCONN
            assert t.recv_into(buf, 0, 0) == 0
            time.sleep(0.005)
    with pytest.raises(ConnectionError):
        t.send(PING, len(PING))


def test_peer_close_timed_read_returns_eof(pool, redis_server):
    t = open_t(pool, redis_server)
    t.send(cmd("QUIT"), len(cmd("QUIT")))
    assert read_exact(t, 5) == b"+OK\r\n"
    with pytest.raises(ConnectionError, match="closed"):
        t.recv_into(bytearray(8), 0, 1000)


def test_reset_by_peer(pool):
    # accept, then close with RST (SO_LINGER 0)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    connected = threading.Event()

    def rst():
        c, _ = ls.accept()
        connected.wait(2)  # reset only once the client's connect has completed
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()

    th = threading.Thread(target=rst, daemon=True)
    th.start()
    t = net.open_transport(pool, "127.0.0.1", ls.getsockname()[1], 1000)
    connected.set()
    th.join(2)
    time.sleep(0.05)
    buf = bytearray(8)
    try:
        # lwIP: the first failing non-blocking read says EAGAIN, the next ENOTCONN
        with pytest.raises(ConnectionError):
            for _ in range(5):
                assert t.recv_into(buf, 0, 0) == 0
    finally:
        t.close()
        ls.close()


def test_bad_errnos_become_connection_error(pool, redis_server):
    t = open_t(pool, redis_server)
    pool.sockets[0]._connected = False         # the board's socket thinks it is unconnected
    with pytest.raises(ConnectionError, match="Broken pipe|32"):
        t.send(PING, len(PING))                 # BrokenPipeError, not a bare OSError
    t2 = open_t(pool, redis_server)
    pool.sockets[1].close()                     # closed under the transport's feet
    with pytest.raises(ConnectionError):
        t2.recv_into(bytearray(4), 0, 0)        # EBADF
    with pytest.raises(ConnectionError):
        t2.send(PING, len(PING))


def test_connection_refused(pool):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    port = ls.getsockname()[1]
    ls.close()
    with pytest.raises(ConnectionError, match="127.0.0.1:%d" % port):
        net.open_transport(pool, "127.0.0.1", port, 1000)
    assert pool.sockets[0]._closed  # the failed socket is not leaked


def test_dns_failure_is_connection_error(pool):
    with pytest.raises(ConnectionError, match="resolve"):
        net.open_transport(pool, "no-such-host.invalid", 6379, 1000)


def test_connect_timeout(pool):
    # a listener with a full backlog never completes the handshake: connect must time out
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        t0 = time.monotonic()
        try:
            t = net.open_transport(pool, "127.0.0.1", port, 200)
        except ConnectionError as e:
            assert "timed out" in str(e)
            assert 0.15 <= time.monotonic() - t0 < 2
        else:  # the kernel accepted it after all: nothing to check
            t.close()
            pytest.skip("backlog did not fill")
    finally:
        for s in fillers:
            s.close()
        ls.close()


def test_partial_reads(pool, redis_server):
    t = open_t(pool, redis_server)
    try:
        val = bytes(range(48, 48 + 75)) * 2
        c = cmd("ECHO", val)
        t.send(c, len(c))
        want = b"$150\r\n" + val + b"\r\n"
        assert read_exact(t, len(want)) == want
        before = pool.calls["recv_into"]
        t.send(c, len(c))
        small = bytearray(2)
        got = b""
        while len(got) < len(want):
            n = t.recv_into(small, 0, 500)
            got += bytes(small[:n])
        assert got == want
        assert pool.calls["recv_into"] - before >= len(want) // 2
    finally:
        t.close()


def test_big_send(missing, redis_server):
    # 1 MB whole (the socket buffer fills: EAGAIN, retried) and 64 KB in 7-byte pieces
    for partial, size in ((False, 1 << 20), (True, 64 << 10)):
        p = fakepool.SocketPool(partial=partial, chunk=7)
        t = open_t(p, redis_server, 10000)
        try:
            key = b"t_net_cp:big:%d" % size
            val = bytes(range(256)) * (size // 256)
            c = cmd("SET", key, val)
            t.send_obj(memoryview(c))
            assert read_exact(t, 5, 20000) == b"+OK\r\n"
            c = cmd("STRLEN", key)
            t.send(c, len(c))
            want = b":%d\r\n" % size
            assert read_exact(t, len(want)) == want
            c = cmd("DEL", key)
            t.send(c, len(c))
            assert read_exact(t, 4) == b":1\r\n"
            if partial:
                assert p.calls["send"] >= len(val) // 7
        finally:
            t.close()
        assert set(p.calls) <= API


class FakeSSLContext:
    """Records how the adapter uses an SSLContext; wraps nothing (no TLS in the fake)."""

    def __init__(self):
        self.wrapped = []

    def wrap_socket(self, sock, server_hostname=None):
        self.wrapped.append((sock._connected, server_hostname))
        return sock


def test_tls_wraps_before_connect(pool, redis_server):
    ctx = FakeSSLContext()
    t = net.open_transport(pool, redis_server.host, redis_server.port, 1000, tls=ctx,
                           server_hostname="redis.example")
    try:
        assert ctx.wrapped == [(False, "redis.example")]  # CircuitPython: wrap, then connect
        t.send(PING, len(PING))
        assert read_exact(t, 7) == b"+PONG\r\n"
    finally:
        t.close()
    ctx2 = FakeSSLContext()
    net.open_transport(pool, redis_server.host, redis_server.port, 1000, tls=ctx2).close()
    assert ctx2.wrapped == [(False, redis_server.host)]  # server_hostname defaults to the host


def test_calls_only_socketpool_api(pool, redis_server, fake_clock):
    # a tour of every path; the pool fixture then checks the calls and the failed lookups
    t = open_t(pool, redis_server)
    buf = bytearray(32)
    t.send(PING, len(PING))
    read_exact(t, 7)
    t.recv_into(buf, 0, 0)
    t.recv_into(buf, 3, 20)
    t.send_obj(bytearray(cmd("ECHO", b"x" * 40)))
    assert read_exact(t, 47) == b"$40\r\n" + b"x" * 40 + b"\r\n"
    t.close()
    t.close()
    assert pool.calls["close"] == 1
    assert pool.calls["settimeout"] >= 2
