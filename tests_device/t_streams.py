# Stream reads and consumer groups (commands.StreamGroupCommands, xgroups.py) against a real redis-server, under RESP3
# and RESP2: redis-py's names, arguments and RESP2 reply shapes on both protocols, options refused before anything is
# sent, BLOCK composed with the client deadline, Redis 7's XAUTOCLAIM reply and ENTRIESREAD where the server has them.
# Plain MicroPython; runs under CPython too.
from microredis import ReplyError
from tinytest import eq, ok, raises, skip, now_ms, since, sleep_ms, IS_MICROPYTHON
from devkit import handler, clean_keys as _clean, each_protocol, server_version as _version

PRE = b"t_streams:"


def _each(fn, tmo=2000):
    each_protocol(fn, PRE, tmo)


def test_xread():
    def run(c, p, proto):
        s, t = p + b"s", p + b"t"
        c.xadd(s, {b"a": 1}, id=b"1-0")
        c.xadd(s, {b"b": 2, b"c": b"x"}, id=b"2-0")
        c.xadd(t, {b"z": 9}, id=b"5-0")
        r = c.xread({s: 0}).wait()
        eq(r, [[s, [(b"1-0", {b"a": b"1"}), (b"2-0", {b"b": b"2", b"c": b"x"})]]])
        eq((type(r[0]), type(r[0][1][0])), (list, tuple))
        eq(c.xread({s: b"1-0"}).wait(), [[s, [(b"2-0", {b"b": b"2", b"c": b"x"})]]])
        eq(c.xread({s: "0-0"}, count=1).wait(), [[s, [(b"1-0", {b"a": b"1"})]]])
        # two streams: RESP3 sends a map, whose order MicroPython's dict does not keep
        r = c.xread({s: b"1-0", t: 0, p + b"none": 0}, count=5).wait()
        eq(sorted(r), [[s, [(b"2-0", {b"b": b"2", b"c": b"x"})]], [t, [(b"5-0", {b"z": b"9"})]]])
        eq(c.xread({s: b"$"}).wait(), [])  # nothing new: nil -> []
        eq(c.xread({s: b"2-0"}, block=50).wait(), [])  # BLOCK ran out
        eq(c.xread({p + b"none": 0}).wait(), [])
    _each(run)


