# Adversarial review of transaction.py, scripts.py and cache.py (session 3): each test failed before its fix. Against
# a real redis-server; plain MicroPython, runs under CPython too.
import time

import cfg
import microredis as mr
from tinytest import eq, ok, raises, skip

P = b"t_rv2:"


def _sleep_ms(ms):
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(ms)
    else:
        time.sleep(ms / 1000)


def _h(cap=8, proto=3):
    h = mr.ConnectionHandler(cfg.server(), proto).timeout(2000)
    if cap != 8:
        h.memory(mr.MemoryParameters(buffer_size=256, frame_capacity=cap, memory_limit=4096))
    return h


def _admin():
    a = _h().connect()
    a.command(b"DEL", P + b"k", P + b"n", P + b"s", P + b"w").wait()
    return a


class _Interrupt:
    # a transport whose next receive raises KeyboardInterrupt once armed (^C while a reply is read)
    def __init__(self, t):
        self.t = t
        self.armed = False

    def send(self, buf, n):
        self.t.send(buf, n)

    def send_obj(self, o):
        self.t.send_obj(o)

    def recv_into(self, buf, start, ms):
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        return self.t.recv_into(buf, start, ms)

    def close(self):
        self.t.close()


# ---- transactions ------------------------------------------------------------------------------------------------

def test_tx_push_handler_commands_never_land_inside_multi():
    # frame_capacity 2: writing MULTI + 3 commands + EXEC reads replies on the way, and an invalidation push read
    # then called a push_handler whose GET went out between MULTI and EXEC: it was queued (its wait() gave
    # b"QUEUED") and the EXEC array no longer matched (every result a ProtocolError, though the commands ran)
    a = _admin()
    a.set(P + b"k", b"1").wait()
    h = _h(cap=2)
    c = h.connect()
    try:
        seen = []

        def ph(p):
            seen.append(c.get(P + b"k").wait())
        c.push_handler = ph
        eq(c.command(b"CLIENT", b"TRACKING", b"ON").wait(), b"OK")
        eq(c.get(P + b"k").wait(), b"1")  # tracked
        a.set(P + b"k", b"2").wait()  # its invalidation is now on its way to c
        _sleep_ms(50)
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
    # ^C while the EXEC reply was read: the connection is dropped, and the other results returned None
    a = _admin()
    h = _h()
    c = h.connect()
    try:
        w = _Interrupt(c._transport)
        c._transport = w
        c._encoder.sink = w
        with c.transaction() as t:
            x = t.set(P + b"s", b"v")
            y = t.get(P + b"s")
        w.armed = True
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
    # got None, and every later wait() of the transaction's results None too
    a = _admin()
    a.set(P + b"k", b"1").wait()
    h = _h()
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
        _sleep_ms(50)
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
    # h.retry() re-dials in place: the transaction went out on the new connection, which had no WATCH, and ran
    # although the watched key had changed
    a = _admin()
    a.set(P + b"w", b"10").wait()
    h = _h().retry(backoff_ms=0)
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


# ---- the client-side cache ---------------------------------------------------------------------------------------

def _cache(a, **kw):
    from microredis.cache import Cache
    c = _h().connect()
    if "prefixes" not in kw and "keys" not in kw:
        kw["prefixes"] = (P,)
    return c, Cache(c, **kw)


