# Inbox (commands from a stream through a consumer group, surviving reboots) against a real redis-server. Plain
# MicroPython; runs under CPython too. File-backed cases write into devkit.tmpdir().
import os

from tinytest import eq, ok, raises, skip, now_ms, since, IS_MICROPYTHON
from devkit import handler, admin, aio_run, aio_wait_for, aio_sleep, tmppath, cleanup
import microredis as mr

P = b"t_inbox:"
G = b"devices"


def fresh(name):
    key = P + name
    c = admin()
    c.command(b"DEL", key, key + b":dead").wait()
    c.close()
    return key


def produce(key, *cmds):
    c = admin()
    ids = [c.command(b"XADD", key, b"*", b"cmd", x).wait() for x in cmds]
    c.close()
    return ids


def pending(key):
    c = admin()
    try:
        return c.command(b"XPENDING", key, G).wait()[0]
    except mr.ReplyError:
        return 0
    finally:
        c.close()


def cmds(box, n, timeout_ms=0, done=True):
    out = []
    for _ in range(n):
        e = box.next(timeout_ms)
        if e is None:
            break
        out.append(e.fields[b"cmd"])
        if done:
            box.done(e)
    return out


def test_commands_arrive_in_order_and_done_acknowledges():
    key = fresh(b"basic")
    produce(key, b"a", b"b")  # before the board's first start: the group is made at 0, so these arrive
    box = mr.Inbox(handler(), key, G, b"dev1")
    produce(key, b"c", b"d", b"e")
    eq(cmds(box, 10), [b"a", b"b", b"c", b"d", b"e"])
    eq(box.next(), None)
    eq(pending(key), 0)
    eq((box.pending, box.redelivered, box.skipped, box.dead, box.last_error), (0, 0, 0, 0, None))
    raises(ValueError, mr.Inbox, handler(), key, G, b"d", None, 0)
    raises(TypeError, mr.Inbox, handler(), None, G, b"d")


def test_next_blocks_up_to_its_timeout_and_wakes_for_a_command():
    key = fresh(b"block")
    box = mr.Inbox(handler(), key, G, b"dev1", block_ms=200)
    t0 = now_ms()
    eq(box.next(450), None)
    el = since(t0)
    ok(400 <= el < 1500, "next(450) took %d ms" % el)
    produce(key, b"x")
    t0 = now_ms()
    e = box.next(2000)
    eq(e.fields[b"cmd"], b"x")
    ok(since(t0) < 1000)
    box.done(e)


def test_an_entry_not_done_comes_again_first_then_goes_to_the_dead_letters():
    key = fresh(b"poison")
    produce(key, b"p1", b"ok")
    box = mr.Inbox(handler(), key, G, b"dev1", max_deliveries=3)
    seen = []
    for _ in range(3):
        e = box.next()
        seen.append((e.fields[b"cmd"], e.deliveries))  # never done: a command that crashes the application
    eq(seen, [(b"p1", 1), (b"p1", 2), (b"p1", 3)])
    eq(box.redelivered, 2)
    e = box.next()  # the fourth time: dead-lettered instead, and the next command comes
    eq(e.fields[b"cmd"], b"ok")
    box.done(e)
    eq(box.dead, 1)
    c = admin()
    dl = c.command(b"XRANGE", key + b":dead", b"-", b"+").wait()
    c.close()
    eq(len(dl), 1)
    f = dl[0][1]
    eq(dict((f[i], f[i + 1]) for i in range(0, len(f), 2))[b"cmd"], b"p1")
    eq(pending(key), 0)


def test_a_restart_reads_its_own_pending_entries_first():
    key = fresh(b"restart")
    produce(key, b"a", b"b", b"c")
    box = mr.Inbox(handler(), key, G, b"dev1", count=4)
    e = box.next()  # reads all three (count 4), hands the first
    box.done(e)
    produce(key, b"d")
    box = mr.Inbox(handler(), key, G, b"dev1")  # a reboot: b and c were read and are pending on the server
    got = []
    for _ in range(3):
        e = box.next()
        got.append((e.fields[b"cmd"], e.deliveries))
        box.done(e)
    eq(got, [(b"b", 2), (b"c", 2), (b"d", 1)])
    eq(box.redelivered, 2)
    eq(pending(key), 0)


def test_a_lost_acknowledgement_is_never_applied_twice():
    key = fresh(b"lostack")
    p = tmppath("inbox", "lostack")
    try:
        produce(key, b"a", b"b")
        box = mr.Inbox(handler(), key, G, b"dev1", path=p)
        e = box.next()
        c = admin()
        c.command(b"CLIENT", b"KILL", b"ID", box._c.command(b"CLIENT", b"ID").wait()).wait()
        c.close()
        box.done(e)  # persisted, then the XACK fails: reported, not raised
        ok(box.last_error is not None)
        eq(pending(key), 2)
        box = mr.Inbox(handler(), key, G, b"dev1", path=p)  # a reboot: a comes again and is skipped
        eq(cmds(box, 5), [b"b"])
        eq((box.skipped, pending(key)), (1, 0))
    finally:
        cleanup(p)


