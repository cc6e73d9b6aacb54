# Transactions (transaction.py) against a real redis-server, RESP3 and RESP2: one write for MULTI + commands + EXEC,
# each result converted like its command, an error inside failing only its command, EXECABORT, WATCH conflicts made
# by a second connection, the connection usable after every failure, push handlers and ^C while MULTI..EXEC is
# written or read, a WATCH lost with its connection. Plain MicroPython; runs under CPython too.
import gc

import microredis as mr
from tinytest import IS_MICROPYTHON, eq, ok, raises, skip, sleep_ms
from devkit import handler, admin, counting, interrupt

P = b"t_tx:"


def _each(fn):
    for proto in (3, 2):
        h = handler(proto)
        c = h.connect()
        try:
            c.delete(P + b"s", P + b"h", P + b"n", P + b"l", P + b"w").wait()
            fn(c, proto)
            eq(c.ping().wait(), True)  # the connection is usable after whatever fn did
            eq(c._pending, 0)
        finally:
            c.close()
            h.disconnect()


def test_values_and_conversions_one_write():
    def run(c, proto):
        c.hset(P + b"h", mapping={b"a": b"1", b"b": b"2"}).wait()
        w = counting(c)
        with c.transaction() as t:
            f1 = t.set(P + b"s", b"v")
            f2 = t.get(P + b"s")
            f3 = t.hgetall(P + b"h")  # a dict on RESP2 too: the conversion applies inside EXEC
            f4 = t.incr(P + b"n")
            f5 = t.incrbyfloat(P + b"n", 1.5)
            f6 = t.expire(P + b"s", 100)
            eq(w.sends, 0)  # nothing leaves before the block ends
        eq(w.sends, 1)  # MULTI, 6 commands and EXEC (8 replies: the default frame_capacity) in one write
        eq(f6.wait(), True)  # any order
        eq(f1.wait(), True)
        eq(f2.wait(), b"v")
        eq(f3.wait(), {b"a": b"1", b"b": b"2"})
        eq(f4.wait(), 1)
        eq(f5.wait(), 2.5)
        raises(mr.InvalidFuture, f1.wait)  # handed over once, like a Future
        ok(w.recvs <= 2, "recvs %d" % w.recvs)
        with c.transaction() as t:
            f7 = t.set(P + b"s", b"w", get=True)
            f8 = t.command(b"STRLEN", P + b"s")
            f9 = t.smembers(P + b"nothing")
        eq(f7.wait(), b"v")
        eq(f8.wait(), 1)
        eq(f9.wait(), set())
    _each(run)


def test_ready_never_blocks_then_resolves():
    def run(c, proto):
        with c.transaction() as t:
            f = t.incr(P + b"n")
            g = t.get(P + b"n")
        while not f.ready():
            pass
        ok(g.ready())  # the whole EXEC reply resolved both
        eq(g.wait(), b"1")
        eq(f.wait(), 1)
    _each(run)


def test_error_inside_fails_only_that_command():
    def run(c, proto):
        c.rpush(P + b"l", b"x").wait()
        with c.transaction() as t:
            a = t.set(P + b"s", b"1")
            b = t.incr(P + b"l")  # WRONGTYPE at EXEC time: the others still run (Redis does not roll back)
            d = t.hgetall(P + b"l")  # an error where a conversion would apply
            e = t.get(P + b"s")
        eq(a.wait(), True)
        err = raises(mr.ReplyError, b.wait)
        eq(err.code, "WRONGTYPE")
        eq(raises(mr.ReplyError, d.wait).code, "WRONGTYPE")
        eq(e.wait(), b"1")
        eq(c.unwaited_errors, 0)
    _each(run)


def test_execabort_fails_every_command_and_nothing_runs():
    def run(c, proto):
        with c.transaction() as t:
            a = t.set(P + b"s", b"1")
            b = t.command(b"GET")  # wrong arity: refused while queued, so EXEC aborts
            d = t.incr(P + b"n")
        e = raises(mr.ReplyError, b.wait)
        ok("wrong number" in e.message, e.message)  # its own queueing error
        eq(raises(mr.ReplyError, a.wait).code, "EXECABORT")
        eq(raises(mr.ReplyError, d.wait).code, "EXECABORT")
        eq(c.get(P + b"s").wait(), None)  # nothing ran
        eq(c.unwaited_errors, 0)
    _each(run)