def test_groups_read_ack_pending():
    def run(c, p, proto):
        s = p + b"s"
        eq(c.xgroup_create(s, b"g", id=b"0", mkstream=True).wait(), True)
        e = raises(ReplyError, c.xgroup_create(s, b"g").wait)
        eq(e.code, "BUSYGROUP")
        raises(ReplyError, c.xgroup_create(p + b"none", b"g").wait)  # no stream, no mkstream
        eq(c.xgroup_createconsumer(s, b"g", b"c0").wait(), 1)
        eq(c.xgroup_createconsumer(s, b"g", b"c0").wait(), 0)
        eq(c.xreadgroup(b"g", b"c1", {s: b">"}).wait(), [])  # an empty stream
        for i in range(1, 4):
            c.xadd(s, {b"i": i}, id=b"%d-0" % i)
        eq(c.xreadgroup(b"g", b"c1", {s: b">"}, count=2).wait(),
           [[s, [(b"1-0", {b"i": b"1"}), (b"2-0", {b"i": b"2"})]]])
        eq(c.xreadgroup(b"g", b"c2", {s: b">"}).wait(), [[s, [(b"3-0", {b"i": b"3"})]]])
        eq(c.xreadgroup(b"g", b"c1", {s: b">"}, block=30).wait(), [])  # nothing new before BLOCK ran out
        # ID 0: this consumer's pending entries, read again
        eq(c.xreadgroup(b"g", b"c1", {s: 0}).wait(), [[s, [(b"1-0", {b"i": b"1"}), (b"2-0", {b"i": b"2"})]]])
        eq(c.xpending(s, b"g").wait(), {"pending": 3, "min": b"1-0", "max": b"3-0",
                                         "consumers": [{"name": b"c1", "pending": 2}, {"name": b"c2", "pending": 1}]})
        r = c.xpending_range(s, b"g", b"-", b"+", 10).wait()
        eq([(x["message_id"], x["consumer"], x["times_delivered"]) for x in r],
           [(b"1-0", b"c1", 2), (b"2-0", b"c1", 2), (b"3-0", b"c2", 1)])
        ok(all(type(x["time_since_delivered"]) is int and x["time_since_delivered"] >= 0 for x in r), r)
        eq(sorted(r[0]), ["consumer", "message_id", "time_since_delivered", "times_delivered"])
        eq([x["message_id"] for x in c.xpending_range(s, b"g", b"-", b"+", 10, consumername=b"c2").wait()],
           [b"3-0"])
        eq(c.xpending_range(s, b"g", b"-", b"+", 10, idle=3600000).wait(), [])
        eq(len(c.xpending_range(s, b"g", b"2", b"+", 1).wait()), 1)
        eq(c.xack(s, b"g", b"1-0", b"2-0", b"9-0").wait(), 2)
        eq(c.xack(s, b"g", b"1-0").wait(), 0)
        eq(c.xreadgroup(b"g", b"c1", {s: 0}).wait(), [[s, []]])  # nothing pending for c1
        # NOACK: delivered, never pending
        c.xadd(s, {b"i": 4}, id=b"4-0")
        eq(c.xreadgroup(b"g", b"c1", {s: b">"}, noack=True).wait(), [[s, [(b"4-0", {b"i": b"4"})]]])
        eq(c.xpending(s, b"g").wait()["pending"], 1)
        # an entry deleted while pending: (id, {}), like redis-py
        eq(c.xdel(s, b"3-0", b"8-0").wait(), 1)
        eq(c.xreadgroup(b"g", b"c2", {s: b"0"}).wait(), [[s, [(b"3-0", {})]]])
        eq(c.xpending(p + b"s", b"g").wait()["consumers"], [{"name": b"c2", "pending": 1}])
        eq(c.xgroup_delconsumer(s, b"g", b"c2").wait(), 1)
        eq(c.xpending(s, b"g").wait(), {"pending": 0, "min": None, "max": None, "consumers": []})
        eq(c.xgroup_setid(s, b"g", b"0").wait(), True)
        eq(len(c.xreadgroup(b"g", b"c1", {s: b">"}).wait()[0][1]), 3)  # 1-0, 2-0, 4-0 again
        eq(c.xgroup_destroy(s, b"g").wait(), True)
        eq(c.xgroup_destroy(s, b"g").wait(), False)
        raises(ReplyError, c.xreadgroup(b"g", b"c1", {s: b">"}).wait)  # NOGROUP
        eq(c.ping().wait(), True)
    _each(run)


