# The client-side cache (microredis/cache.py, RESP3 CLIENT TRACKING) against a real redis-server: hits without a
# round trip, invalidation by a second connection, FLUSHALL, size limit, eviction, hget(), re-dials, the
# invalidation-during-fetch race, zero allocation per hit, hits that never overtake a pending write, a pipeline, a
# transaction or an invalidation that has arrived. Plain MicroPython; runs under CPython too.
from tinytest import eq, ok, raises, skip, allocs, sleep_ms, IS_MICROPYTHON
from devkit import handler, admin, counting
import microredis as mr
from microredis.cache import Cache
from microredis.resp import Push

P = b"t_cache:"


def _settle():
    # an invalidation push is written to the cached connection after the writer's reply: give it time to land
    sleep_ms(50)


def _setup(data=None, **kw):
    # data: {key suffix: value} written before the cache starts (in BCAST mode every later write under the prefix
    # is an invalidation)
    a = admin(P + b"a", P + b"b", P + b"c", P + b"h", P + b"big", b"t_cache_other", P + b"k", P + b"n", P + b"s",
              P + b"w")
    for k, v in (data or {}).items():
        a.set(P + k, v).wait()
    h = handler()
    c = h.connect()
    if "prefixes" not in kw and "keys" not in kw:
        kw["prefixes"] = (P,)
    return a, c, Cache(c, **kw)


def test_resp2_and_bad_arguments_are_refused():
    c = handler(2).connect()
    e = raises(ValueError, Cache, c, prefixes=(P,))
    ok("RESP3" in str(e) and "resp3" in str(e), str(e))
    c.close()
    c = handler().connect()
    raises(ValueError, Cache, c)  # nothing named
    raises(ValueError, Cache, c, slots=0, prefixes=(P,))
    raises(ValueError, Cache, c, size=-1, prefixes=(P,))
    raises(TypeError, Cache, c, prefixes=(1,))
    raises(TypeError, Cache, c, keys=(b"",))
    cache = Cache(c, prefixes=(P,))
    raises(ValueError, Cache, c, prefixes=(P,))  # one cache per client
    cache.close()
    c.close()
    raises(mr.ConnectionError, Cache, c, prefixes=(P,))


def test_hits_skip_the_round_trip():
    a, c, cache = _setup({b"a": b"1"})
    w = counting(c)
    eq(c.get(P + b"a").wait(), b"1")
    eq((cache.hits, cache.misses), (0, 1))
    sends = w.sends
    for _ in range(5):
        eq(c.get(P + b"a").wait(), b"1")
    eq(w.sends, sends, "a hit sends nothing")
    eq((cache.hits, cache.misses), (5, 1))
    buf = bytearray(8)
    eq(c.get_into(P + b"a", buf).wait(), 1)
    eq(bytes(buf[:1]), b"1")
    eq(w.sends, sends)
    eq(cache.hits, 6)
    f = c.get(P + b"a")
    ok(f.ready())
    eq(f.wait(), b"1")
    # a key outside the prefix goes to the server every time, and counts as neither
    c.get(b"t_cache_other").wait()
    c.get(b"t_cache_other").wait()
    eq(w.sends, sends + 2)
    eq((cache.hits, cache.misses), (7, 1))
    cache.close()
    c.close()


def test_second_connection_write_is_seen_by_the_next_get():
    a, c, cache = _setup({b"a": b"old"})
    eq(c.get(P + b"a").wait(), b"old")
    eq(c.get(P + b"a").wait(), b"old")
    eq(cache.hits, 1)
    a.set(P + b"a", b"new").wait()
    _settle()
    eq(c.get(P + b"a").wait(), b"new")
    eq(cache.invalidations, 1)
    eq(c.get(P + b"a").wait(), b"new")
    eq((cache.hits, cache.misses), (2, 2))
    # a missing key is cached too (as None) and invalidated when it appears
    eq(c.get(P + b"b").wait(), None)
    eq(c.get(P + b"b").wait(), None)
    eq(cache.hits, 3)
    a.set(P + b"b", b"born").wait()
    _settle()
    eq(c.get(P + b"b").wait(), b"born")
    # this connection's own writes invalidate too (no NOLOOP by default)
    c.set(P + b"a", b"mine").wait()
    eq(c.get(P + b"a").wait(), b"mine")
    cache.close()
    c.close()


