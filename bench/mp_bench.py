# MicroPython side of the speed benchmark (run by bench/run.py; not a test).
# usage: micropython mp_bench.py HOST PORT MODE ROUNDS TARGET_MS LIBS
#   MODE rate: per round and per op, every library runs one timed chunk (who goes first rotates), ops/s per chunk
#   MODE alloc: heap traffic (micropython.mem_total delta) and garbage (gc.mem_alloc delta, gc off) per command
#   MODE mark: each (library, op) runs about ROUNDS commands between marker writes to /dev/null, for strace
#   MODE nagle: SET only, for the peers as shipped (no TCP_NODELAY) against microredis and the NODELAY peers
# LIBS: comma-separated subset of raw,microredis,picoredis,uredis (the ones whose import fails are skipped).
# Prints one line: RESULT <json>.
import sys
import gc
import json
import time
import socket
import micropython

HOST = sys.argv[1]
PORT = int(sys.argv[2])
MODE = sys.argv[3]
ROUNDS = int(sys.argv[4])
TARGET_US = int(sys.argv[5]) * 1000
WANT = sys.argv[6].split(",")

KEY = b"bench:k"
CTR = b"bench:ctr"
RAWCTR = b"bench:rawctr"
CH = b"bench:ch"
VAL = b"21.50"
KEYS16 = [b"bench:b%d" % i for i in range(16)]
KEYS100 = [b"bench:b%d" % i for i in range(100)]
OPS = ("set", "get", "get_into", "incr", "publish", "p16", "p100")
CMDS = {"p16": 16, "p100": 100}  # commands per call of an op (default 1)


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def nodelay(s):
    s.setsockopt(6, 1, 1)  # IPPROTO_TCP 6, TCP_NODELAY 1 (Linux and lwIP); the unix port names neither


class Raw:
    """The floor: a pre-encoded command, one write, one readinto of exactly the reply's length."""

    def __init__(self):
        s = socket.socket()
        s.connect(socket.getaddrinfo(HOST, PORT)[0][-1])
        nodelay(s)
        self.s = s
        s.write(resp(b"SET", RAWCTR, b"1000000"))  # INCR replies stay 10 bytes (":1000001\r\n") for 8999999 ops
        s.readinto(bytearray(5))
        self.q = {}
        for op, cmd, reply in (
                ("set", resp(b"SET", KEY, VAL), 5), ("get", resp(b"GET", KEY), 11), ("incr", resp(b"INCR", RAWCTR), 10),
                ("publish", resp(b"PUBLISH", CH, VAL), 4),
                ("p16", b"".join(resp(b"SET", k, VAL) for k in KEYS16), 80),
                ("p100", b"".join(resp(b"SET", k, VAL) for k in KEYS100), 500)):
            self.q[op] = (cmd, bytearray(reply))
        self.q["get_into"] = self.q["get"]
        for op in OPS:
            setattr(self, op, self._op(op))

    def _op(self, op):
        s = self.s
        cmd, buf = self.q[op]

        def run():
            s.write(cmd)
            s.readinto(buf)
            return buf
        return run

    def undo_count(self, tally):
        return None


class Microredis:
    def __init__(self, mr):
        h = mr.ConnectionHandler.resp3((HOST, PORT))
        # frame_capacity=16 so that a batch of 16 fits; everything else is the default (buffer_size 512)
        h.memory(mr.MemoryParameters(frame_capacity=16))
        self.c = h.connect()
        self.buf = bytearray(16)
        self.fs = [None] * 100

    def set(self):
        return self.c.set(KEY, VAL).wait()

    def get(self):
        return self.c.get(KEY).wait()

    def get_into(self):
        return self.c.get_into(KEY, self.buf).wait()

    def incr(self):
        return self.c.incr(CTR).wait()

    def publish(self):
        return self.c.publish(CH, VAL).wait()

    def _batch(self, keys):
        c = self.c
        fs = self.fs
        n = len(keys)
        with c.pipeline():
            for i in range(n):
                fs[i] = c.set(keys[i], VAL)
        for i in range(n):
            fs[i].wait()
            fs[i] = None
        return True

    def p16(self):
        return self._batch(KEYS16)

    def p100(self):
        return self._batch(KEYS100)


