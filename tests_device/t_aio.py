# The asyncio client (microredis.aio) against a real redis-server, on MicroPython's asyncio and CPython's: values,
# one write per turn, replies to their own tasks, errors, cancellation, deadlines, pub/sub, a killed connection,
# the polling path that CircuitPython uses (and the fake CircuitPython socket pool under CPython), heap per SET.
try:
    import asyncio
except ImportError:
    import uasyncio as asyncio

import cfg
from tinytest import eq, ok, raises, skip, IS_MICROPYTHON
import microredis as mr
import microredis.aio as aio
from t_client import counting
from devkit import aio_run as run, aio_wait_for as wait_ms, aio_sleep as sleep_ms

P = b"t_aio:"


def handler(timeout=2000, proto=3, **kw):
    h = (mr.ConnectionHandler.resp3 if proto == 3 else mr.ConnectionHandler.resp2)(cfg.server()).timeout(timeout)
    if kw:
        h.memory(mr.MemoryParameters(**kw))
    return h


REFUSED_USER = b"t_aio_refused"


def refusing_handler():
    # a connection whose SSUBSCRIBE every server refuses: Redis 6.2 has no such command ("unknown command"); Redis 7
    # and Valkey have it and answer NOPERM to an ACL user that may use the channel P + b"sb" only
    a = handler().connect()
    eq(a.command(b"ACL", b"SETUSER", REFUSED_USER, b"reset", b"on", b">pw", b"~*", b"+@all", b"resetchannels",
                 b"&" + P + b"sb").wait(), b"OK")
    a.close()
    return handler().auth(mr.Credentials.acl(REFUSED_USER, b"pw"))


def is_refusal(e):
    return isinstance(e, mr.NoPermissionError) or "unknown command" in str(e).lower()


def test_values():
    async def main():
        async with await aio.connect(handler()) as c:
            # a real socket is waited for by asyncio itself (MicroPython's poller, CPython's add_reader), not polled
            ok(type(c._wait_io) is not aio._Poll, repr(c._wait_io))
            eq(await c.set(P + b"k", b"v1"), True)
            eq(await c.get(P + b"k"), b"v1")
            eq(await c.delete(P + b"n"), 0)
            eq(await c.incr(P + b"n"), 1)
            eq(await c.set(P + b"k", b"v2", get=True), b"v1")
            eq(await c.hset(P + b"h", mapping={b"a": b"1"}), 1)
            eq(await c.hgetall(P + b"h"), {b"a": b"1"})
            eq(await c.command(b"PING"), b"PONG")
            buf = bytearray(8)
            eq(await c.get_into(P + b"k", buf), 2)
            eq(bytes(buf[:2]), b"v2")
            eq(await c.publish(P + b"nobody", b"x"), 0)
            eq(await c.delete(P + b"k", P + b"h", P + b"n"), 3)
    run(main())


def test_connect_refuses_a_retry_handler():
    async def main():
        e = None
        try:
            await aio.connect(handler().retry())
        except ValueError as x:
            e = x
        ok(e is not None and "aio.connect" in str(e), repr(e))
    run(main())


def test_transaction_and_register_script_are_refused_before_anything_is_sent():
    # their results are resolved by synchronous waits: refused, nothing sent (they used to run on the server and then
    # fail in wait(), so a retry would have run them twice)
    async def main():
        async with await aio.connect(handler()) as c:
            await c.delete(P + b"tx")
            e = raises(NotImplementedError, c.transaction)
            ok("asyncio" in str(e) and "nothing was sent" in str(e) and "handler.connect()" in str(e), str(e))
            e = raises(NotImplementedError, c.register_script, "return redis.call('INCR', KEYS[1])")
            ok("asyncio" in str(e) and "nothing was sent" in str(e), str(e))
            eq((c._pending, c._encoder.n), (0, 0))  # nothing queued, nothing written
            eq(await c.get(P + b"tx"), None)  # nothing ran
            eq(await c.command(b"PING"), b"PONG")  # and the client goes on
    run(main())


def test_fifty_tasks_one_write_each_its_own_reply():
    async def main():
        c = await aio.connect(handler(buffer_size=2048, frame_capacity=64))
        async with c:
            await c.delete(P + b"g")
            w = counting(c)

            async def task(i):
                n = await c.incr(P + b"g")
                return (i, n)

            got = await asyncio.gather(*[task(i) for i in range(50)])
            eq(w.sends, 1, "50 tasks, one turn: one write")
            eq(sorted(n for _, n in got), list(range(1, 51)))
            eq([i for i, _ in got], list(range(50)))
            # gather over the commands themselves: queued before gather runs, sent together
            w.sends = 0
            got = await asyncio.gather(*[c.incr(P + b"g") for _ in range(50)])
            eq(got, list(range(51, 101)))
            eq(w.sends, 1)
            await c.delete(P + b"g")
    run(main())