def test_own_write_not_waited_then_get_sees_it():
    # the reply of a SET nobody waited and its invalidation arrive together: the hit reads both before it answers
    a, c, cache = _setup({b"a": b"1"})
    eq(c.get(P + b"a").wait(), b"1")
    eq(c.get(P + b"a").wait(), b"1")
    f = c.set(P + b"a", b"2")
    _settle()
    eq(c.get(P + b"a").wait(), b"2")
    eq(f.wait(), True)
    f = c.incr(b"t_cache_n")  # a reply, then one more left buffered behind it, then the push
    g = c.set(P + b"a", b"3")
    _settle()
    eq(c.get(P + b"a").wait(), b"3")
    ok(f.wait() > 0)
    eq(g.wait(), True)
    c.command(b"DEL", b"t_cache_n").wait()
    cache.close()
    c.close()


def test_noloop_own_writes_do_not_invalidate():
    a, c, cache = _setup({b"a": b"1"}, noloop=True)
    eq(c.get(P + b"a").wait(), b"1")
    c.set(P + b"a", b"2").wait()
    _settle()
    eq(c.get(P + b"a").wait(), b"1")  # as documented: NOLOOP, so this connection's writes are not reported
    cache.invalidate(P + b"a")
    eq(c.get(P + b"a").wait(), b"2")
    a.set(P + b"a", b"3").wait()  # other connections' writes still are
    _settle()
    eq(c.get(P + b"a").wait(), b"3")
    cache.close()
    c.close()


def test_flushall_flushes_the_whole_cache():
    a, c, cache = _setup({b"a": b"1", b"b": b"2"})
    c.get(P + b"a").wait()
    c.get(P + b"b").wait()
    eq(sum(1 for k in cache._key if k is not None), 2)
    f0 = cache.flushes
    a.command(b"FLUSHALL").wait()
    _settle()
    eq(c.get(P + b"a").wait(), None)
    eq(c.get(P + b"b").wait(), None)
    eq(cache.flushes, f0 + 1)
    eq(cache.misses, 4)
    cache.close()
    c.close()


def test_value_larger_than_size_is_not_cached():
    a, c, cache = _setup({b"big": b"123456789", b"a": b"12345678"}, size=8)
    eq(c.get(P + b"big").wait(), b"123456789")
    eq(c.get(P + b"big").wait(), b"123456789")
    eq((cache.hits, cache.misses, cache.too_large), (0, 2, 2))
    eq(c.get(P + b"a").wait(), b"12345678")
    eq(c.get(P + b"a").wait(), b"12345678")
    eq(cache.hits, 1)
    # get_into: the fill copies the value from the caller's buffer; a hit copies into a buffer that fits, and one
    # that is too short gets the server's answer (MemoryFull, as without a cache)
    buf = bytearray(16)
    eq(c.get_into(P + b"big", buf).wait(), 9)
    eq(cache.too_large, 3)
    eq(c.get_into(P + b"a", buf).wait(), 8)
    raises(mr.MemoryFull, c.get_into(P + b"a", bytearray(4)).wait)
    eq(c.get(P + b"a").wait(), b"12345678")
    cache.close()
    c.close()


def test_eviction_round_robin_when_every_slot_is_taken():
    a, c, cache = _setup({b"a": b"a", b"b": b"b", b"c": b"c"}, slots=2)
    c.get(P + b"a").wait()
    c.get(P + b"b").wait()
    eq(cache.evictions, 0)
    c.get(P + b"c").wait()  # evicts slot 0 (a)
    eq(cache.evictions, 1)
    eq(c.get(P + b"b").wait(), b"b")
    eq(c.get(P + b"c").wait(), b"c")
    eq(cache.hits, 2)
    eq(c.get(P + b"a").wait(), b"a")  # a miss again; evicts slot 1 (b)
    eq((cache.hits, cache.misses, cache.evictions), (2, 4, 2))
    eq(c.get(P + b"c").wait(), b"c")
    eq(cache.hits, 3)
    cache.close()
    c.close()


