# Zero-allocation proof for the client steady state (MicroPython only), against a real redis-server:
# set().wait(), get_into().wait(), incr().wait(), publish().wait() and a pipelined batch of 16 SETs.
from tinytest import eq, ok, skip, allocs, IS_MICROPYTHON
from devkit import handler
import microredis as mr

SMALL_HEAP = False  # the full client does not fit a 64k x64 heap from .mpy (freeze it)


class _S:
    pass


S = _S()


def _setup():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    h = handler(3, 2000, mr.MemoryParameters(buffer_size=256, frame_capacity=16, memory_limit=1024))
    S.h = h
    S.c = h.connect()
    S.key = b"t_alloc:temp"
    S.ctr = b"t_alloc:count"
    S.ch = b"t_alloc:chan"
    S.val = bytearray(b"21.50")
    S.buf = bytearray(16)
    S.keys = [b"t_alloc:b%d" % i for i in range(16)]
    S.futs = [None] * 16
    S.res = [None] * 8
    S.ok = True


def _set():
    S.res[0] = S.c.set(S.key, S.val).wait()


def _get_into():
    S.res[1] = S.c.get_into(S.key, S.buf).wait()


def _incr():
    S.res[2] = S.c.incr(S.ctr).wait()


def _publish():
    S.res[3] = S.c.publish(S.ch, S.val).wait()


def _batch():
    c = S.c
    fs = S.futs
    with c.pipeline():
        for i in range(16):
            fs[i] = c.set(S.keys[i], S.val)
    good = True
    for i in range(16):
        if fs[i].wait() is not True:
            good = False
        fs[i] = None
    S.ok = good


def _check(fn, name):
    for _ in range(3):
        fn()
    n = allocs(fn)
    eq(n, 0, "%s allocated %d bytes" % (name, n))


def test_set_wait_allocates_nothing():
    _setup()
    _check(_set, "set().wait()")
    eq(S.res[0], True)


def test_get_into_wait_allocates_nothing():
    _setup()
    _set()
    _check(_get_into, "get_into().wait()")
    eq(S.res[1], 5)
    eq(bytes(S.buf[:5]), b"21.50")


def test_incr_wait_allocates_nothing():
    _setup()
    _check(_incr, "incr().wait()")
    ok(S.res[2] > 3)


def test_publish_wait_allocates_nothing():
    _setup()
    _check(_publish, "publish().wait()")
    eq(S.res[3], 0)


def test_pipelined_batch_of_16_sets_allocates_nothing():
    _setup()
    _check(_batch, "16 pipelined SETs")
    ok(S.ok)


def test_batch_of_16_at_default_frame_capacity_allocates_nothing():
    # 16 futures held at once with only 8 reply slots: the pool keeps twice frame_capacity recycled futures
    _setup()
    h = handler()
    S.c = h.connect()
    eq(S.c._cap, 8)
    _check(_batch, "16 pipelined SETs at frame_capacity 8")
    ok(S.ok)


def test_thousand_mixed_rounds_allocate_nothing():
    _setup()

    def rounds():
        for _ in range(250):
            _set()
            _get_into()
            _incr()
            _publish()
    rounds()
    eq(allocs(rounds), 0)
    S.c.command(b"DEL", S.key, S.ctr, *S.keys).wait()


def test_catalogue_commands_heap_traffic_per_command():
    # Issue 16: at most 0.5 KB of heap traffic per catalogue command (x64; frames included). Before: ping() 2080 B,
    # command(b"PING") 1885 B, hset() 1080 B (the reader's frames per element and per reply, _cmd/_begin's, one
    # Encoder.arg frame per argument); now 256, 61, 96 B (ping's is its conversion's _resolve_slow frame).
    from devkit import heap_per_call
    _setup()
    c = S.c
    k = b"t_alloc:hash"

    def ping():
        S.res[4] = c.ping().wait()

    def command():
        S.res[5] = c.command(b"PING").wait()

    def hset():
        S.res[6] = c.hset(k, b"f", S.val).wait()

    for fn, name in ((ping, "ping()"), (command, 'command(b"PING")'), (hset, "hset(k, f, v)")):
        n = heap_per_call(fn)
        print("    %s: %d B of heap traffic per command" % (name, n))
        ok(n <= 512, "%s: %d bytes of heap traffic per command" % (name, n))
    eq(S.res[4:7], [True, b"PONG", 0])
    c.command(b"DEL", k).wait()
