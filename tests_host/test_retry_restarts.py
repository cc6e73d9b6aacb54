"""h.retry() and h.health_check() against real outages: a subscriber that keeps receiving across server restarts
(CPython and the MicroPython unix port, with no reconnect code of its own), fail-fast while the network is
black-holed, and a health check that finds a half-open (stalled) socket before a command is written."""

import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, RedisServer
from testkit import redis7_executable
from faultproxy import FaultProxy

import microredis as mr

ROUNDS = 6

SUBSCRIBER = """
import sys
import microredis as mr
port = int(sys.argv[1])
h = mr.ConnectionHandler.resp%d(('127.0.0.1', port)).timeout(500).retry(backoff_ms=50, max_backoff_ms=300)
c = h.connect()
sub = c.subscribe(b'retry:news')
print('READY')
while True:
    m = sub.receive(200)   # no reconnect code: the handler's policy re-dials and subscribes again
    if m is None:
        continue
    if m.payload == b'quit':
        break
    print('GOT', m.payload.decode())
print('RESULT', sub.gaps, h.reconnects)
"""


def _reader(proc, q):
    for line in iter(proc.stdout.readline, ""):
        q.put(line.strip())
    q.put(None)


def _wait_for(q, want, timeout, seen):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = q.get(timeout=0.05)
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError("subscriber ended early: %r" % seen)
        seen.append(line)
        if line == want:
            return True
    return False


def _publish(address, payload, channel=b"retry:news"):
    h = mr.ConnectionHandler.resp3(address).timeout(1000)
    try:
        c = h.connect()
        return c.publish(channel, payload).wait()
    except mr.RedisError:
        return 0
    finally:
        h.disconnect()


