# What the server under test offers, probed through the library: one test per row of the README's compatibility
# table, each printing its cell as a line "COMPAT <row>: <cell>". tools/compat.py runs this module against every
# server of the matrix (Redis 6.2, Redis 7, Valkey 8.1) on CPython and the unix port and writes the table from those
# lines; tests_host/test_server_matrix.py checks the README against them. A feature the server has must work through
# the library; one it lacks must be refused cleanly (a ReplyError, the connection kept): a library fault fails the
# test, it never turns into a "no" in the table.
import cfg
from tinytest import eq, ok, raises
from devkit import handler, admin, has_command
import microredis as mr

P = b"t_compat:"
USER = b"t_compat_user"
NO = "no (refused: ReplyError)"


def report(row, cell):
    print("COMPAT %s: %s" % (row, cell))


def _info_field(info, name):
    i = info.find(b"\n" + name + b":")
    if i < 0:
        return None
    i += len(name) + 2
    return info[i:info.find(b"\r", i)]


def _redis_major(c):
    # the Redis version the server claims to be compatible with (Valkey 8.1 says 7.2.4)
    return int(_info_field(c.info(b"server").wait(), b"redis_version").split(b".")[0])


def test_server():
    c = admin()
    info = b"\n" + c.info(b"server").wait()
    c.close()
    valkey = _info_field(info, b"valkey_version")
    if valkey is not None:
        report("server", "Valkey " + valkey.decode())
    else:
        report("server", "Redis " + _info_field(info, b"redis_version").decode())


def _handshake(proto):
    h = handler(proto)
    c = h.connect()
    eq(c.set(P + b"hs", b"v").wait(), True)
    eq(c.get(P + b"hs").wait(), b"v")
    eq(c.hset(P + b"hs:h", mapping={b"f": b"1"}).wait(), 1)
    raw = c.command(b"HGETALL", P + b"hs:h").wait()  # as read: RESP3 sends a map, RESP2 a flat array
    eq(raw, {b"f": b"1"} if proto == 3 else [b"f", b"1"])
    c.command(b"DEL", P + b"hs", P + b"hs:h").wait()
    c.close()


def test_resp3_handshake():
    _handshake(3)
    report("resp3", "yes")


def test_resp2_handshake():
    _handshake(2)
    report("resp2", "yes")


def test_acl_user():
    a = admin()
    eq(a.command(b"ACL", b"SETUSER", USER, b"reset", b"on", b">pw", b"~" + P + b"*", b"+@all").wait(), b"OK")
    try:
        for proto in (3, 2):
            c = handler(proto).auth(mr.Credentials.acl(USER, b"pw")).connect()
            eq(c.command(b"ACL", b"WHOAMI").wait(), USER)
            c.close()
        raises(mr.AuthenticationError, handler().auth(mr.Credentials.acl(USER, b"wrong")).connect)
    finally:
        a.command(b"ACL", b"DELUSER", USER).wait()
        a.close()
    report("acl", "yes")


def test_pubsub():
    pub = admin()
    for proto in (3, 2):
        ch = P + b"ch%d" % proto
        c = handler(proto).connect()
        sub = c.subscribe(ch)
        sub.psubscribe(P + b"pat%d*" % proto)
        eq(pub.publish(ch, b"m").wait(), 1)
        eq(sub.receive(2000).payload, b"m")
        eq(pub.publish(P + b"pat%dx" % proto, b"p").wait(), 1)
        m = sub.receive(2000)
        eq((m.pattern, m.payload), (P + b"pat%d*" % proto, b"p"))
        sub.close()
        c.close()
    pub.close()
    report("pubsub", "yes")


def test_sharded_pubsub():
    c = handler().connect()
    if has_command(b"SSUBSCRIBE"):
        sub = c.ssubscribe(P + b"shard")
        pub = admin()
        eq(pub.command(b"SPUBLISH", P + b"shard", b"s").wait(), 1)
        pub.close()
        eq(sub.receive(2000).payload, b"s")
        sub.close()
        cell = "yes"
    else:
        raises(mr.ReplyError, c.ssubscribe, P + b"shard")
        cell = NO
    eq(c.command(b"PING").wait(), b"PONG")  # the connection is kept either way
    c.close()
    report("sharded_pubsub", cell)