def test_hget_is_cached_per_field_and_invalidated_by_key():
    a, c, cache = _setup()
    if not hasattr(c, "hset"):
        skip("needs the command catalogue")
    a.hset(P + b"h", mapping={b"f1": b"x", b"f2": b"y"}).wait()
    a.set(P + b"a", b"plain").wait()
    eq(c.hget(P + b"h", b"f1").wait(), b"x")
    eq(c.hget(P + b"h", b"f2").wait(), b"y")
    eq(c.hget(P + b"h", b"f1").wait(), b"x")
    eq(c.hget(P + b"h", b"f2").wait(), b"y")
    eq(c.hget(P + b"h", b"nofield").wait(), None)
    eq(c.hget(P + b"h", b"nofield").wait(), None)
    eq((cache.hits, cache.misses), (3, 3))
    eq(c.get(P + b"a").wait(), b"plain")  # get and hget slots do not mix
    a.hset(P + b"h", b"f2", b"z").wait()
    _settle()
    eq(c.hget(P + b"h", b"f1").wait(), b"x")  # every field of the key went
    eq(c.hget(P + b"h", b"f2").wait(), b"z")
    eq(cache.misses, 6)
    eq(c.get(P + b"a").wait(), b"plain")
    eq(cache.hits, 4)
    cache.close()
    c.close()


def test_keys_mode_caches_only_the_named_keys():
    a, c, cache = _setup({b"a": b"1", b"c": b"3"}, keys=(P + b"a", (P + b"b").decode()))
    w = counting(c)
    for _ in range(3):
        eq(c.get(P + b"a").wait(), b"1")
        eq(c.get(P + b"c").wait(), b"3")
    eq((cache.hits, cache.misses), (2, 1))
    eq(w.sends, 4)  # one GET of a, three of c
    a.set(P + b"a", b"2").wait()  # the server tracks what this connection read
    _settle()
    eq(c.get(P + b"a").wait(), b"2")
    eq(c.get((P + b"a").decode()).wait(), b"2")  # str keys work too (encoded, so they allocate)
    eq((cache.hits, cache.misses, cache.invalidations), (3, 2, 1))
    cache.close()
    c.close()


def test_invalidation_during_the_fetch_drops_the_fill():
    a, c, cache = _setup({b"a": b"v1", b"b": b"w1"})
    # a GET queued behind a blocking command: another connection's write lands (and its invalidation comes)
    # while the GET is in flight; the reply must not be kept
    if not hasattr(c, "blpop"):
        skip("needs the command catalogue")
    with c.pipeline():
        fb = c.blpop([P + b"c"], timeout=2)
        fg = c.get(P + b"a")
    sleep_ms(20)
    a.set(P + b"a", b"v2").wait()
    a.rpush(P + b"c", b"go").wait()
    eq(fb.wait(), (P + b"c", b"go"))
    eq(fg.wait(), b"v2")
    ok(cache.invalidations >= 1)  # a (and the list c: BCAST tells about every key under the prefix)
    eq(c.get(P + b"a").wait(), b"v2")
    eq((cache.hits, cache.misses), (0, 2))
    eq(c.get(P + b"a").wait(), b"v2")
    eq(cache.hits, 1)
    # the same race, the invalidation put in by hand between the send and the reply
    f = c.get(P + b"b")
    cache._push(Push([b"invalidate", [P + b"b"]]))
    eq(f.wait(), b"w1")
    ok(P + b"b" not in cache._key)
    cache.close()
    c.close()


def test_unwaited_miss_fills_and_error_replies_do_not_shift_fills():
    a, c, cache = _setup({b"a": b"1"})
    a.hset(P + b"h", b"f", b"x").wait()
    f1 = c.get(P + b"h")  # WRONGTYPE: an error reply is never converted, its fill record is stale
    f2 = c.get(P + b"a")
    f3 = c.command(b"PING")
    eq(f3.wait(), b"PONG")  # reads the replies of f1 and f2 without waiting them
    eq(c.get(P + b"a").wait(), b"1")
    eq(cache.hits, 1)
    raises(mr.ReplyError, f1.wait)
    eq(f2.wait(), b"1")
    ok(P + b"h" not in cache._key)
    cache.close()
    c.close()