def test_tasks_pipelined_in_order():
    async def main():
        async with await aio.connect(handler(frame_capacity=32)) as c:
            async def task(i):
                k = P + b"o%d" % i
                f1 = c.set(k, b"%d" % i)
                f2 = c.append(k, b"-x")
                f3 = c.get(k)
                eq(await f3, b"%d-x" % i)  # awaited out of order: each still gets its own reply
                eq(await f1, True)
                eq(await f2, len(b"%d-x" % i))
                return await c.delete(k)
            eq(await asyncio.gather(*[task(i) for i in range(10)]), [1] * 10)
    run(main())


def test_more_tasks_than_slots():
    # frame_capacity 4: a fifth command first reads the oldest reply (the sync client's way); values stay matched
    async def main():
        async with await aio.connect(handler(frame_capacity=4)) as c:
            await c.delete(P + b"small")

            async def task(i):
                a = await c.incr(P + b"small")
                b = await c.echo(b"t%d" % i)
                return (a, b)
            r = await asyncio.gather(*[task(i) for i in range(20)])
            eq(sorted(a for a, _ in r), list(range(1, 21)))
            eq([b for _, b in r], [b"t%d" % i for i in range(20)])
            eq(await c.delete(P + b"small"), 1)
    run(main())


def test_many_cancellations_never_misdeliver():
    async def main():
        async with await aio.connect(handler(frame_capacity=16)) as c:
            async def task(i):
                if i % 3 == 0:
                    await sleep_ms(0)
                v = await c.echo(b"v%d" % i)
                eq(v, b"v%d" % i)
                return v
            ts = [asyncio.create_task(task(i)) for i in range(30)]
            await sleep_ms(0)
            for i in range(0, 30, 4):
                ts[i].cancel()
            got = 0
            for i in range(30):
                try:
                    eq(await ts[i], b"v%d" % i)
                    got += 1
                except asyncio.CancelledError:
                    ok(i % 4 == 0, "only the cancelled ones")
            ok(got >= 22, "%d replies" % got)
            eq(await c.echo(b"last"), b"last")
    run(main())


def test_random_awaits_cancels_and_timeouts_never_misdeliver():
    # 30 tasks, each a seeded mix of awaited, gathered, abandoned, cancelled and timed-out commands: every reply
    # that is awaited to the end is its own command's
    async def main():
        async with await aio.connect(handler(frame_capacity=16)) as c:
            checked = [0]

            async def task(seed):
                x = seed * 7919 + 1
                for i in range(10):
                    x = (x * 1103515245 + 12345) & 0x7FFFFFFF
                    tok = b"t%d.%d" % (seed, i)
                    k = x % 5
                    if k == 0:
                        eq(await c.echo(tok), tok)
                        checked[0] += 1
                    elif k == 1:
                        eq(await asyncio.gather(c.echo(tok + b"a"), c.echo(tok + b"b")), [tok + b"a", tok + b"b"])
                        checked[0] += 2
                    elif k == 2:
                        c.echo(tok).close()  # never awaited
                    elif k == 3:
                        t = asyncio.create_task(c.echo(tok))
                        if x & 8:
                            await sleep_ms(0)
                        t.cancel()
                        try:
                            eq(await t, tok)  # (it may have finished before the cancel)
                            checked[0] += 1
                        except asyncio.CancelledError:
                            pass
                    else:
                        try:
                            eq(await wait_ms(c.echo(tok), 1 + x % 3), tok)
                            checked[0] += 1
                        except asyncio.TimeoutError:
                            pass
            await asyncio.gather(*[task(i) for i in range(30)])
            eq(await c.echo(b"end"), b"end")
            ok(checked[0] > 50, "%d replies checked" % checked[0])
            eq(c.unwaited_errors, 0)
    run(main())


def test_error_reply_only_in_its_future():
    async def main():
        async with await aio.connect(handler()) as c:
            await c.set(P + b"s", b"str")
            r = await asyncio.gather(c.get(P + b"s"), c.lpush(P + b"s", b"x"), c.incr(P + b"s"), c.get(P + b"s"),
                                     return_exceptions=True)
            eq(r[0], b"str")
            ok(isinstance(r[1], mr.ReplyError) and r[1].code == "WRONGTYPE", repr(r[1]))
            ok(isinstance(r[2], mr.ReplyError), repr(r[2]))
            eq(r[3], b"str")
            e = None
            try:
                await c.lpush(P + b"s", b"y")
            except mr.ReplyError as x:
                e = x
            ok(e is not None and e.code == "WRONGTYPE")
            eq(await c.delete(P + b"s"), 1)
    run(main())