def test_claims():
    def run(c, p, proto):
        s = p + b"s"
        v = _version(c)
        c.xgroup_create(s, b"g", id=b"0", mkstream=True)
        for i in range(1, 4):
            c.xadd(s, {b"i": i}, id=b"%d-0" % i)
        c.xreadgroup(b"g", b"c1", {s: b">"}).wait()
        eq(c.xclaim(s, b"g", b"c2", 0, [b"1-0"]).wait(), [(b"1-0", {b"i": b"1"})])
        eq(c.xclaim(s, b"g", b"c2", 3600000, (b"2-0",)).wait(), [])  # not idle that long
        eq(c.xclaim(s, b"g", b"c2", 0, [b"2-0"], justid=True).wait(), [b"2-0"])
        eq(c.xclaim(s, b"g", b"c3", 0, [b"1-0"], idle=5000, retrycount=7, justid=True).wait(), [b"1-0"])
        r = c.xpending_range(s, b"g", b"1-0", b"1-0", 1).wait()[0]
        eq((r["consumer"], r["times_delivered"]), (b"c3", 7))
        ok(r["time_since_delivered"] >= 5000, r)
        eq(c.xclaim(s, b"g", b"c3", 0, [b"1-0"], time=0, force=True).wait(), [(b"1-0", {b"i": b"1"})])
        # XAUTOCLAIM: [next start ID, entries] on Redis 6.2, and the deleted IDs on Redis 7
        r = c.xautoclaim(s, b"g", b"c4", 0, count=2).wait()
        eq(r[:2], [b"3-0", [(b"1-0", {b"i": b"1"}), (b"2-0", {b"i": b"2"})]])
        eq(len(r), 3 if v >= 7 else 2)
        eq(c.xautoclaim(s, b"g", b"c4", 0, start_id=r[0], justid=True).wait(), [b"3-0"])
        c.xdel(s, b"2-0")
        r = c.xautoclaim(s, b"g", b"c5", 0).wait()
        if v >= 7:  # a deleted entry leaves the pending list and is reported
            eq(r, [b"0-0", [(b"1-0", {b"i": b"1"}), (b"3-0", {b"i": b"3"})], [b"2-0"]])
        else:
            eq(r, [b"0-0", [(b"1-0", {b"i": b"1"}), (None, None), (b"3-0", {b"i": b"3"})]])
            eq(c.xclaim(s, b"g", b"c6", 0, [b"2-0"]).wait(), [(None, None)])
    _each(run)


def test_xinfo():
    def run(c, p, proto):
        s = p + b"s"
        v = _version(c)
        c.xadd(s, {b"a": 1}, id=b"1-0")
        c.xadd(s, {b"b": 2}, id=b"2-0")
        c.xgroup_create(s, b"g", id=b"0")
        c.xreadgroup(b"g", b"c1", {s: b">"}, count=1).wait()
        i = c.xinfo_stream(s).wait()
        eq((i["length"], i["groups"], i["last-generated-id"]), (2, 1, b"2-0"))
        eq((i["first-entry"], i["last-entry"]), ((b"1-0", {b"a": b"1"}), (b"2-0", {b"b": b"2"})))
        ok(all(type(k) is str for k in i), i)
        f = c.xinfo_stream(s, full=True).wait()
        eq(f["entries"], {b"1-0": {b"a": b"1"}, b"2-0": {b"b": b"2"}})
        g = f["groups"][0]
        eq((g["name"], g["pel-count"], [x["name"] for x in g["consumers"]]), (b"g", 1, [b"c1"]))
        eq(g["consumers"][0]["pending"][0][0], b"1-0")
        ok(all(type(k) is str for k in g["consumers"][0]), g)
        gs = c.xinfo_groups(s).wait()
        eq([(x["name"], x["consumers"], x["pending"], x["last-delivered-id"]) for x in gs], [(b"g", 1, 1, b"1-0")])
        cs = c.xinfo_consumers(s, b"g").wait()
        eq([(x["name"], x["pending"]) for x in cs], [(b"c1", 1)])
        ok(type(cs[0]["idle"]) is int, cs)
        eq(c.xdel(s, b"1-0", b"2-0").wait(), 2)
        i = c.xinfo_stream(s).wait()
        eq((i["length"], i["first-entry"], i["last-entry"]), (0, None, None))
        raises(ReplyError, c.xinfo_stream(p + b"none").wait)
        if v >= 7:
            eq((gs[0]["entries-read"], gs[0]["lag"]), (1, 1))
    _each(run)