def test_other_pushes_go_to_the_previous_handler_and_close_restores():
    h = handler()
    c = h.connect()
    seen = []
    c.push_handler = seen.append
    cache = Cache(c, prefixes=(P,))
    cache._push(Push([b"other", b"x"]))
    eq(seen, [[b"other", b"x"]])
    cache.close()
    ok(c.push_handler is not None)
    c.push_handler(1)
    eq(seen[-1], 1)
    w = counting(c)
    c.get(P + b"a").wait()
    c.get(P + b"a").wait()
    eq(w.sends, 2)  # no cache any more
    eq(cache.hits, 0)
    Cache(c, prefixes=(P,)).close()  # a second cache on the same connection (CLIENT TRACKING OFF first)
    c.close()


def test_redial_flushes_and_tracks_again():
    a = admin()
    a.set(P + b"a", b"1").wait()
    h = handler().retry(backoff_ms=50)
    c = h.connect()
    cache = Cache(c, prefixes=(P,))
    eq(c.get(P + b"a").wait(), b"1")
    eq(c.get(P + b"a").wait(), b"1")
    eq(cache.hits, 1)
    cid = c.command(b"CLIENT", b"ID").wait()
    eq(a.command(b"CLIENT", b"KILL", b"ID", cid).wait(), 1)
    a.set(P + b"a", b"2").wait()  # while the cached connection is gone: its invalidation is lost
    _settle()
    flushes = cache.flushes
    # the next hit finds the connection lost: the cache is flushed and the get() re-dials (h.retry())
    eq(c.get(P + b"a").wait(), b"2")
    eq(h.reconnects, 1)
    ok(cache.flushes > flushes)
    eq(c.get(P + b"a").wait(), b"2")  # tracking on the new connection, then cached
    eq(c.get(P + b"a").wait(), b"2")
    ok(cache.hits >= 2)
    a.set(P + b"a", b"3").wait()  # invalidations reach the new connection
    _settle()
    eq(c.get(P + b"a").wait(), b"3")
    # a re-dial noticed by another command first: the next get() flushes and tracks again as well
    eq(a.command(b"CLIENT", b"KILL", b"ID", c.command(b"CLIENT", b"ID").wait()).wait(), 1)
    raises(mr.ConnectionError, c.command(b"PING").wait)
    eq(c.command(b"PING").wait(), b"PONG")  # re-dialled by a command the cache does not see
    eq(h.reconnects, 2)
    a.set(P + b"a", b"4").wait()
    _settle()
    eq(c.get(P + b"a").wait(), b"4")
    eq(c.get(P + b"a").wait(), b"4")
    a.set(P + b"a", b"5").wait()
    _settle()
    eq(c.get(P + b"a").wait(), b"5")
    cache.close()
    c.close()


def test_a_get_resent_by_retry_on_is_not_cached_from_the_old_tracking():
    a = admin()
    a.command(b"DEL", P + b"l").wait()
    a.set(P + b"a", b"1").wait()
    h = handler().retry(backoff_ms=50, retry_on=(b"GET",))
    c = h.connect()
    if not hasattr(c, "blpop"):
        skip("needs the command catalogue")
    cache = Cache(c, prefixes=(P,))
    cid = c.command(b"CLIENT", b"ID").wait()
    with c.pipeline():
        fb = c.blpop([P + b"l"], timeout=5)  # keeps the GET behind it unanswered
        f = c.get(P + b"a")
    sleep_ms(20)
    eq(a.command(b"CLIENT", b"KILL", b"ID", cid).wait(), 1)
    a.set(P + b"a", b"2").wait()
    raises(mr.ConnectionError, fb.wait)
    eq(f.wait(), b"2")  # re-sent once on the new connection (retry_on), which has no tracking yet
    eq(h.reconnects, 1)
    ok(P + b"a" not in cache._key)
    eq(c.get(P + b"a").wait(), b"2")  # tracks again, then caches
    eq(c.get(P + b"a").wait(), b"2")
    eq(cache.hits, 1)
    a.set(P + b"a", b"3").wait()
    _settle()
    eq(c.get(P + b"a").wait(), b"3")
    cache.close()
    c.close()


