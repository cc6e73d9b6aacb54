"""Review of transaction.py, scripts.py and cache.py (session 3): replies cut at every byte (faultproxy truncate and
reset) while a transaction's EXEC reply, a script's NOSCRIPT fallback or a cache fill is read. Whatever the cut, no
result holds a wrong value: each is its own reply or raises a RedisError, and the next connect() works. CPython."""

import time

import pytest

import microredis as mr
from microredis.cache import Cache
from faultproxy import FaultProxy

P = b"t_rv2cut:"


@pytest.fixture
def proxy(redis_server):
    p = FaultProxy(("127.0.0.1", redis_server.port)).start()
    yield p
    p.stop()


class _Failed:
    # a command whose call itself raised (the cut came while it was written, or the re-dial failed)
    def __init__(self, e):
        self.e = e

    def wait(self):
        raise self.e


def _call(fn, *a):
    try:
        return fn(*a)
    except mr.ConnectionError as e:
        return _Failed(e)


def _results(fs):
    out = []
    for f in fs:
        try:
            out.append(("ok", f.wait()))
        except mr.RedisError as e:
            out.append(("err", type(e).__name__))
    return out


@pytest.mark.parametrize("how", ["truncate", "reset"])
def test_transaction_reply_cut_at_every_byte(proxy, redis_server, how):
    admin = mr.ConnectionHandler.resp3(redis_server.address).connect()
    h = mr.ConnectionHandler.resp3(proxy.address).timeout(1000)
    full = None
    for k in range(1, 190, 4):
        admin.command(b"DEL", P + b"n", P + b"s").wait()
        admin.set(P + b"s", b"v").wait()
        c = h.connect()
        c.ping().wait()
        proxy.set_mode(how, k)
        try:
            with c.transaction() as t:
                fs = [t.incr(P + b"n"), t.get(P + b"s"), t.hgetall(P + b"s"), t.incr(P + b"n")]
        except mr.ConnectionError:
            pass  # cut while written: the results say so too
        got = _results(fs)
        proxy.passthrough()
        want = [("ok", 1), ("ok", b"v"), ("err", "ReplyError"), ("ok", 2)]
        if got == want:
            full = k if full is None else full
        else:
            assert all(r[0] == "err" and r[1] != "ReplyError" for r in got), (k, got)  # all failed, none wrong
            assert c._conn is None
        c = h.connect()
        assert c.ping().wait() is True
        c.close()
        h.disconnect()
    assert full is not None  # the later cuts come after the whole reply
    admin.close()


@pytest.mark.parametrize("how", ["truncate", "reset"])
def test_noscript_fallback_cut_at_every_byte(proxy, redis_server, how):
    h = mr.ConnectionHandler.resp3(proxy.address).timeout(1000)
    for k in range(1, 70, 3):
        c = h.connect()
        s = c.register_script("return {ARGV[1], 'x'}")
        c.command(b"SCRIPT", b"FLUSH").wait()
        proxy.set_mode(how, k)
        r = _call(s.run, (), (b"a",))
        g = _call(c.get, P + b"none")
        got = _results([r, g])
        proxy.passthrough()
        for r, v in zip(got, ([b"a", b"x"], None)):
            assert r == ("ok", v) or (r[0] == "err" and r[1] != "ReplyError"), (k, got)
        c = h.connect()
        assert s.run((), (b"b",), client=c).wait() == [b"b", b"x"]
        c.close()
        h.disconnect()


@pytest.mark.parametrize("how", ["truncate", "reset"])
def test_cache_fill_cut_at_every_byte_with_retry(proxy, redis_server, how):
    admin = mr.ConnectionHandler.resp3(redis_server.address).connect()
    admin.set(P + b"a", b"value-a").wait()
    admin.set(P + b"b", b"value-b").wait()
    h = mr.ConnectionHandler.resp3(proxy.address).timeout(1000).retry(backoff_ms=0)
    c = h.connect()
    cache = Cache(c, prefixes=(P,))
    for k in range(1, 40, 2):
        cache.flush()
        proxy.set_mode(how, k)
        fa = _call(c.get, P + b"a")
        fb = _call(c.get, P + b"b")
        got = _results([fa, fb])
        proxy.passthrough()
        for r, v in zip(got, (b"value-a", b"value-b")):
            assert r == ("ok", v) or r[0] == "err", (k, got)
        for _ in range(3):  # hits or re-dialled misses: never anything but the value
            try:
                assert c.get(P + b"a").wait() == b"value-a"
                assert c.get(P + b"b").wait() == b"value-b"
            except mr.ConnectionError:
                time.sleep(0.01)
    admin.set(P + b"a", b"changed").wait()
    time.sleep(0.05)
    for _ in range(3):
        try:
            assert c.get(P + b"a").wait() == b"changed"
            break
        except mr.ConnectionError:
            time.sleep(0.01)
    cache.close()
    c.close()
    admin.close()