def test_cache_hit_never_overtakes_this_clients_own_pending_write():
    # c.set(k, v) then c.get(k) without waiting the SET (implicit pipelining): the hit answered at once with the
    # old value while the SET's reply and invalidation were still on their way (stale most of the time on loopback)
    a = _admin()
    a.set(P + b"k", b"0").wait()
    c, cache = _cache(a)
    try:
        for i in range(1, 30):
            eq(c.get(P + b"k").wait(), str(i - 1).encode())
            eq(c.get(P + b"k").wait(), str(i - 1).encode())  # cached
            f = c.set(P + b"k", str(i).encode())
            eq(c.get(P + b"k").wait(), str(i).encode())
            eq(f.wait(), True)
        ok(cache.hits > 0)
        if hasattr(c, "hset"):
            c.hset(P + b"n", b"f", b"0").wait()
            for i in range(1, 10):
                eq(c.hget(P + b"n", b"f").wait(), str(i - 1).encode())
                eq(c.hget(P + b"n", b"f").wait(), str(i - 1).encode())
                f = c.hset(P + b"n", b"f", str(i).encode())
                eq(c.hget(P + b"n", b"f").wait(), str(i).encode())
                f.wait()
            c.get(P + b"k").wait()
            f = c.delete(P + b"k")  # any command the cache does not know may write: the hit waits behind it
            eq(c.get(P + b"k").wait(), None)
            f.wait()
        c.set(P + b"s", b"1").wait()
        eq(c.get(P + b"k").wait(), None)
        eq(c.get(P + b"k").wait(), None)
        hits = cache.hits
        f = c.set(P + b"s", b"2")  # a write of another key does not stop hits
        eq(c.get(P + b"k").wait(), None)
        eq(cache.hits, hits + 1)
        f.wait()
    finally:
        cache.close()
        c.close()
        a.close()


def test_cache_hit_inside_a_pipeline_applies_an_invalidation_already_arrived():
    # inside pipeline() the hit skipped its non-blocking read (the batch was unsent), so an invalidation already
    # in the socket was not applied and the old value was served
    a = _admin()
    a.set(P + b"k", b"old").wait()
    c, cache = _cache(a)
    try:
        eq(c.get(P + b"k").wait(), b"old")
        eq(c.get(P + b"k").wait(), b"old")
        a.set(P + b"k", b"new").wait()
        _sleep_ms(50)  # the invalidation has reached c's socket
        with c.pipeline():
            f1 = c.set(P + b"s", b"x")
            f2 = c.get(P + b"k")
            f3 = c.get(P + b"k")
        eq((f1.wait(), f2.wait(), f3.wait()), (True, b"new", b"new"))
        ok(cache.invalidations >= 1)
        eq(c.get(P + b"k").wait(), b"new")
    finally:
        cache.close()
        c.close()
        a.close()


# ---- scripts -----------------------------------------------------------------------------------------------------

def test_script_error_that_looks_like_noscript_does_not_run_it_twice():
    # a script's own error_reply("NOSCRIPT ...") was taken for the server's NOSCRIPT: EVAL ran the script again
    a = _admin()
    c = _h().connect()
    try:
        s = c.register_script("redis.call('INCR', KEYS[1]); return redis.error_reply('NOSCRIPT of my own')")
        c.command(b"SCRIPT", b"LOAD", s.script).wait()
        e = raises(mr.ReplyError, s.run([P + b"n"]).wait)
        eq(e.message, "NOSCRIPT of my own")
        eq(c.get(P + b"n").wait(), b"1")  # ran once
        c.command(b"SCRIPT", b"FLUSH").wait()
        raises(mr.ReplyError, s.run([P + b"n"]).wait)  # the server's NOSCRIPT still falls back to EVAL
        eq(c.get(P + b"n").wait(), b"2")
    finally:
        c.close()
        a.close()


def test_script_noscript_fallback_sends_the_arguments_run_was_given():
    # a bytearray argument reused by the caller after run() (a board's buffer): the EVAL sent after NOSCRIPT
    # carried its new content
    a = _admin()
    c = _h().connect()
    try:
        s = c.register_script("return {KEYS[1], ARGV[1]}")
        c.command(b"SCRIPT", b"FLUSH").wait()
        key = bytearray(P + b"k")
        buf = bytearray(b"1")
        r = s.run([memoryview(key)], [buf])
        buf[0] = 50
        key[0] = 88
        eq(r.wait(), [P + b"k", b"1"])
    finally:
        c.close()
        a.close()


class _SendInterrupt(_Interrupt):
    def recv_into(self, buf, start, ms):
        return self.t.recv_into(buf, start, ms)

    def send(self, buf, n):
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt
        self.t.send(buf, n)

    def send_obj(self, o):
        self.send(o, len(o))


