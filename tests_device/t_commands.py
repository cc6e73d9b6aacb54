# The command catalogue (commands.py and its groups, strings.py ... streams.py) against a real redis-server, under RESP3 and RESP2: redis-py
# shapes and typed replies, options and argument types refused before anything is sent, blocking pops composed with
# the client deadline, stream trimming. Plain MicroPython; runs under CPython too.
from microredis import ReplyError
from tinytest import eq, ok, raises, skip, now_ms, since, sleep_ms
from devkit import handler, clean_keys as _clean, each_protocol, server_version as _version

PRE = b"t_commands:"


def _each(fn, tmo=2000):
    each_protocol(fn, PRE, tmo)


def test_strings():
    def run(c, p, proto):
        a, k1, k2, k3, k4 = p + b"a", p + b"k1", p + b"k2", p + b"k3", p + b"k4"
        eq(c.set(a, b"1").wait(), True)
        eq(c.incrby(a, 5).wait(), 6)
        eq(c.decr(a).wait(), 5)
        eq(c.decrby(a, 2).wait(), 3)
        v = c.incrbyfloat(a, 0.5).wait()
        eq(type(v), float)
        eq(v, 3.5)
        eq(c.mset({k1: b"v1", k2: "v2"}).wait(), True)
        eq(c.mget([k1, k2, p + b"missing"]).wait(), [b"v1", b"v2", None])
        eq(c.mget(k1, k2).wait(), [b"v1", b"v2"])
        eq(c.append(k1, b"xyz").wait(), 5)
        eq(c.strlen(k1).wait(), 5)
        eq(c.getrange(k1, 1, 2).wait(), b"1x")
        eq(c.setrange(k1, 1, b"Z").wait(), 5)
        eq(c.get(k1).wait(), b"vZxyz")
        eq(c.getdel(k2).wait(), b"v2")
        eq(c.exists(k2).wait(), 0)
        eq(c.getex(k1, ex=100).wait(), b"vZxyz")
        t = c.ttl(k1).wait()
        ok(0 < t <= 100, t)
        eq(c.getex(k1, persist=True).wait(), b"vZxyz")
        eq(c.ttl(k1).wait(), -1)
        eq(c.getex(k1, px=50000).wait(), b"vZxyz")
        ok(0 < c.pttl(k1).wait() <= 50000)
        eq(c.setex(k3, 100, b"x").wait(), True)
        eq(c.psetex(k4, 100000, 1.25).wait(), True)
        eq(c.get(k4).wait(), b"1.25")
        eq(c.setnx(k3, b"y").wait(), False)
        eq(c.setnx(p + b"k5", b"y").wait(), True)
    _each(run)


def test_int_values_of_any_size():
    # set(k, 10**5000): CPython's str() refuses ints past 4300 digits; the encoder sends them all the same
    def run(c, p, proto):
        eq(c.set(p + b"big", 10 ** 5000).wait(), True)
        eq(c.get(p + b"big").wait(), b"1" + b"0" * 5000)
        eq(c.set(p + b"big", -(10 ** 5000 - 7)).wait(), True)
        eq(c.strlen(p + b"big").wait(), 5001)
        eq(c.get(p + b"big").wait(), b"-" + b"9" * 4999 + b"3")
        eq(c.set(p + b"big", 10 ** 8000 + 1).wait(), True)  # (CPython: chunks of 4000 digits, zeros kept)
        eq(c.get(p + b"big").wait(), b"1" + b"0" * 7999 + b"1")
        eq(c.incrby(p + b"n", 2 ** 62).wait(), 2 ** 62)  # (64-bit ints stay on the encoder's own digits)
    _each(run)