def test_entries_read_on_redis7():
    # ENTRIESREAD (Redis 7): the group's read counter, which XINFO GROUPS reports with the lag. Redis 6.2 refuses the
    # option: an error reply, and the connection goes on.
    def run(c, p, proto):
        s = p + b"s"
        for i in range(1, 6):
            c.xadd(s, {b"i": i}, id=b"%d-0" % i)
        if _version(c) < 7:
            raises(ReplyError, c.xgroup_create(s, b"g", id=b"2-0", entries_read=2).wait)
            eq(c.ping().wait(), True)
            return
        eq(c.xgroup_create(s, b"g", id=b"2-0", entries_read=2).wait(), True)
        g = c.xinfo_groups(s).wait()[0]
        eq((g["entries-read"], g["lag"]), (2, 3))
        eq(c.xgroup_setid(s, b"g", b"4-0", entries_read=4).wait(), True)
        g = c.xinfo_groups(s).wait()[0]
        eq((g["last-delivered-id"], g["entries-read"], g["lag"]), (b"4-0", 4, 1))
    _each(run)


def test_block_composes_with_client_deadline():
    # client deadline 300 ms, BLOCK 1000: the reply ([]) comes after ~1 s and is not a TimeoutError; a command
    # pipelined behind it inherits the allowance; block=0 has no client deadline and waits for a producer.
    def run(c, p, proto):
        s = p + b"s"
        c.xgroup_create(s, b"g", id=b"$", mkstream=True).wait()
        t0 = now_ms()
        f = c.xreadgroup(b"g", b"c", {s: b">"}, block=1000)
        f2 = c.ping()
        eq(f.wait(), [])
        dt = since(t0)
        ok(900 <= dt < 2500, dt)
        eq(f2.wait(), True)
        t0 = now_ms()
        eq(c.xread({s: b"$"}, block=700).wait(), [])
        ok(600 <= since(t0) < 2500)
        f = c.echo(b"still fine")  # the allowance does not leak
        eq((c._pending, c._allow[c._head]), (1, 0))
        eq(f.wait(), b"still fine")
        f = c.xreadgroup(b"g", b"c", {s: b">"}, block=0)  # for ever: no client deadline
        eq(c._remaining(c._head), -1)
        other = handler(proto).connect()
        sleep_ms(400)  # past the client deadline
        eq(other.xadd(s, {b"cmd": b"on"}, id=b"7-0").wait(), b"7-0")
        eq(f.wait(), [[s, [(b"7-0", {b"cmd": b"on"})]]])
        other.close()
        eq(c.xack(s, b"g", b"7-0").wait(), 1)
    _each(run, tmo=300)


def test_in_a_transaction_and_with_decode_responses():
    for proto in (3, 2):
        h = handler(proto).decode_responses()
        c = h.connect()
        s = PRE + b"d:s"
        try:
            c.xadd(s, {"f": "v"}, id="1-0")
            c.xgroup_create(s, "g", id="0")
            eq(c.xreadgroup("g", "c", {s: ">"}).wait(), [[s.decode(), [("1-0", {"f": "v"})]]])
            eq(c.xpending(s, "g").wait(), {"pending": 1, "min": "1-0", "max": "1-0",
                                            "consumers": [{"name": "c", "pending": 1}]})
            eq(c.xinfo_groups(s).wait()[0]["name"], "g")
            with c.transaction() as t:
                r1 = t.xpending_range(s, "g", "-", "+", 5)
                r2 = t.xack(s, "g", "1-0")
                r3 = t.xinfo_stream(s)
            eq(r1.wait()[0]["message_id"], "1-0")
            eq(r2.wait(), 1)
            eq(r3.wait()["first-entry"], ("1-0", {"f": "v"}))
        finally:
            c.close()
            _clean(h, PRE + b"d:")