@pytest.mark.parametrize("proto", [3, 2])
@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_subscriber_survives_server_restarts(redis_factory, micropython, tmp_path, runtime, proto):
    srv = redis_factory()
    script = tmp_path / "sub.py"
    script.write_text(SUBSCRIBER % proto)
    if runtime == "micropython":
        if micropython.executable is None:
            pytest.skip("no micropython binary")
        env = dict(os.environ, MICROPYPATH=micropython.micropypath())
        argv = [micropython.executable, str(script), str(srv.port)]
    else:
        env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
        argv = [sys.executable, "-u", str(script), str(srv.port)]
    p = subprocess.Popen(argv, env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    q = queue.Queue()
    threading.Thread(target=_reader, args=(p, q), daemon=True).start()
    seen = []
    try:
        assert _wait_for(q, "READY", 20, seen), seen
        for k in range(ROUNDS):
            if k:
                srv.restart()  # every connection is gone; the subscriber is told nothing
            got = False
            end = time.monotonic() + 20
            while not got and time.monotonic() < end:
                _publish(srv.address, b"round-%d" % k)  # published again until it arrives: the gap loses some
                got = _wait_for(q, "GOT round-%d" % k, 0.2, seen)
            assert got, "round %d never arrived: %r" % (k, seen[-10:])
        assert _publish(srv.address, b"quit") == 1
        p.wait(timeout=20)
        while True:  # the reader thread holds the rest of the output
            line = q.get(timeout=5)
            if line is None:
                break
            seen.append(line)
        res = [ln for ln in seen if ln.startswith("RESULT")]
        assert res, seen
        gaps, reconnects = (int(x) for x in res[0].split()[1:3])
        assert gaps >= ROUNDS - 1 and reconnects >= ROUNDS - 1, res
        assert p.returncode == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_fail_fast_while_blackholed(redis_server):
    proxy = FaultProxy(redis_server.address).start()
    try:
        tmo = 300
        h = mr.ConnectionHandler.resp3(proxy.address).timeout(tmo).retry(backoff_ms=500, jitter=False)
        c = h.connect()
        assert c.set(b"retry:bh", b"1").wait() is True
        proxy.reset()  # the live connection goes...
        proxy.blackhole()  # ...and a new one is never answered
        with pytest.raises(mr.ConnectionError):
            c.get(b"retry:bh").wait()
        t = time.monotonic()
        with pytest.raises(mr.ConnectionError) as e:
            c.get(b"retry:bh")  # the re-dial: one dial + handshake timeout at most
        took = time.monotonic() - t
        assert took < tmo / 1000 + 0.25, took
        assert "next attempt in 500 ms" in str(e.value)
        times = []
        for _ in range(5):
            t = time.monotonic()
            with pytest.raises(mr.ConnectionError) as e:
                c.get(b"retry:bh")
            times.append(time.monotonic() - t)
            assert "next attempt in" in str(e.value)
        assert max(times) < 0.05, times
        proxy.passthrough()
        time.sleep(0.55)
        assert c.get(b"retry:bh").wait() == b"1"
        assert h.reconnects == 1
        c.close()
    finally:
        proxy.stop()


@pytest.mark.parametrize("retry", [False, True])
def test_health_check_finds_a_half_open_socket(redis_server, retry):
    proxy = FaultProxy(redis_server.address).start()
    key = b"retry:hc:%d" % retry
    admin = mr.ConnectionHandler.resp3(redis_server.address).connect()
    admin.command(b"DEL", key).wait()
    try:
        h = mr.ConnectionHandler.resp3(proxy.address).timeout(300).health_check(200)
        if retry:
            h.retry(backoff_ms=100, jitter=False)
        c = h.connect()
        assert c.command(b"PING").wait() == b"PONG"
        proxy.stall()  # the socket stays open, nothing comes back: a NAT or AP that forgot the connection
        time.sleep(0.25)
        t = time.monotonic()
        with pytest.raises(mr.ConnectionError) as e:
            c.set(key, b"1")
        took = time.monotonic() - t
        # the PING's reply timeout (and, with retry, one dial through the stalled proxy)
        assert took < (0.9 if retry else 0.55), took
        if not retry:
            assert "health check failed" in str(e.value)
        assert admin.command(b"EXISTS", key).wait() == 0, "the command must never be written"
        proxy.passthrough()
        if retry:
            time.sleep(0.15)
            assert c.set(key, b"1").wait() is True
            assert h.reconnects == 1
            assert admin.command(b"GET", key).wait() == b"1"
        else:
            with pytest.raises(mr.ConnectionError):
                c.set(key, b"1")
            c = h.connect()
            assert c.set(key, b"1").wait() is True
        c.close()
    finally:
        admin.command(b"DEL", key).wait()
        admin.close()
        proxy.stop()


@pytest.mark.parametrize("proto", [3, 2])
def test_health_check_finds_a_half_open_subscription(redis_server, proto):
    proxy = FaultProxy(redis_server.address).start()
    try:
        h = mr.ConnectionHandler(proxy.address, proto).timeout(300).health_check(200)
        h.retry(backoff_ms=100, jitter=False)
        c = h.connect()
        sub = c.subscribe(b"retry:hs")
        proxy.stall()  # a subscriber waits for messages on a socket that will never deliver one
        t = time.monotonic()
        assert sub.receive(700) is None  # PING at 200 ms, dead at 500, a re-dial through the stall fails
        assert time.monotonic() - t < 1.5
        # (RESP2 dials without a handshake: its dial "succeeds" and the re-subscription times out, paced alike)
        assert h.last_error is not None and (h.reconnects == 0 or proto == 2)
        proxy.passthrough()
        got = None
        end = time.monotonic() + 5
        while got is None and time.monotonic() < end:
            _publish(redis_server.address, b"back", b"retry:hs")
            got = sub.receive(200)
        assert got is not None and got.payload == b"back"
        assert sub.gaps == 1 and (h.reconnects == 1 or proto == 2)
        sub.close()
        c.close()
    finally:
        proxy.stop()


@pytest.mark.parametrize("proto", [3, 2])
def test_shard_channels_resubscribed(proto):
    exe = redis7_executable()
    if exe is None:
        pytest.skip("SSUBSCRIBE needs Debian's redis-server 7 (apt-get install redis-server)")
    srv = RedisServer(executable=exe).start()
    try:
        h = mr.ConnectionHandler(srv.address, proto).timeout(1000).retry(backoff_ms=50)
        c = h.connect()
        sub = c.ssubscribe(b"retry:shard")
        sub.subscribe(b"retry:plain")
        admin = mr.ConnectionHandler.resp3(srv.address).connect()
        assert admin.command(b"CLIENT", b"KILL", b"SKIPME", b"yes").wait() >= 1
        assert sub.receive(300) is None  # re-dialled and subscribed again inside receive()
        assert sub.gaps == 1 and h.reconnects == 1
        assert admin.command(b"SPUBLISH", b"retry:shard", b"s").wait() == 1
        assert admin.publish(b"retry:plain", b"p").wait() == 1
        got = [sub.receive(1000), sub.receive(1000)]
        assert sorted((m.kind, m.payload) for m in got) == [(b"message", b"p"), (b"smessage", b"s")]
        assert sub.shard_channels == {b"retry:shard"} and sub.channels == {b"retry:plain"}
        sub.close()
        c.close()
        admin.close()
    finally:
        srv.cleanup()