def test_cancelled_task_never_shifts_replies():
    async def main():
        async with await aio.connect(handler(timeout=2000)) as c:
            await c.delete(P + b"q")
            t = asyncio.create_task(c.blpop([P + b"q"], timeout=1))
            await sleep_ms(50)
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
            # the BLPOP is still pending on the server: later commands queue behind it and get their own replies
            async def task(i):
                return await c.echo(b"e%d" % i)
            r = await asyncio.gather(*[task(i) for i in range(8)])
            eq(r, [b"e%d" % i for i in range(8)])
            # wait_for: the timed-out await is cancelled the same way
            raised = False
            try:
                await wait_ms(c.blpop([P + b"q"], timeout=1), 50)
            except asyncio.TimeoutError:
                raised = True
            ok(raised)
            async with await aio.connect(handler()) as other:
                eq(await other.rpush(P + b"q", b"item"), 1)  # the pending BLPOP takes it, its reply is dropped
                await sleep_ms(20)
                eq(await other.llen(P + b"q"), 0)
            eq(await c.echo(b"after"), b"after")
            eq(c.unwaited_errors, 0)
    run(main())


def test_deadline_then_reconnect():
    async def main():
        h = handler(timeout=200)
        c = await aio.connect(h)
        slow = c.command(b"DEBUG", b"SLEEP", b"0.5")
        other = c.echo(b"behind")
        e = None
        try:
            await slow
        except mr.TimeoutError as x:
            e = x
        ok(e is not None, "the late reply times out")
        raises_async = None
        try:
            await other
        except mr.InvalidFuture as x:
            raises_async = x
        ok(raises_async is not None, "a reply behind it cannot be matched any more")
        await sleep_ms(400)  # the server finishes sleeping
        c = await aio.connect(h)  # re-dials
        eq(await c.echo(b"again"), b"again")
        await c.aclose()
    run(main())


def test_async_with_closes_and_reuses_socket():
    async def main():
        h = handler()
        async with await aio.connect(h) as c:
            t = c._transport
            c.set(P + b"ff", b"1").close()  # never awaited (close(): no warning on CPython): aclose() reads
            c.delete(P + b"ff").close()  # its reply
        eq(c._conn, None)
        ok(h._conn is not None and h._conn.ok)
        eq(c._task, None)
        async with await aio.connect(h) as c2:
            ok(c2._transport is t, "the clean socket is reused")
            eq(await c2.exists(P + b"ff"), 0)
        c3 = await aio.connect(h)
        c3.echo(b"pending").close()
        s = h.connect()  # a synchronous client takes over: the aio one is closed (its reply read, tasks stopped)
        ok(s._transport is t and c3._conn is None and c3._task is None and c3._timer is None)
        eq(s.echo(b"sync").wait(), b"sync")
        s.close()
    run(main())


def test_pubsub_async_for_with_timeout():
    async def main():
        h = handler()
        async with await aio.connect(h) as c:
            sub = await c.subscribe(P + b"ch")
            ok(P + b"ch" in sub.channels)
            pub = await aio.connect(handler())
            for i in range(3):
                await pub.publish(P + b"ch", b"m%d" % i)
            got = []
            async for m in sub.listen(150):  # ends after 150 ms without a message
                got.append(m.payload)
            eq(got, [b"m0", b"m1", b"m2"])
            eq(await sub.receive(0), None)
            eq(await sub.receive(50), None)
            eq(await sub.ping(b"hi"), b"hi")
            await pub.aclose()
            await sub.aclose()
            ok(not sub.active)
            eq(await c.echo(b"still"), b"still")
    run(main())


def test_push_handler_error_is_kept_and_reading_goes_on():
    async def main():
        async with await aio.connect(handler()) as c:
            seen = []

            def on_push(frame):
                seen.append(frame)
                raise ValueError("handler failed")
            c.push_handler = on_push
            eq(await c.command(b"CLIENT", b"TRACKING", b"ON"), b"OK")
            await c.set(P + b"tr", b"1")
            eq(await c.get(P + b"tr"), b"1")  # tracked now
            async with await aio.connect(handler()) as other:
                await other.set(P + b"tr", b"2")  # an invalidation push reaches c
            for _ in range(100):
                if seen:
                    break
                await sleep_ms(5)
            ok(seen, "the invalidation arrived")
            ok(isinstance(c.push_handler_error, ValueError), repr(c.push_handler_error))
            eq(await c.get(P + b"tr"), b"2")
            eq(await c.delete(P + b"tr"), 1)
    run(main())