def test_bad_arguments_send_nothing():
    class Obj:
        pass

    def run(c, p, proto):
        k = p + b"bad"
        type_errors = (
            (c.xread, [(k, 0)]), (c.xread, {k: None}), (c.xread, {k: 0}, 1.5), (c.xread, {k: 0}, None, "10"),
            (c.xread, {k: 0}, None, True), (c.xreadgroup, b"g", None, {k: b">"}), (c.xreadgroup, b"g", b"c", k),
            (c.xack, k, b"g", Obj()), (c.xdel, k, None), (c.xpending, k, None),
            (c.xpending_range, k, b"g", b"-", b"+", "10"), (c.xpending_range, k, b"g", b"-", b"+", 10, None, 1.0),
            (c.xclaim, k, b"g", b"c", 0, b"1-0"), (c.xclaim, k, b"g", b"c", "0", [b"1-0"]),
            (c.xclaim, k, b"g", b"c", 0, [b"1-0"], 1.5), (c.xclaim, k, b"g", b"c", 0, [None]),
            (c.xautoclaim, k, b"g", b"c", None), (c.xautoclaim, k, b"g", b"c", 0, b"0", "2"),
            (c.xgroup_create, k, b"g", None), (c.xgroup_create, k, b"g", b"$", False, "1"),
            (c.xgroup_setid, k, b"g", b"0", 1.0), (c.xgroup_destroy, k, []), (c.xgroup_createconsumer, k, b"g", Obj()),
            (c.xinfo_stream, Obj()), (c.xinfo_consumers, k, None),
        )
        value_errors = (
            (c.xread, {}), (c.xread, {k: 0}, 0), (c.xread, {k: 0}, None, -1), (c.xreadgroup, b"g", b"c", {}),
            (c.xreadgroup, b"g", b"c", {k: b">"}, 0), (c.xreadgroup, b"g", b"c", {k: b">"}, None, -5),
            (c.xack, k, b"g"), (c.xdel, k), (c.xpending_range, k, b"g", None, b"+", 1),
            (c.xpending_range, k, b"g", b"-", b"+", None), (c.xpending_range, k, b"g", b"-", b"+", -1),
            (c.xpending_range, k, b"g", b"-", b"+", 1, None, -1), (c.xclaim, k, b"g", b"c", -1, [b"1-0"]),
            (c.xclaim, k, b"g", b"c", 0, []), (c.xclaim, k, b"g", b"c", 0, [b"1-0"], None, None, -1),
            (c.xautoclaim, k, b"g", b"c", -1), (c.xautoclaim, k, b"g", b"c", 0, b"0-0", 0),
        )
        for t in type_errors:
            raises(TypeError, t[0], *t[1:])
            eq((c._pending, c._encoder.n), (0, 0), repr(t))
        for t in value_errors:
            raises(ValueError, t[0], *t[1:])
            eq((c._pending, c._encoder.n), (0, 0), repr(t))
        eq(c.ping().wait(), True)
        eq(c.exists(k).wait(), 0)  # nothing reached the server
        eq(c._pending, 0)
    _each(run)


def test_on_the_asyncio_client():
    # the same methods on AsyncClient return awaitables; BLOCK past the client deadline is not a TimeoutError there
    try:
        import asyncio
    except ImportError:
        skip("no asyncio")
    import microredis.aio as aio

    async def main(proto):
        s = PRE + b"a%d:s" % proto
        c = await aio.connect(handler(proto, 300))
        try:
            eq(await c.xgroup_create(s, b"g", id=b"$", mkstream=True), True)
            t0 = now_ms()
            eq(await c.xreadgroup(b"g", b"c", {s: b">"}, block=700), [])
            ok(600 <= since(t0) < 2500)
            eq(await c.xadd(s, {b"cmd": b"on"}, id=b"1-0"), b"1-0")
            eq(await c.xreadgroup(b"g", b"c", {s: b">"}, count=4, block=0), [[s, [(b"1-0", {b"cmd": b"on"})]]])
            eq((await c.xpending(s, b"g"))["pending"], 1)
            eq(await c.xack(s, b"g", b"1-0"), 1)
            eq(await c.delete(s), 1)
        finally:
            await c.aclose()

    for proto in (3, 2):
        if hasattr(asyncio, "new_event_loop") and IS_MICROPYTHON:
            asyncio.new_event_loop()  # (as t_aio.run: no task of an earlier run is left in the queues)
        asyncio.run(main(proto))
