"""The whole client on a CircuitPython-shaped stack: a faithful fake SocketPool over real sockets (recv_into and
send only, partial I/O, OSError(ETIMEDOUT)) and a 29-bit supervisor clock that starts just before its wrap."""
import errno

import pytest

import fakepool
import microredis as mr
from microredis import clock


def _handler(server, tmo=300):
    return mr.ConnectionHandler.resp3((server.host, server.port)).timeout(tmo)


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("timeout_errno", [errno.ETIMEDOUT, 116])
def test_commands_over_fake_socketpool(redis_server, partial, timeout_errno):
    pool = fakepool.SocketPool(partial=partial, chunk=5, timeout_errno=timeout_errno)
    sup = fakepool.FakeSupervisor(before_wrap=30)
    clk = clock.PeriodicTicks(sup.ticks_ms, 1 << 29)
    h = _handler(redis_server, 2000)
    c = h.connect(stack=pool, clock=clk)
    key = b"t_cpy:%d:%d" % (partial, timeout_errno)
    assert c.set(key, b"x" * 300).wait() is True
    assert c.get(key).wait() == b"x" * 300
    buf = bytearray(400)
    assert c.get_into(key, buf).wait() == 300
    with c.pipeline():
        fs = [c.incr(key + b":n") for _ in range(10)]
    assert [f.wait() for f in fs] == list(range(1, 11))
    c.command(b"DEL", key, key + b":n").wait()
    for name in ("recv", "read", "readinto", "sendall", "getaddrinfo"):
        assert pool.calls.get(name, 0) == 0, name
    assert pool.calls.get("recv_into", 0) > 0 and pool.calls.get("send", 0) > 0


def test_deadline_across_the_29_bit_wrap(redis_server):
    pool = fakepool.SocketPool()
    sup = fakepool.FakeSupervisor(before_wrap=50)  # wraps 50 ms into the 300 ms deadline
    clk = clock.PeriodicTicks(sup.ticks_ms, 1 << 29)
    h = _handler(redis_server, 300)
    c = h.connect(stack=pool, clock=clk)
    import time
    t0 = time.monotonic()
    with pytest.raises(mr.TimeoutError):
        c.command(b"DEBUG", b"SLEEP", b"1.2").wait()
    dt = time.monotonic() - t0
    assert 0.25 <= dt < 1.0, dt  # well before the server woke up
    time.sleep(1.0)
    assert h.connect(stack=pool, clock=clk).command(b"PING").wait() == b"PONG"


def test_killed_connection_and_use_ping_over_fake_pool(redis_server):
    pool = fakepool.SocketPool()
    clk = clock.PeriodicTicks(fakepool.FakeSupervisor().ticks_ms, 1 << 29)
    h = _handler(redis_server, 1000).use_ping()
    c = h.connect(stack=pool, clock=clk)
    cid = c.command(b"CLIENT", b"ID").wait()
    admin = _handler(redis_server).connect()
    assert admin.command(b"CLIENT", b"KILL", b"ID", cid).wait() == 1
    c2 = h.connect(stack=pool, clock=clk)
    assert c2.command(b"CLIENT", b"ID").wait() != cid