def test_watch_conflict_from_a_second_connection():
    def run(c, proto):
        oh = handler(proto)  # a handler of its own: its own socket
        other = oh.connect()
        try:
            c.set(P + b"w", b"10").wait()
            eq(c.watch(P + b"w").wait(), True)
            v = int(c.get(P + b"w").wait())
            eq(other.set(P + b"w", b"99").wait(), True)  # the conflict
            with c.transaction() as t:
                a = t.set(P + b"w", v - 1)
                b = t.incr(P + b"n")
            e = raises(mr.WatchError, a.wait)
            ok(isinstance(e, mr.RedisError))
            raises(mr.WatchError, b.wait)
            eq(c.get(P + b"w").wait(), b"99")
            eq(c.get(P + b"n").wait(), None)  # nothing ran
            # the retry succeeds: EXEC ended the watch, a new one is clean
            eq(c.watch(P + b"w").wait(), True)
            v = int(c.get(P + b"w").wait())
            with c.transaction() as t:
                a = t.set(P + b"w", v - 1)
            eq(a.wait(), True)
            eq(c.get(P + b"w").wait(), b"98")
        finally:
            other.close()
            oh.disconnect()
    _each(run)


def test_unwatch_forgets_the_watch():
    def run(c, proto):
        oh = handler(proto)
        other = oh.connect()
        try:
            eq(c.watch(P + b"w", P + b"s").wait(), True)
            other.set(P + b"w", b"1").wait()
            eq(c.unwatch().wait(), True)
            with c.transaction() as t:
                a = t.set(P + b"s", b"ok")
            eq(a.wait(), True)
        finally:
            other.close()
            oh.disconnect()
    _each(run)


def test_exception_in_block_sends_nothing():
    def run(c, proto):
        w = counting(c)
        try:
            with c.transaction() as t:
                a = t.set(P + b"s", b"1")
                raise KeyError("user code")
        except KeyError:
            pass
        eq(w.sends, 0)
        e = raises(mr.RedisError, a.wait)
        ok("not sent" in str(e), str(e))
        eq(c.get(P + b"s").wait(), None)
    _each(run)


def test_misuse_is_refused_before_anything_is_sent():
    def run(c, proto):
        w = counting(c)
        with c.transaction() as t:
            raises(TypeError, t.set, P + b"s", object())
            raises(ValueError, t.command, b"EXEC")
            raises(ValueError, t.command, b"multi")
            raises(ValueError, t.command, "WATCH", P + b"s")
            raises(ValueError, t.command, b"SUBSCRIBE", b"x")
            ok(not hasattr(t, "transaction") and not hasattr(t, "watch"))
            a = t.get(P + b"s")
            ok(a.ready())  # wait() would not block: it raises, saying when to wait
            raises(mr.RedisError, a.wait)
        eq(w.sends, 1)
        raises(mr.RedisError, t.get, P + b"s")  # sent: queue into a new transaction instead
        eq(a.wait(), None)
        with c.transaction() as t:  # empty: nothing sent
            pass
        eq(w.sends, 1)
    _each(run)


def test_nested_transactions_are_sent_one_after_the_other():
    def run(c, proto):
        with c.transaction() as outer:
            a = outer.incr(P + b"n")
            with c.transaction() as inner:
                b = inner.incr(P + b"n")
            eq(b.wait(), 1)  # the inner block ended first, so it was sent (and ran) first
        eq(a.wait(), 2)
    _each(run)


def test_more_commands_than_frame_capacity_and_in_a_pipeline():
    def run(c, proto):
        # 12 commands + MULTI + EXEC with frame_capacity 8: still one transaction (more than one write)
        with c.transaction() as t:
            fs = [t.incr(P + b"n") for _ in range(12)]
        eq([f.wait() for f in fs], list(range(1, 13)))
        w = counting(c)
        with c.pipeline():
            f0 = c.set(P + b"s", b"x")
            with c.transaction() as t:
                g = t.get(P + b"s")
        eq(w.sends, 1)
        eq(f0.wait(), True)
        eq(g.wait(), b"x")
    _each(run)


def test_resp2_subscribed_mode_refuses_a_transaction():
    h = handler(2)
    c = h.connect()
    try:
        sub = c.subscribe(P + b"ch")
        e = None
        try:
            with c.transaction() as t:
                a = t.set(P + b"s", b"1")
        except mr.RedisError as x:
            e = x
        ok(e is not None and "subscribed" in str(e), str(e))
        raises(mr.RedisError, a.wait)
        sub.close()
        eq(c.ping().wait(), True)
    finally:
        c.close()
        h.disconnect()