def test_keys():
    def run(c, p, proto):
        k1, k2, k3 = p + b"k1", p + b"k2", p + b"k3"
        with c.pipeline():
            c.set(k1, b"1")
            c.set(k2, b"2")
            f = c.exists(k1, k2, k3)
        eq(f.wait(), 2)
        f = c.expire(k1, 100)
        eq(f.wait(), True)
        eq(c.expire(k3, 100).wait(), False)
        ok(0 < c.ttl(k1).wait() <= 100)
        eq(c.pexpire(k2, 90000).wait(), True)
        ok(0 < c.pttl(k2).wait() <= 90000)
        eq(c.persist(k2).wait(), True)
        eq(c.persist(k2).wait(), False)
        now = c.time().wait()[0]
        eq(c.expireat(k2, now + 100).wait(), True)
        ok(90 < c.ttl(k2).wait() <= 100)
        eq(c.pexpireat(k2, (now + 200) * 1000).wait(), True)
        ok(190 < c.ttl(k2).wait() <= 200)
        eq(c.ttl(k3).wait(), -2)
        eq(c.type(k1).wait(), b"string")
        eq(c.type(k3).wait(), b"none")
        eq(c.rename(k1, k3).wait(), True)
        eq(c.exists(k1).wait(), 0)
        eq(c.delete(k2, k3, p + b"nothing").wait(), 2)
        eq(c.unlink(k2).wait(), 0)
        # scan: (int cursor, list) until the cursor is 0
        names = [p + b"s:" + str(i).encode() for i in range(7)]
        eq(c.mset(dict((n, 1) for n in names)).wait(), True)
        c.hset(p + b"h", b"f", b"v")
        got = []
        cursor = None
        while cursor != 0:
            cursor, keys = c.scan(cursor or 0, match=p + b"s:*", count=3).wait()
            eq(type(cursor), int)
            got.extend(keys)
        eq(set(got), set(names))
        eq(set(c.scan_iter(match=p + b"*", count=2, _type=b"hash")), {p + b"h"})
        eq(set(c.scan_iter(match=p + b"s:*")), set(names))
    _each(run)


def test_expire_flags():
    def run(c, p, proto):
        k = p + b"k"
        c.set(k, b"v")
        if _version(c) < 7:
            raises(ReplyError, c.expire(k, 100, nx=True).wait)  # sent: the server's error, connection fine
            eq(c.ping().wait(), True)
            skip("expire flags need Redis 7")
        eq(c.expire(k, 100, xx=True).wait(), False)
        eq(c.expire(k, 100, nx=True).wait(), True)
        eq(c.expire(k, 200, nx=True).wait(), False)
        eq(c.expire(k, 50, gt=True).wait(), False)
        eq(c.expire(k, 200, gt=True).wait(), True)
        eq(c.pexpire(k, 100000, lt=True).wait(), True)
        eq(c.expire(k, 300, xx=True, gt=True).wait(), True)
    _each(run)


def test_hashes():
    def run(c, p, proto):
        k = p + b"h"
        eq(c.hset(k, b"f1", b"v1").wait(), 1)
        eq(c.hset(k, mapping={"f2": b"v2", "f3": 3}).wait(), 2)
        eq(c.hset(k, b"f1", b"x", mapping={b"f4": 2.5}).wait(), 1)
        eq(c.hget(k, b"f1").wait(), b"x")
        eq(c.hget(k, b"nope").wait(), None)
        eq(c.hmget(k, [b"f1", b"f2", b"nope"]).wait(), [b"x", b"v2", None])
        eq(c.hmget(k, b"f3", b"f4").wait(), [b"3", b"2.5"])
        d = c.hgetall(k).wait()
        eq(type(d), dict)
        eq(d, {b"f1": b"x", b"f2": b"v2", b"f3": b"3", b"f4": b"2.5"})
        eq(c.hgetall(p + b"missing").wait(), {})
        eq(c.hdel(k, b"f4", b"nope").wait(), 1)
        eq(c.hincrby(k, b"n", 3).wait(), 3)
        eq(c.hincrby(k, b"n").wait(), 4)
        v = c.hincrbyfloat(k, b"x", 1.5).wait()
        eq(type(v), float)
        eq(v, 1.5)
        eq(c.hexists(k, b"f1").wait(), True)
        eq(c.hexists(k, b"nope").wait(), False)
        eq(c.hlen(k).wait(), 5)
        eq(sorted(c.hkeys(k).wait()), [b"f1", b"f2", b"f3", b"n", b"x"])
        eq(sorted(c.hvals(k).wait()), [b"1.5", b"3", b"4", b"v2", b"x"])
    _each(run)