def test_a_new_client_from_connect_takes_the_cache_with_bind():
    a, c, cache = _setup({b"a": b"1"})
    c.close()
    h = handler()
    c = h.connect()
    cache.bind(c)
    eq(c.get(P + b"a").wait(), b"1")
    c2 = h.connect()  # the same socket, a new Client: the old one is closed
    raises(mr.ConnectionError, c.get, P + b"a")  # (no cache for a closed client: it says so)
    cache.bind(c2)
    misses = cache.misses
    eq(c2.get(P + b"a").wait(), b"1")  # emptied by bind()
    eq(c2.get(P + b"a").wait(), b"1")
    eq(cache.misses, misses + 1)
    a.set(P + b"a", b"2").wait()
    _settle()
    eq(c2.get(P + b"a").wait(), b"2")
    cache.close()
    c2.close()


def test_decode_responses_caches_str():
    a = admin()
    a.set(P + b"a", "é").wait()
    h = handler().decode_responses()
    c = h.connect()
    cache = Cache(c, prefixes=(P,))
    eq(c.get(P + b"a").wait(), "é")
    eq(c.get(P + b"a").wait(), "é")
    eq(cache.hits, 1)
    buf = bytearray(4)
    eq(c.get_into(P + b"a", buf).wait(), 2)  # get_into() is not cached with decode_responses: bytes, not str
    eq(cache.hits, 1)
    a.set(P + b"a", "x").wait()
    _settle()
    eq(c.get(P + b"a").wait(), "x")
    eq(cache.invalidations, 1)
    cache.close()
    c.close()


def test_a_push_handler_set_later_stays_behind_the_cache():
    a, c, cache = _setup({b"a": b"1"})
    eq(c.get(P + b"a").wait(), b"1")
    seen = []
    c.push_handler = seen.append  # replaces the cache's handler: invalidations would reach only this one
    a.set(P + b"a", b"2").wait()
    _settle()
    c.command(b"PING").wait()  # the invalidation is read now, by the application's handler
    eq(len(seen), 1)
    eq(c.get(P + b"a").wait(), b"2")  # the cache noticed, took its place back and flushed
    ok(c.push_handler is not seen.append)
    cache._push(Push([b"other"]))
    eq(seen[-1], [b"other"])
    a.set(P + b"a", b"3").wait()
    _settle()
    eq(c.get(P + b"a").wait(), b"3")
    eq(len(seen), 2)
    cache.close()
    ok(c.push_handler == seen.append)
    c.close()


def test_a_hit_inside_a_pipeline_leaves_the_batch_queued():
    a, c, cache = _setup({b"a": b"1"})
    eq(c.get(P + b"a").wait(), b"1")
    w = counting(c)
    with c.pipeline():
        f1 = c.set(b"t_cache_other", b"x")
        f2 = c.get(P + b"a")
        ok(f2.ready())
        f3 = c.incr(b"t_cache_n")
        eq(w.sends, 0)
    eq(w.sends, 1)
    eq((f1.wait(), f2.wait(), f3.wait() > 0), (True, b"1", True))
    eq(cache.hits, 1)
    c.command(b"DEL", b"t_cache_n").wait()
    cache.close()
    c.close()


class _S:
    pass


S = _S()


def _hits():
    c = S.c
    for _ in range(20):
        S.res[0] = c.get(S.key).wait()
        S.res[1] = c.get_into(S.key, S.buf).wait()
        S.res[2] = c.hget(S.hkey, S.field).wait()


def _into():
    c = S.c
    for _ in range(20):
        S.res[1] = c.get_into(S.key, S.buf).wait()


def test_a_hit_allocates_nothing():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    a, c, cache = _setup({b"a": b"21.5"})
    if not hasattr(c, "hset"):
        skip("needs the command catalogue")
    a.hset(P + b"h", b"f", b"on").wait()
    S.c = c
    S.key = P + b"a"
    S.hkey = P + b"h"
    S.field = b"f"
    S.buf = bytearray(16)
    S.res = [None, None, None]
    _settle()
    _hits()
    _hits()
    misses = cache.misses
    eq(allocs(_hits), 0)
    eq(S.res, [b"21.5", 4, b"on"])
    eq(cache.misses, misses)
    # not even transient heap traffic (bytecode frames taken from the heap and freed): micropython.mem_total()
    import micropython
    m = micropython.mem_total()
    _hits()
    eq(micropython.mem_total() - m, 0)
    # a key the cache does not track costs what it costs without a cache: nothing for get_into()
    S.key = b"t_cache_other"
    a.set(S.key, b"x").wait()
    _into()
    eq(allocs(_into), 0)
    eq(S.res[1], 1)
    cache.close()
    c.close()