def test_transaction_allocation_is_measured():
    # not zero (results, the EXEC array, the commands' argument tuples): the figure is in README "Transactions"
    h = handler(3)
    c = h.connect()
    try:
        def tx():
            with c.transaction() as t:
                a = t.set(P + b"s", b"v")
                b = t.incr(P + b"n")
                d = t.get(P + b"s")
            a.wait()
            b.wait()
            d.wait()
        for _ in range(3):
            tx()
        if IS_MICROPYTHON:
            gc.collect()
            before = gc.mem_alloc()
            gc.disable()
            tx()
            n = gc.mem_alloc() - before
            gc.enable()
            print("transaction of 3 commands allocates %d bytes" % n)
            ok(0 < n < 2048, "%d bytes" % n)
        c.delete(P + b"s", P + b"n").wait()
    finally:
        c.close()
        h.disconnect()


def test_scan_iter_cannot_wait_inside_the_block():
    def run(c, proto):
        with c.transaction() as t:
            raises(mr.RedisError, lambda: list(t.scan_iter(match=P + b"*")))
    _each(run)


def test_decode_responses():
    h = handler(3).decode_responses()
    c = h.connect()
    try:
        c.hset(P + b"h", mapping={b"a": b"1"}).wait()
        with c.transaction() as t:
            a = t.set(P + b"s", "é")
            b = t.get(P + b"s")
            d = t.hgetall(P + b"h")
        eq((a.wait(), b.wait(), d.wait()), (True, "é", {"a": "1"}))
        c.delete(P + b"s", P + b"h").wait()
    finally:
        c.close()
        h.disconnect()


def test_exec_past_its_deadline_fails_every_result_and_the_next_connect_redials():
    h = handler(3).timeout(300)
    c = h.connect()
    try:
        try:
            c.command(b"DEBUG", b"SLEEP", b"0").wait()
        except mr.ReplyError:
            skip("this server refuses DEBUG (redis-server --enable-debug-command yes)")
        with c.transaction() as t:
            a = t.set(P + b"s", b"1")
            b = t.command(b"DEBUG", b"SLEEP", b"0.6")  # runs at EXEC: its reply comes after the deadline
        raises(mr.TimeoutError, a.wait)
        raises(mr.TimeoutError, b.wait)
        ok(c._conn is None)
        h.timeout(2000)  # the server may still be asleep for up to 0.3 s: the re-dial's HELLO must outlast it
        c = h.connect()
        eq(c.get(P + b"s").wait(), b"1")  # the transaction ran, only its reply came late
        c.delete(P + b"s").wait()
    finally:
        c.close()
        h.disconnect()


class _Interrupting:
    # a transport whose send raises KeyboardInterrupt once armed (^C in the middle of a transaction's write)
    def __init__(self, t):
        self.t = t
        self.armed = False

    def send(self, buf, n):
        if self.armed:
            raise KeyboardInterrupt
        self.t.send(buf, n)

    def send_obj(self, o):
        self.send(o, len(o))

    def recv_into(self, buf, start, ms):
        return self.t.recv_into(buf, start, ms)

    def close(self):
        self.t.close()


def test_interrupted_while_sent_drops_the_connection_never_leaves_a_multi_open():
    h = handler(3)
    c = h.connect()
    try:
        w = _Interrupting(c._transport)
        c._transport = w
        c._encoder.sink = w
        big = b"x" * 300  # over a quarter of the send buffer: written uncopied, mid-transaction
        w.armed = True
        try:
            with c.transaction() as t:
                a = t.set(P + b"s", b"1")
                b = t.set(P + b"l", big)
            raise AssertionError("not interrupted")
        except KeyboardInterrupt:
            pass
        ok(c._conn is None)  # dropped: a MULTI without EXEC would queue the next client's commands
        raises(mr.RedisError, a.wait)
        raises(mr.RedisError, b.wait)
        c = h.connect()
        eq(c.set(P + b"s", b"2").wait(), True)  # not QUEUED: no transaction was left open
        eq(c.get(P + b"s").wait(), b"2")
        c.delete(P + b"s").wait()
    finally:
        c.close()
        h.disconnect()


def _version(c):
    v = c.info("server").wait().split(b"redis_version:")[1].split(b"\r")[0].split(b".")
    return (int(v[0]), int(v[1]))