def test_lists():
    def run(c, p, proto):
        k, e = p + b"l", p + b"empty"
        eq(c.rpush(k, b"a", b"b", b"c").wait(), 3)
        eq(c.lpush(k, b"z").wait(), 4)
        eq(c.lrange(k, 0, -1).wait(), [b"z", b"a", b"b", b"c"])
        eq(c.llen(k).wait(), 4)
        eq(c.lindex(k, 1).wait(), b"a")
        eq(c.lindex(k, 99).wait(), None)
        eq(c.ltrim(k, 0, 2).wait(), True)
        eq(c.lpop(k).wait(), b"z")
        eq(c.rpop(k).wait(), b"b")
        eq(c.rpush(k, 1, 2, 3, 4).wait(), 5)
        eq(c.lpop(k, 2).wait(), [b"a", b"1"])
        eq(c.rpop(k, 5).wait(), [b"4", b"3", b"2"])
        eq(c.lpop(e).wait(), None)
        eq(c.lpop(e, 2).wait(), None)
        # blocking pops with data available: (key, value) tuples, like redis-py
        c.rpush(k, b"x", b"y")
        eq(c.blpop([e, k], 1).wait(), (k, b"x"))
        eq(c.brpop(k, 1).wait(), (k, b"y"))
        c.rpush(k, b"w")
        eq(c.brpop((e, k), 0).wait(), (k, b"w"))
        eq(c.blpop(e, 0.1).wait(), None)
    _each(run)


def test_blpop_server_timeout_composes_with_client_deadline():
    # client deadline 300 ms, server timeout 1 s: the reply (nil) comes after ~1 s and is not a TimeoutError;
    # a command pipelined behind the BLPOP inherits the allowance.
    def run(c, p, proto):
        k = p + b"never"
        t0 = now_ms()
        f = c.blpop(k, 1)
        f2 = c.ping()
        eq(f.wait(), None)
        dt = since(t0)
        ok(900 <= dt < 2500, dt)
        eq(f2.wait(), True)
        # the allowance does not leak: an ordinary command still has its 300 ms deadline afterwards
        eq(c.blpop(k, 0.2).wait(), None)
        f = c.echo(b"still fine")
        eq((c._pending, c._allow[c._head]), (1, 0))
        eq(f.wait(), b"still fine")
    _each(run, tmo=300)


def test_blpop_value_pushed_by_second_connection():
    def run(c, p, proto):
        k = p + b"q"
        other = handler(proto).connect()
        f = c.blpop(k, 0)  # 0: block forever, no client deadline for this reply
        eq(c._remaining(c._head), -1)
        eq(other.rpush(k, b"v1").wait(), 1)
        eq(f.wait(), (k, b"v1"))
        other.close()
        try:
            import _thread
        except ImportError:
            return

        done = []

        def pusher():
            try:
                sleep_ms(600)  # twice the client deadline
                o = handler(proto).connect()
                o.rpush(k, b"late").wait()
                o.close()
                done.append(True)
            except Exception as e:  # noqa
                done.append(e)

        t0 = now_ms()
        f = c.blpop(k, 0)
        _thread.start_new_thread(pusher, ())
        eq(f.wait(), (k, b"late"))
        ok(since(t0) >= 500)
        for _ in range(100):
            if done:
                break
            sleep_ms(10)
        eq(done, [True])
        eq(c.ping().wait(), True)
    _each(run, tmo=300)


def test_sets():
    def run(c, p, proto):
        k = p + b"s"
        eq(c.sadd(k, b"a", b"b", b"c").wait(), 3)
        eq(c.sadd(k, b"a").wait(), 0)
        m = c.smembers(k).wait()
        eq(type(m), set)
        eq(m, {b"a", b"b", b"c"})
        eq(c.smembers(p + b"none").wait(), set())
        eq(c.sismember(k, b"a").wait(), True)
        eq(c.sismember(k, b"x").wait(), False)
        eq(c.srem(k, b"a", b"x").wait(), 1)
        eq(c.scard(k).wait(), 2)
    _each(run)


