# MicroPython side of the benchmark (run by bench/run.py; not a test).
# usage: micropython mp_bench.py HOST PORT ROUNDS TARGET_MS
# Needs microredis and the peer (uredis, micropython-redis 0.0.57) on MICROPYPATH.
# Prints one line: RESULT <json>.
import sys
import gc
import json
import time
import micropython
import microredis as mr
import uredis

HOST = sys.argv[1]
PORT = int(sys.argv[2])
ROUNDS = int(sys.argv[3])
TARGET_US = int(sys.argv[4]) * 1000

KEY = b"bench:k"
CTR = b"bench:ctr"
CH = b"bench:ch"
VAL = b"21.50"
KEYS = [b"bench:b%d" % i for i in range(16)]
OPS = ("set", "get", "incr", "publish", "batch16")
CMDS = {"batch16": 16}  # commands per call of an op (default 1)


class Microredis:
    def __init__(self):
        h = mr.ConnectionHandler.resp3((HOST, PORT))
        # frame_capacity=16 so that a batch of 16 fits (the default, 8, reads replies mid-batch)
        h.memory(mr.MemoryParameters(frame_capacity=16))
        self.c = h.connect()
        self.buf = bytearray(16)
        self.fs = [None] * 16

    def set(self):
        return self.c.set(KEY, VAL).wait()

    def get(self):
        return self.c.get_into(KEY, self.buf).wait()

    def incr(self):
        return self.c.incr(CTR).wait()

    def publish(self):
        return self.c.publish(CH, VAL).wait()

    def batch16(self):
        c = self.c
        fs = self.fs
        with c.pipeline():
            for i in range(16):
                fs[i] = c.set(KEYS[i], VAL)
        for i in range(16):
            fs[i].wait()
            fs[i] = None
        return True

    def count(self, tally):
        # transport level (as tests_device/t_client.py's Counting), then the raw socket and poll objects under it
        t = self.c._transport
        self.c._transport = self.c._encoder.sink = Count(t, tally, "t.")
        t._s = Count(t._s, tally, "")
        t._rp = Count(t._rp, tally, "")
        t._wp = Count(t._wp, tally, "")

        def undo():
            t._s = t._s.o
            t._rp = t._rp.o
            t._wp = t._wp.o
            self.c._transport = self.c._encoder.sink = t
        return undo


class Peer:
    # micropython-redis has no pipeline API: its batch is run_command x16, then get_response x16.
    def __init__(self, nodelay):
        self.r = uredis.Redis(HOST, PORT)
        if nodelay:  # bench-side setsockopt (IPPROTO_TCP 6, TCP_NODELAY 1); the peer's code is unchanged
            self.r.connection.socket.setsockopt(6, 1, 1)

    def set(self):
        return self.r.set(KEY, VAL)

    def get(self):
        return self.r.get(KEY)

    def incr(self):
        return self.r.incr(CTR)

    def publish(self):
        return self.r.publish(CH, VAL)

    def batch16(self):
        r = self.r
        for k in KEYS:
            r.run_command("SET", k, VAL)
        ok = True
        for k in KEYS:
            ok = r.get_response() == b"OK" and ok
        return ok

    def count(self, tally):
        conn = self.r.connection
        s = conn.socket
        conn.socket = Count(s, tally, "")

        def undo():
            conn.socket = s
        return undo


class Count:
    """Proxy that counts method calls by name into tally (allocates: use only in the counting pass)."""

    def __init__(self, o, tally, prefix):
        self.o = o
        self.tally = tally
        self.prefix = prefix

    def __getattr__(self, name):
        f = getattr(self.o, name)
        tally = self.tally
        key = self.prefix + name

        def w(*a):
            tally[key] = tally.get(key, 0) + 1
            return f(*a)
        return w


def check(lib, expect):
    for op in OPS:
        got = getattr(lib, op)()
        if got != expect[op] and not (op == "incr" and type(got) is int):
            raise AssertionError("%s.%s returned %r" % (type(lib).__name__, op, got))


def allocs(fn, n):
    """(heap traffic, garbage) in bytes over n calls: micropython.mem_total() delta (every byte requested,
    including short-lived blocks freed at once, such as large bytecode frames) and gc.mem_alloc() delta with gc
    off (blocks still held after the calls: garbage, what makes the GC run)."""
    for _ in range(3):
        fn()
    gc.collect()
    gc.disable()
    try:
        t0 = micropython.mem_total()
        a0 = gc.mem_alloc()
        for _ in range(n):
            fn()
        a1 = gc.mem_alloc()
        t1 = micropython.mem_total()
    finally:
        gc.enable()
    return t1 - t0, a1 - a0


def timed(fn, n):
    # Each chunk starts on a clean heap: the peer leaves ~2 kB of garbage per command, and microredis's short-lived
    # frame allocations (see allocs) would otherwise pay for the collections that garbage forces.
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t0)


def calibrate(fn):
    n = 1
    while True:
        us = timed(fn, n)
        if us * 4 >= TARGET_US:
            return max(1, n * TARGET_US // max(us, 1))
        n *= 2


def main():
    libs = {"microredis": Microredis(), "peer": Peer(nodelay=False), "peer_nodelay": Peer(nodelay=True)}
    check(libs["microredis"], {"set": True, "get": 5, "incr": 0, "publish": 0, "batch16": True})
    check(libs["peer_nodelay"], {"set": True, "get": VAL, "incr": 0, "publish": 0, "batch16": True})
    v = sys.implementation.version
    out = {"micropython": "%d.%d.%d (%s)" % (v[0], v[1], v[2], sys.version.split("; ")[-1]), "microredis": mr.__version__, "peer": uredis.__version__,
           "alloc": {}, "calls": {}, "rate": {}, "n": {}}
    # allocations and socket calls: the peer's TCP_NODELAY instance only (the socket option changes neither)
    for name in ("microredis", "peer_nodelay"):
        lib = libs[name]
        out["alloc"][name] = {}
        out["calls"][name] = {}
        for op in OPS:
            fn = getattr(lib, op)
            k = CMDS.get(op, 1)
            n = 64 // k * 4
            tot, held = allocs(fn, n)
            out["alloc"][name][op] = (tot / (n * k), held / (n * k))
            tally = {}
            undo = lib.count(tally)
            try:
                for _ in range(n):
                    fn()
            finally:
                undo()
            out["calls"][name][op] = {key: v / (n * k) for key, v in tally.items()}
    # throughput: per op, the libraries take turns (the first one rotates every round); median later
    names = list(libs)
    fns = {(name, op): getattr(libs[name], op) for name in names for op in OPS}
    reps = {key: calibrate(fn) for key, fn in fns.items()}
    out["n"] = {"%s.%s" % key: v for key, v in reps.items()}
    for name in names:
        out["rate"][name] = {op: [] for op in OPS}
    for rnd in range(ROUNDS):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for op in OPS:
            for name in order:
                n = reps[(name, op)]
                us = timed(fns[(name, op)], n)
                out["rate"][name][op].append(n * CMDS.get(op, 1) * 1000000 / us)
    print("RESULT " + json.dumps(out))


main()