def test_a_torn_write_of_the_applied_id_keeps_the_one_before():
    key = fresh(b"torn")
    p = tmppath("inbox", "torn")
    q = p + "_cut"
    try:
        ids = produce(key, b"a", b"b", b"c")
        box = mr.Inbox(handler(), key, G, b"dev1", path=p)
        for _ in range(2):
            box.done(box.next())
        with open(p, "rb") as f:
            before = f.read()
        box.done(box.next())
        with open(p, "rb") as f:
            after = f.read()
        ok(len(after) > len(before))
        for cut in range(len(before), len(after)):
            with open(q, "wb") as f:
                f.write(after[:cut])
            b = mr.Inbox(handler(), b"t_inbox:none", G, b"dev1", path=q)
            eq(b._applied, ids[1], "cut at %d" % cut)
        cleanup(q)
        with open(q, "wb") as f:
            f.write(after)
        eq(mr.Inbox(handler(), b"t_inbox:none", G, b"dev1", path=q)._applied, ids[2])
    finally:
        cleanup(p)
        cleanup(q)


def test_the_applied_file_stays_small():
    key = fresh(b"small")
    p = tmppath("inbox", "small")
    try:
        produce(key, *[b"%d" % i for i in range(120)])
        box = mr.Inbox(handler(), key, G, b"dev1", path=p, count=16)
        eq(len(cmds(box, 200)), 120)
        ok(os.stat(p)[6] <= 1024)
        last = mr.Inbox(handler(), key, G, b"dev1", path=p)
        eq(cmds(last, 5), [])
    finally:
        cleanup(p)


def test_network_trouble_never_raises():
    h = mr.ConnectionHandler.resp3(("127.0.0.1", 1)).timeout(300)
    box = mr.Inbox(h, b"t_inbox:none", G, b"dev1")
    eq(box.next(), None)
    ok(isinstance(box.last_error, mr.ConnectionError), repr(box.last_error))
    box.done(mr.inbox.Entry(b"1-1", {}, 1) if hasattr(mr, "inbox") else __import__(
        "microredis.inbox", None, None, ["Entry"]).Entry(b"1-1", {}, 1))
    t0 = now_ms()
    eq(box.next(600), None)  # keeps trying (backoff) for the given time
    ok(since(t0) >= 500)


def test_an_authentication_failure_blocks_until_resume():
    key = fresh(b"auth")
    produce(key, b"a")
    h = handler().auth(mr.Credentials.password_only("not-the-password"))
    box = mr.Inbox(h, key, G, b"dev1")
    eq(box.next(), None)
    ok(box.blocked and isinstance(box.last_error, mr.AuthenticationError))
    h.auth(None)
    eq(box.next(), None)
    box.resume()
    eq(cmds(box, 2), [b"a"])


def test_on_the_application_client_with_a_subscription():
    # one connection: the application's commands, a RESP3 subscription and the inbox's reads (a BLOCK included)
    key = fresh(b"shared")
    c = handler().connect(client=mr.CoreClient)
    sub = c.subscribe(P + b"ch")
    box = mr.Inbox(handler(), key, G, b"dev1")
    produce(key, b"a")
    e = box.next(client=c)
    eq(e.fields[b"cmd"], b"a")
    box.done(e, client=c)
    a = admin()
    a.publish(P + b"ch", b"hello").wait()
    a.close()
    eq(box.next(300, client=c), None)  # the push arrived during the BLOCK
    eq(sub.receive(1000).payload, b"hello")
    c.set(P + b"shared:k", b"v").wait()
    eq(pending(key), 0)
    c.close()


def test_steady_state_garbage_is_at_most_the_outboxs():
    # next() of a small entry + done() on the application's client leave no more garbage (gc.mem_alloc() delta, GC
    # off) than an Outbox's add() + pump() of one reading: the Entry and its fields dict are what the inbox adds
    if not IS_MICROPYTHON:
        skip("the heap is MicroPython's")
    import gc

    key = fresh(b"steady")
    out = fresh(b"steady_out")
    n = 32
    c = handler().connect(client=mr.CoreClient)
    with c.pipeline():
        for _ in range(n + 8):
            c.command(b"XADD", key, b"*", b"cmd", b"led on")
    box = mr.Inbox(handler(), key, G, b"dev1", count=4, block_ms=0)
    ob = mr.Outbox(handler(), out, capacity=8, maxlen=100)  # as bench/mp_parts.py has them
    reading = {b"temp": b"21.50", b"seq": 7}

    def inbox_op():
        box.done(box.next(0, c), c)

    def outbox_op():
        ob.add(reading)
        ob.pump(0, c)

    def garbage(fn):
        for _ in range(4):  # warm: the group made, the first read, the session
            fn()
        gc.collect()
        gc.disable()
        try:
            a = gc.mem_alloc()
            for _ in range(n):
                fn()
            return (gc.mem_alloc() - a) // n
        finally:
            gc.enable()

    gi, go = garbage(inbox_op), garbage(outbox_op)
    ok(0 < gi <= go, "inbox %d B, outbox %d B of garbage per operation" % (gi, go))
    eq((box.last_error, ob.last_error, pending(key)), (None, None, 0))
    c.close()