def test_resp2_subscription_on_its_own_connection():
    async def main():
        async with await aio.connect(handler(proto=2)) as c:
            sub = await c.psubscribe(P + b"r2.*")
            raised = False
            try:
                await c.echo(b"x")
            except mr.RedisError:
                raised = True
            ok(raised, "RESP2 subscribed mode refuses commands")
            async with await aio.connect(handler(proto=2)) as pub:
                eq(await pub.publish(P + b"r2.a", b"one"), 1)
            m = await sub.receive(1000)
            eq((m.kind, m.channel, m.pattern, m.payload), (b"pmessage", P + b"r2.a", P + b"r2.*", b"one"))
            eq(await sub.ping(), b"PONG")
            eq(await sub.ping(b"hi"), b"hi")
            await sub.aclose()
            eq(await c.echo(b"back"), b"back")
    run(main())


def test_refused_subscribe_raises_and_the_connection_stays():
    # a refused SSUBSCRIBE (refusing_handler): its error reply answers the subscribe command, not some other command
    async def main():
        async with await aio.connect(refusing_handler()) as c:
            f = c.echo(b"before")
            e = None
            try:
                sub = await c.ssubscribe(P + b"shard")
                await sub.aclose()
            except mr.ReplyError as x:
                e = x
                eq(c._sub, None)
            eq(await f, b"before")
            eq(await c.echo(b"after"), b"after")
            ok(e is not None and is_refusal(e), repr(e))
            # other tasks' commands sent while the refusal is on its way keep their own replies
            if e is not None:
                async def sub():
                    try:
                        await c.ssubscribe(P + b"shard")
                    except mr.ReplyError:
                        return "refused"
                    return "accepted"

                async def cmds():
                    await sleep_ms(0)
                    return await asyncio.gather(*[c.echo(b"o%d" % i) for i in range(5)])
                r = await asyncio.gather(c.echo(b"first"), sub(), cmds(), c.echo(b"last"))
                eq(r, [b"first", "refused", [b"o%d" % i for i in range(5)], b"last"])
    run(main())


def test_full_ring_while_a_subscription_is_confirmed():
    async def main():
        async with await aio.connect(handler(frame_capacity=2)) as c:
            a = c.command(b"DEBUG", b"SLEEP", b"0.1")  # the server answers nothing for 100 ms
            t = asyncio.create_task(c.subscribe(P + b"ring"))
            await sleep_ms(0)  # its SUBSCRIBE is on the wire, its confirmation not read yet
            b = c.echo(b"b")
            e = None
            try:
                c.echo(b"c")
            except mr.RedisError as x:
                e = x
            ok(e is not None and "frame_capacity" in str(e), repr(e))
            sub = await t
            eq([await a, await b], [b"OK", b"b"])
            eq(await c.echo(b"d"), b"d")
            await sub.aclose()
    run(main())


def test_async_for_ends_when_the_subscription_is_closed():
    async def main():
        async with await aio.connect(handler()) as c:
            sub = await c.subscribe(P + b"end")

            async def listener():
                got = []
                async for m in sub:
                    got.append(m.payload)
                return got
            t = asyncio.create_task(listener())
            await c.publish(P + b"end", b"one")
            await sleep_ms(20)
            await sub.aclose()
            eq(await t, [b"one"])
            eq(await c.echo(b"after"), b"after")
    run(main())


def test_commands_interleaved_with_messages():
    async def main():
        async with await aio.connect(handler()) as c:
            sub = await c.subscribe(P + b"mix")
            async with await aio.connect(handler()) as pub:
                async def publisher():
                    for i in range(12):
                        await pub.publish(P + b"mix", b"p%d" % i)
                        await sleep_ms(1)

                async def commands():
                    out = []
                    for i in range(12):
                        out.append(await c.echo(b"c%d" % i))
                    return out

                async def listener():
                    got = []
                    while len(got) < 12:
                        m = await sub.receive(1000)
                        ok(m is not None, "message %d arrived" % len(got))
                        got.append(m.payload)
                    return got

                r = await asyncio.gather(publisher(), commands(), listener())
            eq(r[1], [b"c%d" % i for i in range(12)])
            eq(r[2], [b"p%d" % i for i in range(12)])
            eq(sub.dropped, 0)
    run(main())