def test_sorted_sets():
    def run(c, p, proto):
        k = p + b"z"
        eq(c.zadd(k, {b"a": 1, b"b": 2.5, b"c": 3}).wait(), 3)
        eq(c.zadd(k, {b"a": 5}, nx=True).wait(), 0)
        eq(c.zadd(k, {b"a": 5}, xx=True, ch=True).wait(), 1)
        v = c.zadd(k, {b"d": 1}, incr=True).wait()
        eq(type(v), float)
        eq(v, 1.0)
        eq(c.zadd(k, {b"d": 1}, nx=True, incr=True).wait(), None)
        eq(c.zadd(k, {b"b": 1}, gt=True, ch=True).wait(), 0)
        eq(c.zrange(k, 0, -1).wait(), [b"d", b"b", b"c", b"a"])
        s = c.zrange(k, 0, -1, withscores=True).wait()
        eq(s, [(b"d", 1.0), (b"b", 2.5), (b"c", 3.0), (b"a", 5.0)])
        eq(type(s[0]), tuple)
        eq(type(s[0][1]), float)
        eq(c.zrange(k, 0, 1, desc=True, withscores=True).wait(), [(b"a", 5.0), (b"c", 3.0)])
        eq(c.zrange(k, 2, 4, byscore=True).wait(), [b"b", b"c"])
        eq(c.zrange(k, 4, 2, desc=True, byscore=True).wait(), [b"c", b"b"])
        eq(c.zrange(k, b"-inf", b"+inf", byscore=True, offset=1, num=2).wait(), [b"b", b"c"])
        v = c.zscore(k, b"b").wait()
        eq(type(v), float)
        eq(v, 2.5)
        eq(c.zscore(k, b"nope").wait(), None)
        v = c.zincrby(k, 2, b"b").wait()
        eq(type(v), float)
        eq(v, 4.5)
        eq(c.zrem(k, b"a", b"d", b"nope").wait(), 2)
        eq(c.zcard(k).wait(), 2)
    _each(run)


def test_streams():
    def run(c, p, proto):
        k = p + b"x"
        eq(c.xadd(k, {b"t": 1, b"h": "x"}, id=b"1-1").wait(), b"1-1")
        i2 = c.xadd(k, {b"t": 2.5}).wait()
        eq(type(i2), bytes)
        ok(b"-" in i2)
        eq(c.xlen(k).wait(), 2)
        r = c.xrange(k).wait()
        eq(r, [(b"1-1", {b"t": b"1", b"h": b"x"}), (i2, {b"t": b"2.5"})])
        eq(type(r[0]), tuple)
        eq(c.xrange(k, count=1).wait(), [(b"1-1", {b"t": b"1", b"h": b"x"})])
        eq(c.xrange(k, min=b"2").wait(), [(i2, {b"t": b"2.5"})])
        eq(c.xrevrange(k, count=1).wait(), [(i2, {b"t": b"2.5"})])
        eq(c.xrange(p + b"none").wait(), [])
        eq(c.xtrim(k, maxlen=1, approximate=False).wait(), 1)
        eq(c.xlen(k).wait(), 1)
        eq(c.xadd(p + b"none", {b"f": 1}, nomkstream=True).wait(), None)
        eq(c.exists(p + b"none").wait(), 0)
        # maxlen trimming on add
        m = p + b"m"
        with c.pipeline():
            fs = [c.xadd(m, {b"i": i}, maxlen=5, approximate=False) for i in range(12)]
        for f in fs:
            f.wait()
        eq(c.xlen(m).wait(), 5)
        eq([e[1][b"i"] for e in c.xrange(m).wait()], [b"7", b"8", b"9", b"10", b"11"])
        for i in range(5):
            c.xadd(m, {b"i": i}, maxlen=3)  # approximate (~): whole nodes only, so nothing trimmed yet
        ok(c.xlen(m).wait() >= 3)
        eq(c.xtrim(m, maxlen=2, approximate=True, limit=10).wait(), 0)
        eq(c.xadd(m, {b"i": 0}, id=b"99999999999999-1", minid=b"99999999999999", approximate=False).wait(),
           b"99999999999999-1")
        eq(c.xlen(m).wait(), 1)
        eq(c.xtrim(m, minid=b"99999999999999-2", approximate=False).wait(), 1)
    _each(run)


def test_server():
    def run(c, p, proto):
        eq(c.ping().wait(), True)
        eq(c.echo(b"hi").wait(), b"hi")
        s, us = c.time().wait()
        eq((type(s), type(us)), (int, int))
        ok(s > 1600000000 and 0 <= us < 1000000)
        eq(type(c.dbsize().wait()), int)
        ok(b"redis_version:" in c.info().wait())
        ok(b"# Server" in c.info("server").wait())
        for _ in range(200):  # BGSAVE while one runs is an error even with SCHEDULE
            if b"rdb_bgsave_in_progress:0" in c.info("persistence").wait():
                break
            sleep_ms(10)
        eq(c.bgsave().wait(), True)
        # select() switches the shared connection; handler.select(db) is the persistent way
        k = p + b"db15"
        eq(c.select(15).wait(), True)
        c.set(k, b"x")
        eq(c.flushdb().wait(), True)
        eq(c.dbsize().wait(), 0)
        c.set(k, b"y")
        eq(c.flushdb(asynchronous=True).wait(), True)
        eq(c.exists(k).wait(), 0)
        c.set(k, b"z")
        eq(c.select(0).wait(), True)
        eq(c.exists(k).wait(), 0)
        c.select(15)
        eq(c.delete(k).wait(), 1)
        eq(c.select(0).wait(), True)
    _each(run)