def test_script_interrupted_eval_after_noscript_fails_the_result_clearly():
    # ^C while the EVAL after NOSCRIPT was written: the next wait() raised AttributeError ('NoneType' ... 'wait')
    a = _admin()
    h = _h()
    c = h.connect()
    try:
        s = c.register_script("return 7")
        c.command(b"SCRIPT", b"FLUSH").wait()
        w = _SendInterrupt(c._transport)
        c._transport = w
        c._encoder.sink = w
        r = s.run()
        w.armed = True
        raises(KeyboardInterrupt, r.wait)
        raises(mr.ConnectionError, r.wait)
        c = h.connect()
        # the same, ^C while the NOSCRIPT reply itself is read
        c.command(b"SCRIPT", b"FLUSH").wait()
        w = _Interrupt(c._transport)
        c._transport = w
        c._encoder.sink = w
        r = s.run(client=c)
        w.armed = True
        raises(KeyboardInterrupt, r.wait)
        raises(mr.ConnectionError, r.wait)
        c = h.connect()
        eq(s.run(client=c).wait(), 7)
    finally:
        c.close()
        h.disconnect()
        a.close()


def test_cache_get_into_a_read_only_memoryview_is_refused_like_the_core():
    # a cached missing key (None) answered a read-only memoryview without the TypeError the core raises
    a = _admin()
    c, cache = _cache(a)
    try:
        eq(c.get(P + b"k").wait(), None)
        eq(c.get(P + b"k").wait(), None)  # cached
        raises(TypeError, c.get_into, P + b"k", memoryview(b"zz"))
        eq(c.get_into(P + b"k", memoryview(bytearray(2))).wait(), None)
    finally:
        cache.close()
        c.close()
        a.close()


def test_script_run_never_waited_still_runs_after_noscript():
    # fire and forget: after NOSCRIPT the EVAL went out only from wait()/ready(), so a run nobody waited never ran,
    # and the script was never loaded again: every later unwaited run failed the same way (after a server restart,
    # a board's counter script silently stopped counting)
    a = _admin()
    c = _h().connect()
    try:
        s = c.register_script("return redis.call('INCR', KEYS[1])")
        c.command(b"SCRIPT", b"FLUSH").wait()
        s.run([P + b"n"])  # never waited
        eq(c.ping().wait(), True)  # its NOSCRIPT is read here
        s.run([P + b"n"])  # sends the first run's EVAL, then its own EVALSHA
        eq(c.ping().wait(), True)
        eq(c.get(P + b"n").wait(), b"2")
        eq(c.unwaited_errors, 0)  # the NOSCRIPT was handled, not an error left for the application
        r = s.run([P + b"n"])
        eq(r.wait(), 3)
        for _ in range(20):  # many runs in flight, none waited: the list of runs to look at stays short
            s.run([P + b"n"])
        ok(len(s._runs) <= 9, len(s._runs))
        eq(c.ping().wait(), True)
        s.run([P + b"n"])
        eq(c.ping().wait(), True)
        eq(c.get(P + b"n").wait(), b"24")
    finally:
        c.close()
        a.close()


def test_cache_hit_reads_every_invalidation_that_has_arrived():
    # 17 invalidation pushes of 64 bytes wait in the socket, the last one for the cached key; a GET of another key
    # is pending. The hit's read stopped when its first receive (512 bytes: exactly 8 pushes) was used up, since a
    # reply was pending, and served the old value although its invalidation had arrived.
    a = _admin()
    key = (P + b"k" * 32)[:32]  # a push of 64 bytes
    a.set(key, b"old").wait()
    c, cache = _cache(a)
    try:
        eq(c.get(key).wait(), b"old")
        eq(c.get(key).wait(), b"old")
        for i in range(16):
            a.set((P + b"pad%02d" % i + b"-" * 32)[:32], b"x").wait()  # one push each (one per event loop turn)
        a.set(key, b"new").wait()
        _sleep_ms(100)
        f = c.get(b"t_rv2_other")
        eq(c.get(key).wait(), b"new")
        eq(f.wait(), None)
        eq(cache.invalidations, 17)
        for i in range(16):
            a.delete((P + b"pad%02d" % i + b"-" * 32)[:32]).wait()
        a.delete(key).wait()
    finally:
        cache.close()
        c.close()
        a.close()