# ---- a hit never overtakes what is pending or has arrived: own writes, pipelines, transactions, get_into() --------
def test_cache_hit_never_overtakes_this_clients_own_pending_write():
    # c.set(k, v) then c.get(k) without waiting the SET (implicit pipelining): the hit must not answer at once with
    # the old value while the SET's reply and invalidation are still on their way (stale most of the time on loopback)
    a, c, cache = _setup({b"k": b"0"})
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
    # inside pipeline() the hit must still make its non-blocking read (the batch is unsent), so that an invalidation
    # already in the socket is applied and the old value is not served
    a, c, cache = _setup({b"k": b"old"})
    try:
        eq(c.get(P + b"k").wait(), b"old")
        eq(c.get(P + b"k").wait(), b"old")
        a.set(P + b"k", b"new").wait()
        _settle()  # the invalidation has reached c's socket
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


def test_cache_get_into_a_read_only_memoryview_is_refused_like_the_core():
    # a cached missing key (None) must refuse a read-only memoryview with the TypeError the core raises
    a, c, cache = _setup()
    try:
        eq(c.get(P + b"k").wait(), None)
        eq(c.get(P + b"k").wait(), None)  # cached
        raises(TypeError, c.get_into, P + b"k", memoryview(b"zz"))
        eq(c.get_into(P + b"k", memoryview(bytearray(2))).wait(), None)
    finally:
        cache.close()
        c.close()
        a.close()


def test_cache_hit_reads_every_invalidation_that_has_arrived():
    # 17 invalidation pushes of 64 bytes wait in the socket, the last one for the cached key; a GET of another key
    # is pending. The hit's read must not stop when its first receive (512 bytes: exactly 8 pushes) is used up
    # because a reply is pending: the invalidation of the cached key has arrived, the old value must not be served
    key = (P + b"k" * 32)[:32]  # a push of 64 bytes
    a, c, cache = _setup({key[len(P):]: b"old"})
    try:
        eq(c.get(key).wait(), b"old")
        eq(c.get(key).wait(), b"old")
        for i in range(16):
            a.set((P + b"pad%02d" % i + b"-" * 32)[:32], b"x").wait()  # one push each (one per event loop turn)
        a.set(key, b"new").wait()
        sleep_ms(100)
        f = c.get(b"t_cache_other")
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
    a = admin(P + b"k", P + b"n", P + b"s", P + b"w")
    a.set(P + b"k", b"0").wait()
    h = handler(mem=mr.MemoryParameters(buffer_size=256, frame_capacity=2, memory_limit=4096))
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
    # still counts as unsent, and a hit's read must take them as replies (not as replies to nothing, which dropped
    # the connection)
    a = admin(P + b"k", P + b"n", P + b"s", P + b"w")
    a.set(P + b"k", b"v").wait()
    h = handler(mem=mr.MemoryParameters(buffer_size=64, frame_capacity=16, memory_limit=4096))
    c = h.connect()
    cache = Cache(c, prefixes=(P,))
    try:
        eq(c.get(P + b"k").wait(), b"v")
        with c.pipeline():
            fs = [c.set(P + b"s", b"x" * 12) for _ in range(10)]  # more than the 64-byte send buffer holds
            sleep_ms(50)  # their replies arrive
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


def test_a_cache_invalidation_is_not_lost_behind_a_get_into():
    a, c, cache = _setup({b"s": b"12", b"k": b"old"})
    try:
        eq(c.get(P + b"k").wait(), b"old")
        eq(c.get(P + b"k").wait(), b"old")
        a.set(P + b"k", b"new").wait()
        _settle()
        eq(c.get_into(b"t_cache_untracked", bytearray(4)).wait(), None)  # the invalidation is read behind it
        eq(c.get(P + b"k").wait(), b"new")
    finally:
        cache.close()
        c.close()
        a.close()