def test_bad_arguments_send_nothing():
    class Obj:
        pass

    def run(c, p, proto):
        k = p + b"bad"
        type_errors = (
            (c.hset, k, b"f", None), (c.mget, [k, None]), (c.zadd, k, {b"m": True}), (c.lpush, k, [1, 2]),
            (c.mset, [(k, 1)]), (c.expire, k, 1.5), (c.blpop, k, "1"), (c.delete, Obj()), (c.xadd, k, {b"f": None}),
            (c.incrby, k, True), (c.incrbyfloat, k, "1"), (c.hmget, k, [b"a", 2.5, None]), (c.sadd, k, b"a", False),
            (c.echo, None), (c.select, "1"), (c.scan, 0, None, 2.5), (c.zrange, k, None, 1), (c.xrange, k, None),
            (c.getex, k, 1.5), (c.lrange, k, b"0", -1), (c.rpush, k, b"ok", {b"x": 1}), (c.xadd, k, [b"f", 1]),
        )
        value_errors = (
            (c.getex, k, 1, 1), (c.zadd, k, {}), (c.xadd, k, {}), (c.hset, k), (c.delete,), (c.exists,),
            (c.mset, {}), (c.lpush, k), (c.blpop, k, -1), (c.mget, []), (c.xtrim, k),
            (c.xadd, k, {b"f": 1}, "*", 1, True, False, b"0"), (c.zrange, k, 0, 1, False, False, True, True),
            (c.zrange, k, 0, 1, False, False, False, False, 1), (c.zrange, k, 0, 1, False, True, False, True),
            (c.xtrim, k, -1), (c.xtrim, k, 1, False, None, 5),
        )
        for t in type_errors:
            raises(TypeError, t[0], *t[1:])
            eq((c._pending, c._encoder.n), (0, 0), repr(t))
        for t in value_errors:
            raises(ValueError, t[0], *t[1:])
            eq((c._pending, c._encoder.n), (0, 0), repr(t))
        raises(ValueError, c.getex, k, ex=1, persist=True)
        raises(ValueError, c.expire, k, 1, nx=True, gt=True)
        raises(ValueError, c.expire, k, 1, gt=True, lt=True)
        raises(ValueError, c.zadd, k, {b"a": 1}, nx=True, xx=True)
        raises(ValueError, c.zadd, k, {b"a": 1}, nx=True, lt=True)
        raises(ValueError, c.zadd, k, {b"a": 1, b"b": 2}, incr=True)
        raises(ValueError, c.xadd, k, {b"f": 1}, limit=5, approximate=False, maxlen=3)
        eq((c._pending, c._encoder.n), (0, 0))
        eq(c.ping().wait(), True)
        eq(c.exists(k).wait(), 0)  # nothing reached the server
        eq(c._pending, 0)
    _each(run)


def test_pipelined_catalogue_and_decode_responses():
    for proto in (3, 2):
        h = handler(proto).decode_responses()
        c = h.connect()
        p = PRE + b"d:"
        with c.pipeline():
            f1 = c.hset(p + b"h", mapping={"a": "1", "b": "2"})
            f2 = c.hgetall(p + b"h")
            f3 = c.ping()
            f4 = c.time()
            f5 = c.scan(0, match=p + b"*", count=1000)
            f6 = c.zadd(p + b"z", {"m": 2})
            f7 = c.zrange(p + b"z", 0, -1, withscores=True)
            f8 = c.xadd(p + b"x", {"f": "v"}, id="5-5")
            f9 = c.xrange(p + b"x")
        eq(f1.wait(), 2)
        eq(f2.wait(), {"a": "1", "b": "2"})
        eq(f3.wait(), True)
        eq(type(f4.wait()[0]), int)
        cur, keys = f5.wait()
        eq(type(cur), int)
        eq(f6.wait(), 1)
        eq(f7.wait(), [("m", 2.0)])
        eq(f8.wait(), "5-5")
        eq(f9.wait(), [("5-5", {"f": "v"})])
        c.close()
        _clean(h, p)