def test_message_flood_leaves_room_for_commands():
    # the reader yields between receives: a burst of messages neither starves the other tasks nor shifts replies
    async def main():
        async with await aio.connect(handler()) as c:
            sub = await c.subscribe(P + b"flood")
            async with await aio.connect(handler(buffer_size=4096, frame_capacity=64)) as pub:
                await asyncio.gather(*[pub.publish(P + b"flood", b"m%d" % i) for i in range(300)])
            got = 0
            echoes = []
            for i in range(10):
                echoes.append(await c.echo(b"x%d" % i))
            while await sub.receive(0) is not None:
                got += 1
            eq(echoes, [b"x%d" % i for i in range(10)])
            eq(got + sub.dropped, 300)
            ok(got <= 16, "the queue keeps at most 16 messages")
    run(main())


def test_killed_connection_fails_futures_and_redials():
    async def main():
        h = handler()
        c = await aio.connect(h)
        cid = await c.command(b"CLIENT", b"ID")
        f = c.blpop([P + b"never"], timeout=2)
        async with await aio.connect(handler()) as admin:
            eq(await admin.command(b"CLIENT", b"KILL", b"ID", cid), 1)
        e = None
        try:
            await f
        except mr.ConnectionError as x:
            e = x
        ok(e is not None, "the pending command fails with ConnectionError")
        ok(not h._conn.ok)
        c = await aio.connect(h)
        eq(await c.echo(b"redialled"), b"redialled")
        await c.aclose()
    run(main())


def test_polling_path_as_on_circuitpython():
    # CircuitPython's sockets give asyncio no readiness: the client looks every poll_ms (same asyncio core)
    async def main():
        aio.AsyncClient.poll_ms = 1
        try:
            c = await aio.connect(handler(timeout=300))
        finally:
            aio.AsyncClient.poll_ms = None
        ok(type(c._wait_io) is aio._Poll)
        async with c:
            eq(await asyncio.gather(*[c.echo(b"%d" % i) for i in range(5)]), [b"%d" % i for i in range(5)])
            e = None
            try:
                await c.command(b"DEBUG", b"SLEEP", b"0.5")
            except mr.TimeoutError as x:
                e = x
            ok(e is not None)
        await sleep_ms(300)
    run(main())


def test_plain_events_as_with_an_older_asyncio():
    # CircuitPython's asyncio may lack the loop queues the MicroPython fast path uses: then asyncio.Event does
    saved = aio._Signal
    aio._Signal = aio._EventSignal
    aio.AsyncClient.poll_ms = 1

    async def main():
        async with await aio.connect(handler(timeout=300)) as c:
            eq(await asyncio.gather(*[c.echo(b"%d" % i) for i in range(5)]), [b"%d" % i for i in range(5)])
            sub = await c.subscribe(P + b"ev")
            eq(await c.publish(P + b"ev", b"hi"), 1)
            eq((await sub.receive(500)).payload, b"hi")
            eq(await sub.receive(30), None)
            e = None
            try:
                await c.command(b"DEBUG", b"SLEEP", b"0.5")
            except mr.TimeoutError as x:
                e = x
            ok(e is not None)
        await sleep_ms(300)
    try:
        run(main())
    finally:
        aio._Signal = saved
        aio.AsyncClient.poll_ms = None


def test_fake_circuitpython_socketpool():
    if IS_MICROPYTHON:
        skip("the fake SocketPool runs on CPython sockets")
    import fakepool
    from microredis.clock import PeriodicTicks
    pool = fakepool.SocketPool(partial=True, chunk=5)
    clk = PeriodicTicks(fakepool.FakeSupervisor(before_wrap=30).ticks_ms, 1 << 29)

    async def main():
        async with await aio.connect(handler(), stack=pool, clock=clk) as c:
            ok(type(c._wait_io) is aio._Poll, "no fileno on a SocketPool socket: polled")
            await c.delete(P + b"cp")
            eq(await asyncio.gather(*[c.incr(P + b"cp") for _ in range(10)]), list(range(1, 11)))
            sub = await c.subscribe(P + b"cpch")
            eq(await c.publish(P + b"cpch", b"hi"), 1)
            m = await sub.receive(500)
            eq(m.payload, b"hi")
            await sub.aclose()
            eq(await c.delete(P + b"cp"), 1)
    run(main())
    ok(pool.calls.get("recv_into", 0) > 0)
    for name in ("recv", "readinto", "sendall", "fileno"):
        eq(pool.calls.get(name, 0), 0)