def test_resp3_transaction_that_publishes_to_its_own_subscription():
    # Redis < 7.2 puts the push made by PUBLISH inside the EXEC array (redis/redis#12326): the array ends early, so
    # its last replies would be taken for the replies of the commands sent after it. The connection is dropped
    # instead, and the next connect() re-dials; Redis >= 7.2 sends the push after the EXEC reply.
    h = handler(3)
    c = h.connect()
    try:
        fixed = _version(c) >= (7, 2)
        sub = c.subscribe(P + b"ch")
        with c.transaction() as t:
            a = t.publish(P + b"ch", b"m1")
            b = t.incr(P + b"n")
            d = t.publish(P + b"ch", b"m2")
        after = c.get(P + b"n")  # sent behind the transaction: must never get one of its replies
        if fixed:
            eq((a.wait(), b.wait(), d.wait(), after.wait()), (1, 1, 1, b"1"))
            eq([sub.receive(1000).payload for _ in range(2)], [b"m1", b"m2"])
            sub.close()
        else:
            e = raises(mr.ProtocolError, a.wait)
            ok("redis#12326" in str(e), str(e))
            raises(mr.ProtocolError, b.wait)
            raises(mr.RedisError, after.wait)  # its error, never a reply of the transaction
            ok(c._conn is None)
            c = h.connect()
        eq(c.get(P + b"n").wait(), b"1")  # the transaction ran
        eq(c.ping().wait(), True)
        c.delete(P + b"n").wait()
    finally:
        c.close()
        h.disconnect()


def test_resp3_client_tracking_invalidation_comes_after_the_exec_reply():
    h = handler(3)
    c = h.connect()
    try:
        seen = []
        c.push_handler = seen.append
        eq(c.command(b"CLIENT", b"TRACKING", b"ON").wait(), b"OK")
        c.set(P + b"s", b"1").wait()
        eq(c.get(P + b"s").wait(), b"1")  # now tracked by this connection
        with c.transaction() as t:
            a = t.set(P + b"s", b"2")  # invalidates this connection's own tracked key
            b = t.incr(P + b"n")
        eq((a.wait(), b.wait()), (True, 1))
        eq(c.ping().wait(), True)
        ok(any(p[0] == b"invalidate" for p in seen), repr(seen))
        ok(c._conn is not None)
        c.command(b"CLIENT", b"TRACKING", b"OFF").wait()
        c.delete(P + b"s", P + b"n").wait()
    finally:
        c.close()
        h.disconnect()


# ---- push handlers, interruptions and a lost WATCH around MULTI..EXEC --------------------------------------------
def test_tx_push_handler_commands_never_land_inside_multi():
    # frame_capacity 2: writing MULTI + 3 commands + EXEC reads replies on the way, and an invalidation push read
    # then calls the push_handler: its GET must not go out between MULTI and EXEC (it would be queued, its wait()
    # would give b"QUEUED", and the EXEC array would no longer match: every result a ProtocolError, though the
    # commands ran)
    a = admin(P + b"k", P + b"n", P + b"s", P + b"w")
    a.set(P + b"k", b"1").wait()
    h = handler(mem=mr.MemoryParameters(buffer_size=256, frame_capacity=2, memory_limit=4096))
    c = h.connect()
    try:
        seen = []

        def ph(p):
            seen.append(c.get(P + b"k").wait())
        c.push_handler = ph
        eq(c.command(b"CLIENT", b"TRACKING", b"ON").wait(), b"OK")
        eq(c.get(P + b"k").wait(), b"1")  # tracked
        a.set(P + b"k", b"2").wait()  # its invalidation is now on its way to c
        sleep_ms(50)
        with c.transaction() as t:
            x = t.incr(P + b"n")
            y = t.incr(P + b"n")
            z = t.get(P + b"k")
        eq(seen, [b"2"])  # the handler ran after EXEC was written, and its GET got the value
        eq((x.wait(), y.wait(), z.wait()), (1, 2, b"2"))
        ok(c.push_handler is ph)
        eq(c.ping().wait(), True)
        c.push_handler = None
        c.command(b"CLIENT", b"TRACKING", b"OFF").wait()
    finally:
        c.close()
        h.disconnect()
        a.close()


def test_tx_interrupted_exec_read_fails_every_result_never_none():
    # ^C while the EXEC reply is read: the connection is dropped, and every result raises (none returns None)
    a = admin(P + b"k", P + b"n", P + b"s", P + b"w")
    h = handler()
    c = h.connect()
    try:
        w = interrupt(c)
        with c.transaction() as t:
            x = t.set(P + b"s", b"v")
            y = t.get(P + b"s")
        w.recv_fail = KeyboardInterrupt()
        raises(KeyboardInterrupt, x.wait)
        ok(c._conn is None)
        raises(mr.ConnectionError, y.wait)
        raises(mr.ConnectionError, x.wait)  # its own second wait: the error again, not a value
        c = h.connect()
        eq(c.ping().wait(), True)
    finally:
        c.close()
        h.disconnect()
        a.close()