def test_streams_outbox_and_inbox():
    key = P + b"stream"
    a = admin(key)
    box = mr.Outbox(handler(), key)
    for i in range(3):
        box.add({b"i": i})
    eq(box.pump(), 3)
    eq(len(a.command(b"XRANGE", key, b"-", b"+").wait()), 3)
    inbox = mr.Inbox(handler(), key, b"g", b"dev")  # the group is made at 0: the three readings arrive
    got = []
    for _ in range(3):
        e = inbox.next(1000)
        got.append(e.fields[b"i"])
        inbox.done(e)
    eq(got, [b"0", b"1", b"2"])
    eq(a.command(b"XPENDING", key, b"g").wait()[0], 0)
    a.command(b"DEL", key).wait()
    a.close()
    report("streams", "yes")


def test_client_side_cache():
    from microredis.cache import Cache

    key = P + b"cached"
    a = admin()
    eq(a.set(key, b"1").wait(), True)
    c = handler().connect()
    cache = Cache(c, prefixes=(P,))
    eq(c.get(key).wait(), b"1")  # a miss
    eq(c.get(key).wait(), b"1")  # a hit
    eq(cache.hits, 1)
    eq(a.set(key, b"2").wait(), True)  # the server invalidates the tracked key
    n = 0
    while c.get(key).wait() != b"2" and n < 100:
        n += 1
    ok(cache.invalidations >= 1, "no invalidation came")
    cache.close()
    c.close()
    a.command(b"DEL", key).wait()
    a.close()
    report("client_cache", "yes")


def test_transactions():
    key = P + b"tx"
    c = handler().connect()
    c.delete(key).wait()
    c.watch(key)
    with c.transaction() as t:
        n = t.incr(key)
        t.expire(key, 60)
    eq(n.wait(), 1)
    c.watch(key)
    admin().set(key, b"10").wait()  # a change under WATCH: EXEC does nothing
    with c.transaction() as t:
        n = t.incr(key)
    raises(mr.RedisError, n.wait)
    eq(c.get(key).wait(), b"10")
    c.delete(key).wait()
    c.close()
    report("transactions", "yes")


def test_scripts():
    c = handler().connect()
    bump = c.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    c.delete(P + b"sc").wait()
    eq(bump.run(keys=[P + b"sc"], args=[5]).wait(), 5)
    eq(c.command(b"SCRIPT", b"FLUSH").wait(), b"OK")
    eq(bump.run(keys=[P + b"sc"], args=[1]).wait(), 6)  # NOSCRIPT: sent again as EVAL
    c.delete(P + b"sc").wait()
    c.close()
    report("scripts", "yes")


FUNCTIONS = b"""#!lua name=t_compat
redis.register_function('t_compat_echo', function(keys, args) return args[1] end)
redis.register_function{function_name='t_compat_get', callback=function(keys, args) return redis.call('GET', keys[1])
                        end, flags={'no-writes'}}
"""


def test_functions():
    c = handler().connect()
    if has_command(b"FCALL"):
        eq(c.command(b"FUNCTION", b"LOAD", b"REPLACE", FUNCTIONS).wait(), b"t_compat")
        eq(c.fcall("t_compat_echo", 0, b"x").wait(), b"x")
        c.set(P + b"fn", b"v").wait()
        eq(c.fcall_ro("t_compat_get", 1, P + b"fn").wait(), b"v")
        c.delete(P + b"fn").wait()
        eq(c.command(b"FUNCTION", b"DELETE", b"t_compat").wait(), b"OK")
        cell = "yes"
    else:
        raises(mr.ReplyError, c.fcall("t_compat_echo", 0, b"x").wait)
        cell = NO
    eq(c.command(b"PING").wait(), b"PONG")
    c.close()
    report("functions", cell)


def test_expire_flags():
    key = P + b"ex"
    c = handler().connect()
    c.set(key, b"v").wait()
    if _redis_major(c) >= 7:  # no command to ask: EXPIRE has had its flags since 7.0
        eq(c.expire(key, 100, nx=True).wait(), True)
        eq(c.expire(key, 50, gt=True).wait(), False)
        cell = "yes"
    else:
        raises(mr.ReplyError, c.expire(key, 100, nx=True).wait)
        cell = NO
    eq(c.command(b"PING").wait(), b"PONG")
    c.delete(key).wait()
    c.close()
    report("expire_flags", cell)