def test_heap_per_awaited_set():
    if not IS_MICROPYTHON:
        skip("MicroPython heap")
    import gc
    import micropython
    out = {}

    async def main():
        async with await aio.connect(handler()) as c:
            for _ in range(20):
                await c.set(P + b"m", b"v")
            gc.collect()
            t0 = micropython.mem_total() if hasattr(micropython, "mem_total") else 0
            a0 = gc.mem_alloc()
            gc.disable()
            for _ in range(100):
                await c.set(P + b"m", b"v")
            out["total"] = ((micropython.mem_total() if hasattr(micropython, "mem_total") else 0) - t0) // 100
            out["alloc"] = (gc.mem_alloc() - a0) // 100
            gc.enable()
            await c.delete(P + b"m")
    run(main())
    print("aio: heap per awaited SET: %d B requested, %d B left as garbage" % (out["total"], out["alloc"]))
    ok(out["alloc"] < 1024, "per SET %r" % out)  # 256 B on x64 when written (the coroutine, a poller entry)
    # heap traffic, frames included (issue 16; x64): 1576 B before, 992 B now: asyncio's own loop (4 x 144 B
    # frames of wait_io_event, a 96 B poller entry), set()'s 11-argument frame (232 B), the coroutine (88 B)
    if out["total"]:
        ok(out["total"] < 1280, "heap traffic per awaited SET: %r" % out)


# ---- interleavings that must never hand a reply to another command's future, errors that fail only their own ----
def test_two_slots_many_tasks_with_bad_arguments_and_cancels():
    # frame_capacity 2: most commands read the oldest reply synchronously (_claim_slow) while the reader task waits
    async def main():
        async with await aio.connect(handler(frame_capacity=2)) as c:
            seen = [0]

            async def task(i):
                for j in range(6):
                    tok = b"r%d.%d" % (i, j)
                    k = (i + j) % 4
                    if k == 0:
                        eq(await c.echo(tok), tok)
                        seen[0] += 1
                    elif k == 1:
                        try:
                            await asyncio.gather(c.echo(tok), c.echo(object()), c.echo(tok))
                            ok(False, "no TypeError")
                        except TypeError:
                            pass
                    elif k == 2:
                        t = asyncio.create_task(c.echo(tok))
                        await sleep_ms(0)
                        t.cancel()
                        try:
                            eq(await t, tok)
                        except asyncio.CancelledError:
                            pass
                    else:
                        try:
                            eq(await wait_ms(c.echo(tok), 1), tok)
                        except asyncio.TimeoutError:
                            pass
            await asyncio.gather(*[task(i) for i in range(12)])
            eq(await c.echo(b"end"), b"end")
            ok(seen[0] > 5)
    run(main())


def test_push_handler_issues_commands_while_the_ring_is_full():
    async def main():
        c = await aio.connect(handler(frame_capacity=2))
        got = []

        def ph(v):
            got.append(asyncio.create_task(c.echo(b"from-handler")))
        c.push_handler = ph
        async with c:
            await c.command(b"CLIENT", b"TRACKING", b"on")
            await c.get(P + b"k")
            async with await aio.connect(handler()) as o:
                await o.set(P + b"k", b"1")
            r = await asyncio.gather(*[c.echo(b"e%d" % i) for i in range(6)])
            eq(r, [b"e%d" % i for i in range(6)])
            for _ in range(20):
                if got:
                    break
                await sleep_ms(5)
            ok(got, "an invalidation push")
            eq(await got[0], b"from-handler")
            eq(await c.echo(b"z"), b"z")
            await c.delete(P + b"k")
    run(main())


def test_commands_after_aclose_raise_and_touch_nothing():
    async def main():
        c = await aio.connect(handler())
        f = c.echo(b"pending")
        await c.aclose()
        e = None
        try:
            await f
        except Exception as x:
            e = x
        eq(e, None)
        e = None
        try:
            await c.echo(b"after")
        except mr.ConnectionError as x:
            e = x
        ok(e is not None, repr(e))
        c2 = await aio.connect(handler())
        eq(await c2.echo(b"fresh"), b"fresh")
        await c2.aclose()
    run(main())


def test_cancelled_refused_subscribe_never_answers_a_later_command():
    # A refused SSUBSCRIBE (refusing_handler) is an error in the reply stream. The subscribing task is cancelled
    # after the command went out, before the refusal came: a command issued next must get its own reply.
    async def main():
        async with await aio.connect(refusing_handler()) as c:
            t = asyncio.create_task(c.ssubscribe(P + b"ch"))
            await sleep_ms(0)  # the SSUBSCRIBE is sent
            t.cancel()
            try:
                await t
            except BaseException:
                pass
            eq(await c.echo(b"mine"), b"mine")
            eq(await c.echo(b"mine2"), b"mine2")
    run(main())


