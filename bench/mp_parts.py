# Per-operation costs of microredis's optional parts on MicroPython (run by bench/run.py; not a test).
# usage: micropython mp_parts.py HOST PORT ROUNDS N_ALLOC N_TIME
#   per round: heap traffic (micropython.mem_total delta) per op over N_ALLOC ops, garbage (gc.mem_alloc delta,
#   gc off); and timed chunks of N_TIME ops, the two sides of a ratio alternated (who goes first
#   rotates), each chunk on a clean heap:
#   aio: an awaited SET (microredis.aio) against set().wait() of a sync Client in the same process;
#   tx: a transaction of SET, INCR, GET, then its three results waited; script: an INCRBY script's run().wait();
#   cache: a get() hit of a Cache (slots=8, size=64, keys=(k,)) against get() round trips of an uncached Client;
#   outbox: one reading add()ed and pump()ed on the client (RAM outbox); inbox: next() of a small entry and done(),
#   on the client (the entries added beforehand by another client, in one pipeline).
# Prints one line: RESULT <json>, every figure a list with one value per round.
import sys
import gc
import json
import time
import micropython

if ".frozen" not in sys.path:
    sys.path.append(".frozen")  # the port's asyncio is frozen in; the bench's MICROPYPATH leaves it out
import asyncio
import microredis as mr
from microredis import aio
from microredis.cache import Cache

ADDR = (sys.argv[1], int(sys.argv[2]))
ROUNDS = int(sys.argv[3])
N_ALLOC = int(sys.argv[4])
N_TIME = int(sys.argv[5])
KEY = b"bench:parts:k"
CKEY = b"bench:parts:c"
CTR = b"bench:parts:n"
OKEY = b"bench:parts:out"
IKEY = b"bench:parts:in"
VAL = b"21.50"
INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
ticks = time.ticks_us
diff = time.ticks_diff
memt = micropython.mem_total


def client():
    return mr.ConnectionHandler.resp3(ADDR).timeout(5000).connect()


def measure(fn, n):
    # (heap traffic, garbage) per call, gc off; three warm-up calls first (pools, buffers)
    for _ in range(3):
        fn()
    gc.collect()
    gc.disable()
    try:
        t0 = memt()
        a0 = gc.mem_alloc()
        for _ in range(n):
            fn()
        a1 = gc.mem_alloc()
        t1 = memt()
    finally:
        gc.enable()
    return (t1 - t0) / n, (a1 - a0) / n


def timed(fn, n):
    gc.collect()
    t0 = ticks()
    for _ in range(n):
        fn()
    return diff(ticks(), t0)


async def aset(c, n):
    for _ in range(n):
        await c.set(KEY, VAL)


async def aio_part(out, sync):
    def sync_set():
        sync.set(KEY, VAL).wait()

    async with await aio.connect(mr.ConnectionHandler.resp3(ADDR).timeout(5000)) as c:
        await aset(c, 20)
        heap, garbage, ratio = [], [], []
        for rnd in range(ROUNDS):
            gc.collect()
            gc.disable()
            try:
                t0 = memt()
                a0 = gc.mem_alloc()
                await aset(c, N_ALLOC)
                a1 = gc.mem_alloc()
                t1 = memt()
            finally:
                gc.enable()
            heap.append((t1 - t0) / N_ALLOC)
            garbage.append((a1 - a0) / N_ALLOC)
            us = {}
            for side in (("aio", "sync") if rnd % 2 == 0 else ("sync", "aio")):
                gc.collect()
                s0 = ticks()
                if side == "aio":
                    await aset(c, N_TIME)
                else:
                    for _ in range(N_TIME):
                        sync_set()
                us[side] = diff(ticks(), s0)
            ratio.append(us["aio"] / us["sync"])
    out["aio_heap"], out["aio_garbage"], out["aio_time"] = heap, garbage, ratio


def main():
    v = sys.implementation.version
    out = {"micropython": "%d.%d.%d" % (v[0], v[1], v[2]), "n_alloc": N_ALLOC, "n_time": N_TIME}
    sync = client()
    sync.delete(KEY, CKEY, CTR, OKEY, IKEY).wait()
    asyncio.run(aio_part(out, sync))

    def tx():
        with sync.transaction() as t:
            a = t.set(KEY, VAL)
            b = t.incr(CTR)
            d = t.get(KEY)
        a.wait()
        b.wait()
        d.wait()

    script = sync.register_script(INCR_BY)

    def run_script():
        script.run(keys=[CTR], args=[1]).wait()

    sync.set(CKEY, VAL).wait()
    cached = client()
    cache = Cache(cached, slots=8, size=64, keys=(CKEY,))
    if cached.get(CKEY).wait() != VAL:  # the miss that fills the slot
        raise AssertionError("cache fill")

    def hit():
        cached.get(CKEY).wait()

    def plain_get():
        sync.get(CKEY).wait()

    box = mr.Outbox(mr.ConnectionHandler.resp3(ADDR), OKEY, capacity=8, maxlen=100)
    reading = {b"temp": VAL, b"seq": 7}  # the same dict every time: the outbox keeps it until delivered

    def outbox():
        box.add(reading)
        if box.pump(0, sync) != 1:
            raise AssertionError("outbox: %r" % (box.last_error,))

    inbox = mr.Inbox(mr.ConnectionHandler.resp3(ADDR), IKEY, b"g", b"bench", count=4, block_ms=0)
    prod = client()
    with prod.pipeline():
        for _ in range(ROUNDS * (N_ALLOC + 3) + 8):
            prod.command(b"XADD", IKEY, b"*", b"cmd", b"led on")
    prod.command(b"PING").wait()
    prod.close()

    def inbox_step():
        e = inbox.next(0, sync)
        if e is None:
            raise AssertionError("inbox: %r" % (inbox.last_error,))
        inbox.done(e, sync)

    for name in ("tx", "script", "cache", "outbox", "inbox"):
        out[name + "_heap"], out[name + "_garbage"] = [], []
    out["cache_rate"] = []
    for rnd in range(ROUNDS):
        h0 = cache.hits
        for name, fn in (("tx", tx), ("script", run_script), ("cache", hit), ("outbox", outbox),
                         ("inbox", inbox_step)):
            heap, garbage = measure(fn, N_ALLOC)
            out[name + "_heap"].append(heap)
            out[name + "_garbage"].append(garbage)
        us = {}
        for side in (("hit", "get") if rnd % 2 == 0 else ("get", "hit")):
            us[side] = timed(hit if side == "hit" else plain_get, N_TIME)
        if cache.hits - h0 != N_ALLOC + 3 + N_TIME:
            raise AssertionError("not every cached get() was a hit: %d of %d" % (cache.hits - h0, N_ALLOC + 3 + N_TIME))
        out["cache_rate"].append(us["get"] / us["hit"])  # hits/s over GETs/s
    cache.close()
    sync.delete(KEY, CKEY, CTR, OKEY, IKEY).wait()
    print("RESULT " + json.dumps(out))


main()