def test_tx_push_handler_waiting_a_result_while_exec_is_read():
    # a push read by the transaction's own wait(), whose push_handler waits another result of that transaction: it
    # gets an error naming the push_handler (not None), and a later wait() of that result its value
    a = admin(P + b"k", P + b"n", P + b"s", P + b"w")
    a.set(P + b"k", b"1").wait()
    h = handler()
    c = h.connect()
    try:
        got = []
        res = []

        def ph(p):
            try:
                got.append(res[1].wait())
            except mr.RedisError as e:
                got.append(e)
        c.push_handler = ph
        c.command(b"CLIENT", b"TRACKING", b"ON").wait()
        c.get(P + b"k").wait()
        a.set(P + b"k", b"2").wait()  # its push waits in c's socket, read first by the transaction's wait()
        sleep_ms(50)
        with c.transaction() as t:
            res.append(t.set(P + b"s", b"v"))
            res.append(t.get(P + b"s"))
        eq(res[0].wait(), True)
        eq(len(got), 1)
        ok(isinstance(got[0], mr.RedisError) and "push_handler" in str(got[0]), repr(got))
        eq(res[1].wait(), b"v")  # waited after the read: its value
        c.push_handler = None
        c.command(b"CLIENT", b"TRACKING", b"OFF").wait()
    finally:
        c.close()
        h.disconnect()
        a.close()


def test_tx_watch_lost_with_its_connection_is_a_watch_error():
    # h.retry() re-dials in place: the transaction must not go out on the new connection, which has no WATCH, and run
    # although the watched key changed
    a = admin(P + b"k", P + b"n", P + b"s", P + b"w")
    a.set(P + b"w", b"10").wait()
    h = handler().retry(backoff_ms=0)
    c = h.connect()
    try:
        eq(c.watch(P + b"w").wait(), True)
        v = int(c.get(P + b"w").wait())
        eq(a.command(b"CLIENT", b"KILL", b"ID", c.command(b"CLIENT", b"ID").wait()).wait(), 1)
        raises(mr.ConnectionError, c.command(b"PING").wait)  # the loss is noticed by some other command
        a.set(P + b"w", b"99").wait()  # the conflict the watch was for
        with c.transaction() as t:
            x = t.set(P + b"w", v - 1)
        e = raises(mr.WatchError, x.wait)
        ok("watch" in str(e), str(e))
        eq(a.get(P + b"w").wait(), b"99")  # nothing ran
        eq(c.watch(P + b"w").wait(), True)  # the retry, on the new connection, works
        v = int(c.get(P + b"w").wait())
        with c.transaction() as t:
            x = t.set(P + b"w", v - 1)
        eq(x.wait(), True)
        eq(a.get(P + b"w").wait(), b"98")
        with c.transaction() as t:  # EXEC ended the watch: no WatchError however the connection goes
            x = t.incr(P + b"n")
        eq(x.wait(), 1)
    finally:
        c.close()
        h.disconnect()
        a.close()


def test_heap_traffic_of_a_transaction():
    # Issue 16 (x64, frames included): a transaction of SET, INCR, GET with its three results waited took 14.9 KB of
    # heap traffic (a heap frame per reply element in the reader, per argument in the encoder, per future waited
    # here, per conversion); 3.1 KB now (bench/mp_heap.py --prof says where). Its own objects (results, the class
    # instance, argument tuples, the EXEC reply) are about 0.9 KB of it; the rest is frames of more than 11 words
    # (this test's `with` block, _write, _finish, set()'s signature, the client's _get and _resolve_slow for the
    # EXEC reply, the reader's scan and build of it).
    if not IS_MICROPYTHON:
        skip("heap traffic is counted on MicroPython")
    from devkit import heap_per_call
    c = handler().connect()
    fs = [None] * 3

    def tx():
        with c.transaction() as t:
            fs[0] = t.set(P + b"s", b"v")
            fs[1] = t.incr(P + b"n")
            fs[2] = t.get(P + b"s")
        fs[0].wait()
        fs[1].wait()
        fs[2].wait()

    try:
        n = heap_per_call(tx)
        if n is None:
            skip("this port has no micropython.mem_total()")
        print("    a 3-command transaction: %d B of heap traffic" % n)
        ok(n < 4096, "a 3-command transaction took %d bytes of heap traffic (14.9 KB before)" % n)
        c.delete(P + b"s", P + b"n").wait()
    finally:
        c.close()