def test_cancelled_subscribe_then_commands_and_messages():
    async def main():
        async with await aio.connect(handler()) as c:
            t = asyncio.create_task(c.subscribe(P + b"ch2"))
            await sleep_ms(0)
            t.cancel()
            try:
                await t
            except BaseException:
                pass
            eq(await c.echo(b"a"), b"a")
            async with await aio.connect(handler()) as o:
                await o.publish(P + b"ch2", b"m")
            eq(await c.echo(b"b"), b"b")
    run(main())


def test_encoding_fails_mid_command_beside_other_tasks_commands():
    async def main():
        c = await aio.connect(handler(buffer_size=256))
        a = asyncio.create_task(c.echo(b"a"))
        await sleep_ms(0)
        b = c.echo(b"b")  # queued, unsent, in the same send buffer as what follows
        big = b"x" * 2000
        s = "\ud800" if not hasattr(asyncio, "sleep_ms") else None
        e = None
        try:
            if s is None:
                c.command(b"SET", P + b"big", big, bytearray(1 << 30))  # too large for the heap
            else:
                c.command(b"SET", P + b"big", big, s)
        except Exception as x:
            e = x
        ok(e is not None, "the encoding failed")
        for f, v in ((a, b"a"), (b, b"b")):
            try:
                eq(await f, v)  # its own reply, or (half a command went out) the dropped connection's error
            except mr.RedisError:
                ok(c._conn is None, "failed only because the connection was dropped")
        if c._conn is not None:
            eq(await c.echo(b"c"), b"c")
            await c.aclose()
        c = await aio.connect(handler())
        eq(await c.echo(b"d"), b"d")
        await c.aclose()
    run(main())


def test_subscribe_unsubscribe_racing_failing_commands():
    async def main():
        async with await aio.connect(handler()) as c:
            await c.set(P + b"s", b"str")

            async def noise(i):
                out = []
                for j in range(8):
                    try:
                        await c.lpush(P + b"s", b"x")  # WRONGTYPE: an error reply in the reply stream
                        out.append("no error")
                    except mr.ReplyError as e:
                        out.append(e.code)
                    out.append(await c.echo(b"n%d.%d" % (i, j)))
                return out

            async def subs():
                s = await c.subscribe(P + b"a", P + b"b")
                await s.psubscribe(P + b"p*")
                await s.unsubscribe(P + b"a")
                eq(sorted(s.channels), [P + b"b"])
                await s.aclose()
                return s
            r = await asyncio.gather(noise(0), subs(), noise(1), noise(2))
            for i in (0, 2, 3):
                eq(r[i], [x for j in range(8) for x in ("WRONGTYPE", b"n%d.%d" % (i if i == 0 else i - 1, j))])
            eq(await c.delete(P + b"s"), 1)
    run(main())


def test_listen_timeout_with_messages_replies_and_timed_waits_interleaved():
    async def main():
        async with await aio.connect(handler(frame_capacity=4)) as c:
            s = await c.subscribe(P + b"L")
            done = [0]

            async def pub():
                async with await aio.connect(handler()) as o:
                    for i in range(12):
                        await o.publish(P + b"L", b"m%d" % i)
                        await sleep_ms(1)

            async def cmds():
                for i in range(30):
                    tok = b"c%d" % i
                    try:
                        eq(await wait_ms(c.echo(tok), 1 + i % 3), tok)
                        done[0] += 1
                    except asyncio.TimeoutError:
                        pass
                    try:
                        m = await s.receive(1)
                        ok(m is None or m.channel == P + b"L", repr(m))
                        if m is not None:
                            got.append(m.payload)
                    except Exception as e:
                        ok(False, repr(e))
            got = []

            async def sub():
                async for m in s.listen(150):
                    got.append(m.payload)
            await asyncio.gather(pub(), cmds(), sub())
            eq(sorted(got, key=lambda b: int(b[1:])), [b"m%d" % i for i in range(12)])
            eq(await c.echo(b"end"), b"end")
    run(main())