class Pico:
    """picoredis 0.1.1 as documented (str arguments: it encodes str(arg)); batches by hand with its own
    encode_request and _read_response (it has no pipeline API)."""

    def __init__(self, picoredis, nd=True):
        self.m = picoredis
        self.r = picoredis.Redis(HOST, PORT)
        if nd:
            nodelay(self.r._sock)
        self.k16 = [k.decode() for k in KEYS16]
        self.k100 = [k.decode() for k in KEYS100]

    def set(self):
        return self.r.set("bench:k", "21.50")

    def get(self):
        return self.r.get("bench:k")

    def incr(self):
        return self.r.incr("bench:ctr")

    def publish(self):
        return self.r.publish("bench:ch", "21.50")

    def _batch(self, keys):
        r = self.r
        enc = self.m.encode_request
        r._sock.send("".join([enc("SET", k, "21.50") for k in keys]).encode())
        ok = True
        for _ in keys:
            ok = r._read_response() == b"OK" and ok
        return ok

    def p16(self):
        return self._batch(self.k16)

    def p100(self):
        return self._batch(self.k100)


class Uredis:
    """micropython-redis 0.0.57; batches by hand: run_command xN then get_response xN (its own methods)."""

    def __init__(self, uredis, nd=True):
        self.r = uredis.Redis(HOST, PORT)
        if nd:
            nodelay(self.r.connection.socket)

    def set(self):
        return self.r.set(KEY, VAL)

    def get(self):
        return self.r.get(KEY)

    def incr(self):
        return self.r.incr(CTR)

    def publish(self):
        return self.r.publish(CH, VAL)

    def _batch(self, keys):
        r = self.r
        for k in keys:
            r.run_command("SET", k, VAL)
        ok = True
        for _ in keys:
            ok = r.get_response() == b"OK" and ok
        return ok

    def p16(self):
        return self._batch(KEYS16)

    def p100(self):
        return self._batch(KEYS100)


def load(name):
    try:
        if name == "raw":
            return Raw()
        if name == "microredis":
            import microredis
            return Microredis(microredis)
        if name == "picoredis":
            import picoredis
            return Pico(picoredis)
        if name == "uredis":
            import uredis
            return Uredis(uredis)
    except ImportError as e:
        print("SKIP", name, repr(e))
        return None
    raise ValueError(name)


def ops_of(lib):
    return [op for op in OPS if hasattr(lib, op)]


def check(name, lib):
    for op in ops_of(lib):
        got = getattr(lib, op)()
        if got is None or got is False:
            raise AssertionError("%s.%s returned %r" % (name, op, got))


def allocs(fn, n):
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
    # Each chunk starts on a clean heap, so a library never pays for the garbage another one left.
    gc.collect()
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t0)


def calibrate(fn):
    n = 1
    while True:
        us = timed(fn, n)
        if us * 4 >= TARGET_US or n >= 1 << 16:
            return max(1, n * TARGET_US // max(us, 1))
        n *= 2


def rates(libs, ops):
    names = list(libs)
    out = {name: {op: [] for op in ops if hasattr(libs[name], op)} for name in names}
    reps = {}
    for name in names:
        for op in out[name]:
            reps[(name, op)] = calibrate(getattr(libs[name], op))
    for rnd in range(ROUNDS):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for op in ops:
            for name in order:
                if op in out[name]:
                    n = reps[(name, op)]
                    us = timed(getattr(libs[name], op), n)
                    out[name][op].append(n * CMDS.get(op, 1) * 1000000 / us)
    return out


def main():
    v = sys.implementation.version
    out = {"micropython": "%d.%d.%d (%s)" % (v[0], v[1], v[2], sys.version.split("; ")[-1])}
    libs = {}
    for name in WANT:
        lib = load(name)
        if lib is not None:
            check(name, lib)
            libs[name] = lib
    if MODE == "rate":
        out["rate"] = rates(libs, OPS)
    elif MODE == "nagle":
        import picoredis
        import uredis
        libs["uredis_shipped"] = Uredis(uredis, False)
        libs["picoredis_shipped"] = Pico(picoredis, False)
        out["rate"] = rates(libs, ("set",))
    elif MODE == "alloc":
        out["alloc"] = {}
        for name, lib in libs.items():
            out["alloc"][name] = {}
            for op in ops_of(lib):
                k = CMDS.get(op, 1)
                n = max(1, ROUNDS // k)
                tot, held = allocs(getattr(lib, op), n)
                out["alloc"][name][op] = (tot / (n * k), held / (n * k))
    elif MODE == "mark":
        f = open("/dev/null", "w")
        for name, lib in libs.items():
            for op in ops_of(lib):
                fn = getattr(lib, op)
                fn()
                gc.collect()
                k = CMDS.get(op, 1)
                n = max(1, ROUNDS // k)
                f.write("BENCHMARK %s %s %d\n" % (name, op, n * k))
                for _ in range(n):
                    fn()
                f.write("BENCHMARK end\n")
        f.close()
    print("RESULT " + json.dumps(out))


main()