def test_cache_and_a_transaction_on_a_small_ring_never_serve_a_stale_value():
    # the transaction holds pushes while it writes MULTI..EXEC (reading replies on the way with frame_capacity 2):
    # the invalidations it held reach the cache before any later hit, and a hit never overtakes the transaction
    from microredis.cache import Cache
    a = _admin()
    a.set(P + b"k", b"0").wait()
    h = _h(cap=2)
    c = h.connect()
    cache = Cache(c, prefixes=(P,))
    try:
        for i in range(1, 6):
            eq(c.get(P + b"k").wait(), str(i - 1).encode())
            eq(c.get(P + b"k").wait(), str(i - 1).encode())
            a.set(P + b"s", str(i).encode()).wait()  # an invalidation on its way while the transaction is written
            with c.transaction() as t:
                x = t.incr(P + b"n")
                t.set(P + b"k", str(i).encode())
                y = t.get(P + b"s")
            eq(c.get(P + b"k").wait(), str(i).encode())  # the transaction is pending: a miss behind it
            eq((x.wait(), y.wait()), (i, str(i).encode()))
            eq(c.get(P + b"s").wait(), str(i).encode())
            eq(c.get(P + b"k").wait(), str(i).encode())
        ok(c.push_handler is cache._push)
    finally:
        cache.close()
        c.close()
        h.disconnect()
        a.close()


def test_cache_hit_inside_a_pipeline_whose_batch_was_partly_sent():
    # a pipeline() batch larger than the send buffer goes out in pieces: replies arrive while every pending command
    # still counts as unsent, and a hit's read must take them as replies (an intermediate fix of this review took
    # them for replies to nothing and dropped the connection)
    a = _admin()
    a.set(P + b"k", b"v").wait()
    from microredis.cache import Cache
    h = mr.ConnectionHandler(cfg.server(), 3).timeout(2000).memory(
        mr.MemoryParameters(buffer_size=64, frame_capacity=16, memory_limit=4096))
    c = h.connect()
    cache = Cache(c, prefixes=(P,))
    try:
        eq(c.get(P + b"k").wait(), b"v")
        with c.pipeline():
            fs = [c.set(P + b"s", b"x" * 12) for _ in range(10)]  # more than the 64-byte send buffer holds
            _sleep_ms(50)  # their replies arrive
            g = c.get(P + b"k")  # a hit, after reading them
        eq(g.wait(), b"v")
        eq([f.wait() for f in fs], [True] * 10)
        ok(c._conn is not None)
        eq(c.ping().wait(), True)
    finally:
        cache.close()
        c.close()
        h.disconnect()
        a.close()


# ---- a core bug found by this review (client.py / resp.py: owned by another helper, not fixed here) -------------


def test_a_push_ahead_of_a_get_into_reply_reaches_the_push_handler():
    a = _admin()
    h = _h()
    c = h.connect()
    try:
        seen = []
        c.push_handler = seen.append
        c.command(b"CLIENT", b"TRACKING", b"ON", b"BCAST", b"PREFIX", P).wait()
        a.set(P + b"s", b"12").wait()
        a.set(P + b"k", b"1").wait()  # its invalidation (40 bytes) waits in c's socket
        _sleep_ms(50)
        eq(c.get_into(P + b"s", bytearray(4)).wait(), 2)  # reads the push first: the head is this get_into()
        eq(c.ping().wait(), True)
        ok([b"invalidate", [P + b"k"]] in seen, repr(seen))
        c.push_handler = None
        c.command(b"CLIENT", b"TRACKING", b"OFF").wait()
    finally:
        c.close()
        h.disconnect()
        a.close()


def test_a_cache_invalidation_is_not_lost_behind_a_get_into():
    a = _admin()
    a.set(P + b"s", b"12").wait()
    a.set(P + b"k", b"old").wait()
    c, cache = _cache(a)
    try:
        eq(c.get(P + b"k").wait(), b"old")
        eq(c.get(P + b"k").wait(), b"old")
        a.set(P + b"k", b"new").wait()
        _sleep_ms(50)
        eq(c.get_into(b"t_rv2_untracked", bytearray(4)).wait(), None)  # the invalidation is read behind it
        eq(c.get(P + b"k").wait(), b"new")
    finally:
        cache.close()
        c.close()
        a.close()