def test_push_handler_error_during_a_full_ring_read_is_kept_not_raised_to_a_caller():
    # frame_capacity 2: the third command reads the oldest reply synchronously, meeting the invalidation push of the
    # client's own SET first (after the SET's reply); the handler's error belongs to no command (the reader task keeps
    # it in push_handler_error), so the command that happened to read it must still be queued and get its own reply
    async def main():
        async with await aio.connect(handler(frame_capacity=2)) as c:
            seen = []

            def on_push(frame):
                seen.append(frame)
                raise ValueError("handler failed")
            c.push_handler = on_push
            eq(await c.command(b"CLIENT", b"TRACKING", b"ON"), b"OK")
            await c.set(P + b"tr", b"1")
            eq(await c.get(P + b"tr"), b"1")  # tracked now
            a = c.set(P + b"tr", b"2")  # its invalidation push comes before its reply
            b = c.echo(b"b")
            x = c.echo(b"x")  # the ring is full: reads the SET's reply (Redis sends the push after it)
            e = None
            y = None
            try:
                y = c.echo(b"y")  # reads the push, then the ECHO's reply
            except ValueError as err:
                e = err
            ok(e is None, "the push_handler's error reached an unrelated command: %r" % e)
            ok(seen, "the invalidation arrived")
            ok(isinstance(c.push_handler_error, ValueError), repr(c.push_handler_error))
            eq(await a, True)
            eq(await b, b"b")
            eq(await x, b"x")
            eq(await y, b"y")
            eq(await c.delete(P + b"tr"), 1)
    run(main())


def test_resp2_cancelled_subscribe_confirmation_never_answers_a_command():
    # RESP2: the confirmation is an array in the reply stream; the subscribing task is cancelled after the
    # SUBSCRIBE went out. A command next is refused (subscribed mode) or answered by its own reply, never the array.
    async def main():
        async with await aio.connect(handler(proto=2)) as c:
            t = asyncio.create_task(c.subscribe(P + b"r2"))
            await sleep_ms(0)
            t.cancel()
            try:
                await t
            except BaseException:
                pass
            for _ in range(2):
                try:
                    eq(await c.echo(b"own"), b"own")
                except mr.RedisError as e:
                    ok("subscribed" in str(e) or "RESP2" in str(e), repr(e))
                await sleep_ms(5)
    run(main())


def test_aclose_right_after_a_cancelled_refused_subscribe():
    async def main():
        c = await aio.connect(refusing_handler())
        t = asyncio.create_task(c.ssubscribe(P + b"ch3"))
        await sleep_ms(0)  # the SSUBSCRIBE is sent
        t.cancel()  # (its task ends after aclose() below began)
        ok(c._sub is not None and c._sub._want > 0, "the refusal is still due")
        e = c.echo(b"mine")
        await c.aclose()
        try:
            await t
        except BaseException:
            pass
        eq(await e, b"mine")
        ok(c._sub is None)
        c = await aio.connect(handler())
        eq(await c.echo(b"next"), b"next")
        await c.aclose()
    run(main())


def test_concurrent_subscribe_calls_each_get_their_own_answer():
    # A's SSUBSCRIBE is refused (refusing_handler) while B waits to send its SUBSCRIBE: B must not clear A's refusal
    # before A has taken it, nor A take B's answer
    async def main():
        async with await aio.connect(refusing_handler()) as c:
            for _ in range(3):
                async def a():
                    try:
                        await c.ssubscribe(P + b"sa")
                        return "confirmed"
                    except mr.ReplyError:
                        return "refused"

                async def b():
                    await sleep_ms(0)
                    s = await c.subscribe(P + b"sb")
                    return sorted(s.channels)
                r = await asyncio.gather(a(), b())
                eq(r, ["refused", [P + b"sb"]])
                await c._sub.aclose()
            eq(await c.echo(b"e"), b"e")
def test_subscription_ping_and_close_are_the_sync_ones():
    # AsyncSubscription runs Subscription's bodies: a RESP2 PING whose answer would be over memory_limit is refused
    # before it is sent (it used to be sent, its answer dropped as it arrived, and the call waited in vain); the
    # answer's shape is checked; aclose() leaves subscribed mode and the connection serves commands again
    async def main():
        async with await aio.connect(handler(timeout=1000, proto=2, memory_limit=512)) as c:
            sub = await c.subscribe(P + b"pingsize")
            e = None
            try:
                await sub.ping(b"x" * 600)
            except ValueError as x:
                e = x
            ok(e is not None and "memory_limit" in str(e), repr(e))
            eq(await sub.ping(b"small"), b"small")
            eq(await sub.ping(), b"PONG")
            await sub.aclose()
            ok(not sub.active)
            eq(c._sub, None)
            eq(await c.echo(b"back"), b"back")
    run(main())