# ---- the asyncio form (microredis.aio_inbox.AsyncInbox) -----------------------------------------------------------
def test_async_for_hands_over_in_order_while_other_tasks_run():
    # the BLOCK read waits in the client's reader task: a ticker keeps ticking (no gap near the BLOCK time) until
    # the producer's commands arrive, in order
    import asyncio
    from microredis.aio_inbox import AsyncInbox

    key = fresh(b"aio_for")
    box = AsyncInbox(handler(), key, G, b"dev1", block_ms=400)
    ticks = []

    async def ticker():
        while True:
            ticks.append(now_ms())
            await aio_sleep(10)

    async def producer():
        await aio_sleep(500)
        produce(key, b"a", b"b", b"c")

    async def main():
        t = asyncio.create_task(ticker())
        p = asyncio.create_task(producer())
        got = []
        t0 = now_ms()
        async for e in box.listen(3000):
            got.append(e.fields[b"cmd"])
            await box.done(e)
            if len(got) == 3:
                break
        el = since(t0)
        t.cancel()
        await p
        await box.aclose()
        return got, el

    got, el = aio_run(main())
    eq(got, [b"a", b"b", b"c"])
    ok(450 <= el < 2500, "the commands came after %d ms" % el)
    gaps = [ticks[i + 1] - ticks[i] for i in range(len(ticks) - 1)]
    ok(len(ticks) >= 20 and max(gaps) < 200, "%d ticks, largest gap %d ms (BLOCK 400)" % (len(ticks), max(gaps)))
    eq(pending(key), 0)
    eq((box.redelivered, box.skipped, box.last_error), (0, 0, None))


def test_async_done_persists_before_the_ack_and_a_restart_reads_pending_first():
    # on the application's AsyncClient (RESP2 and RESP3): the XACK is lost, the applied ID on file is not; after a
    # restart the pending entries come first, the one done is skipped
    from microredis import aio
    from microredis.aio_inbox import AsyncInbox

    for proto in (2, 3):
        key = fresh(b"aio_restart%d" % proto)
        p = tmppath("inbox", "aio_restart")
        try:
            produce(key, b"a", b"b", b"c")

            async def first():
                c = await aio.connect(handler(proto))
                box = AsyncInbox(handler(proto), key, G, b"dev1", path=p)
                e = await box.next(0, c)  # reads all three (count 4), hands over the first
                a = admin()
                a.command(b"CLIENT", b"KILL", b"ID", await c.command(b"CLIENT", b"ID")).wait()
                a.close()
                await box.done(e, c)  # persisted, then the XACK fails: reported, not raised
                ok(box.last_error is not None)
                await c.aclose()
                return e.fields[b"cmd"]

            async def restart():
                c = await aio.connect(handler(proto))
                box = AsyncInbox(handler(proto), key, G, b"dev1", path=p)
                got = []
                while True:
                    e = await box.next(0, c)
                    if e is None:
                        break
                    got.append((e.fields[b"cmd"], e.deliveries))
                    await box.done(e, c)
                await c.aclose()
                return got, box.skipped, box.redelivered

            eq(aio_run(first()), b"a")
            eq(pending(key), 3)
            eq(aio_run(restart()), ([(b"b", 2), (b"c", 2)], 1, 2))
            eq(pending(key), 0)
        finally:
            cleanup(p)


def test_a_cancelled_async_next_loses_nothing():
    # next() cancelled during its BLOCK: the entry that read is given goes to our pending list, so the next next()
    # reads it from there (before any later entry)
    import asyncio
    from microredis.aio_inbox import AsyncInbox

    key = fresh(b"aio_cancel")
    box = AsyncInbox(handler(), key, G, b"dev1", block_ms=1000)

    async def main():
        eq(await box.next(), None)  # the group exists
        try:
            await aio_wait_for(box.next(5000), 200)
            ok(False, "not cancelled")
        except asyncio.TimeoutError:
            pass
        produce(key, b"x", b"y")  # the cancelled BLOCK read takes x (or both)
        got = []
        for _ in range(2):
            e = await box.next(3000)
            got.append(e.fields[b"cmd"])
            await box.done(e)
        await box.aclose()
        return got

    eq(aio_run(main()), [b"x", b"y"])
    eq(pending(key), 0)


def test_each_inbox_takes_its_own_kind_of_client():
    from microredis import aio
    from microredis.aio_inbox import AsyncInbox

    key = fresh(b"aio_kind")

    async def main():
        c = await aio.connect(handler())
        e = raises(TypeError, mr.Inbox(handler(), key, G, b"dev1").next, 0, c)
        ok("AsyncInbox" not in str(e) and "synchronous" in str(e), str(e))
        box = AsyncInbox(handler(), key, G, b"dev1")
        try:
            await box.next(0, handler().connect())
            ok(False, "no TypeError")
        except TypeError as x:
            ok("asyncio" in str(x), str(x))
        t0 = now_ms()
        got = []
        async for e in box.listen(150, c):  # nothing comes: ends after 150 ms
            got.append(e)
        eq(got, [])
        ok(since(t0) >= 140)
        await c.aclose()

    aio_run(main())
