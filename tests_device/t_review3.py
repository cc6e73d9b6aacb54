# Adversarial review of the asyncio client (microredis.aio): interleavings that must never hand a reply to another
# command's future, and errors that fail only their own future.
try:
    import asyncio
except ImportError:
    import uasyncio as asyncio

from tinytest import eq, ok
import microredis as mr
import microredis.aio as aio
from t_aio import handler, run, sleep_ms, wait_ms


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
            await c.get(b"t_r3:k")
            async with await aio.connect(handler()) as o:
                await o.set(b"t_r3:k", b"1")
            r = await asyncio.gather(*[c.echo(b"e%d" % i) for i in range(6)])
            eq(r, [b"e%d" % i for i in range(6)])
            for _ in range(20):
                if got:
                    break
                await sleep_ms(5)
            ok(got, "an invalidation push")
            eq(await got[0], b"from-handler")
            eq(await c.echo(b"z"), b"z")
            await c.delete(b"t_r3:k")
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
    # Redis 6.2 has no SSUBSCRIBE: its refusal is an error in the reply stream. The subscribing task is cancelled
    # after the command went out, before the refusal came: a command issued next must get its own reply.
    async def main():
        async with await aio.connect(handler()) as c:
            t = asyncio.create_task(c.ssubscribe(b"t_r3:ch"))
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
            t = asyncio.create_task(c.subscribe(b"t_r3:ch2"))
            await sleep_ms(0)
            t.cancel()
            try:
                await t
            except BaseException:
                pass
            eq(await c.echo(b"a"), b"a")
            async with await aio.connect(handler()) as o:
                await o.publish(b"t_r3:ch2", b"m")
            eq(await c.echo(b"b"), b"b")
    run(main())


class _Bad:
    pass


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
                c.command(b"SET", b"t_r3:big", big, bytearray(1 << 30))  # too large for the heap
            else:
                c.command(b"SET", b"t_r3:big", big, s)
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
            await c.set(b"t_r3:s", b"str")

            async def noise(i):
                out = []
                for j in range(8):
                    try:
                        await c.lpush(b"t_r3:s", b"x")  # WRONGTYPE: an error reply in the reply stream
                        out.append("no error")
                    except mr.ReplyError as e:
                        out.append(e.code)
                    out.append(await c.echo(b"n%d.%d" % (i, j)))
                return out

            async def subs():
                s = await c.subscribe(b"t_r3:a", b"t_r3:b")
                await s.psubscribe(b"t_r3:p*")
                await s.unsubscribe(b"t_r3:a")
                eq(sorted(s.channels), [b"t_r3:b"])
                await s.aclose()
                return s
            r = await asyncio.gather(noise(0), subs(), noise(1), noise(2))
            for i in (0, 2, 3):
                eq(r[i], [x for j in range(8) for x in ("WRONGTYPE", b"n%d.%d" % (i if i == 0 else i - 1, j))])
            eq(await c.delete(b"t_r3:s"), 1)
    run(main())


def test_listen_timeout_with_messages_replies_and_timed_waits_interleaved():
    async def main():
        async with await aio.connect(handler(frame_capacity=4)) as c:
            s = await c.subscribe(b"t_r3:L")
            done = [0]

            async def pub():
                async with await aio.connect(handler()) as o:
                    for i in range(12):
                        await o.publish(b"t_r3:L", b"m%d" % i)
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
                        ok(m is None or m.channel == b"t_r3:L", repr(m))
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
    # client's own SET first (after the SET's reply); the handler's error belongs to no command (the reader task keeps it in
    # push_handler_error), so the command that happened to read it must still be queued and get its own reply
    async def main():
        async with await aio.connect(handler(frame_capacity=2)) as c:
            seen = []

            def on_push(frame):
                seen.append(frame)
                raise ValueError("handler failed")
            c.push_handler = on_push
            eq(await c.command(b"CLIENT", b"TRACKING", b"ON"), b"OK")
            await c.set(b"t_r3:tr", b"1")
            eq(await c.get(b"t_r3:tr"), b"1")  # tracked now
            a = c.set(b"t_r3:tr", b"2")  # its invalidation push comes before its reply
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
            eq(await c.delete(b"t_r3:tr"), 1)
    run(main())


def test_resp2_cancelled_subscribe_confirmation_never_answers_a_command():
    # RESP2: the confirmation is an array in the reply stream; the subscribing task is cancelled after the
    # SUBSCRIBE went out. A command next is refused (subscribed mode) or answered by its own reply, never the array.
    async def main():
        async with await aio.connect(handler(proto=2)) as c:
            t = asyncio.create_task(c.subscribe(b"t_r3:r2"))
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
        c = await aio.connect(handler())
        t = asyncio.create_task(c.ssubscribe(b"t_r3:ch3"))
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
    # A's SSUBSCRIBE is refused (Redis 6.2) while B waits to send its SUBSCRIBE: B must not clear A's refusal
    # before A has taken it, nor A take B's answer
    async def main():
        async with await aio.connect(handler()) as c:
            for _ in range(3):
                async def a():
                    try:
                        await c.ssubscribe(b"t_r3:sa")
                        return "confirmed"
                    except mr.ReplyError:
                        return "refused"

                async def b():
                    await sleep_ms(0)
                    s = await c.subscribe(b"t_r3:sb")
                    return sorted(s.channels)
                r = await asyncio.gather(a(), b())
                eq(r, ["refused", [b"t_r3:sb"]])
                await c._sub.aclose()
            eq(await c.echo(b"e"), b"e")
    run(main())
