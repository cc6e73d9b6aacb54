# Hot-path scratch bench (not run by make test). MicroPython unix port only.
# usage: bench/hot/run.sh [ROUNDS]  (builds .mpy into /tmp, starts a pinned redis-server, runs this pinned)
# or:    MICROPYPATH=/tmp/hot_mpy taskset -c 0 micropython bench/hot/measure.py PORT [ROUNDS] [N]
# Per op: ratio of ops/s to a raw-socket loop in this process (pre-encoded command, write + readinto of the exact
# reply length), alternated over ROUNDS, median; and micropython.mem_total() bytes per op (transient heap).
import sys
import time
import socket
import micropython
import gc
import microredis as mr

PORT = int(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
N = int(sys.argv[3]) if len(sys.argv) > 3 else 2000

KEY = b"hot:k"
CTR = b"hot:ctr"
CH = b"hot:ch"
VAL = b"21.50"
KEYS = [b"hot:b%d" % i for i in range(16)]


def enc(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out


# raw: command bytes and reply length
RAW = {
    "SET": (enc(b"SET", KEY, VAL), 5),
    "get()": (enc(b"GET", KEY), 11),
    "get_into": (enc(b"GET", KEY), 11),
    "INCR": (enc(b"INCR", CTR), 10),  # counter kept in 7 digits (set below)
    "PUBLISH": (enc(b"PUBLISH", CH, VAL), 4),
    "16 SETs": (b"".join(enc(b"SET", k, VAL) for k in KEYS), 80),
}

raw = socket.socket()
raw.connect(socket.getaddrinfo("127.0.0.1", PORT)[0][-1])
raw.setsockopt(6, 1, 1)
rbuf = bytearray(128)


def raw_loop(cmd, n, k):
    w = raw.write
    r = raw.readinto
    for _ in range(k):
        w(cmd)
        r(rbuf, n)


h = mr.ConnectionHandler.resp3(("127.0.0.1", PORT))
h.memory(mr.MemoryParameters(frame_capacity=16))
c = h.connect()
c.set(CTR, 1000000).wait()
raw.write(enc(b"SET", CTR, b"1000000"))
raw.readinto(rbuf, 5)
c.set(KEY, VAL).wait()
buf = bytearray(16)
fs = [None] * 16


def op_set(k):
    for _ in range(k):
        c.set(KEY, VAL).wait()


def op_get(k):
    for _ in range(k):
        c.get(KEY).wait()


def op_get_into(k):
    for _ in range(k):
        c.get_into(KEY, buf).wait()


def op_incr(k):
    for _ in range(k):
        c.incr(CTR).wait()


def op_publish(k):
    for _ in range(k):
        c.publish(CH, VAL).wait()


def op_batch(k):
    for _ in range(k):
        with c.pipeline():
            for i in range(16):
                fs[i] = c.set(KEYS[i], VAL)
        for i in range(16):
            fs[i].wait()
            fs[i] = None


OPS = (("SET", op_set), ("get()", op_get), ("get_into", op_get_into), ("INCR", op_incr), ("PUBLISH", op_publish),
       ("16 SETs", op_batch))


def timed(fn, *a):
    gc.collect()
    t = time.ticks_us()
    fn(*a)
    return time.ticks_diff(time.ticks_us(), t)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


only = None
if len(sys.argv) > 4 and sys.argv[4]:
    only = sys.argv[4].split(",")
print("op           ratio   mem_total/op   (median of %d rounds, %d ops each)" % (ROUNDS, N))
for name, fn in OPS:
    if only and name not in only:
        continue
    n = N // 8 if name == "16 SETs" else N
    cmd, rl = RAW[name]
    fn(50)
    raw_loop(cmd, rl, 50)
    ratios = []
    for _ in range(ROUNDS):
        tr = timed(raw_loop, cmd, rl, n)
        tm = timed(fn, n)
        ratios.append(tr / tm)
    gc.collect()
    m0 = micropython.mem_total()
    fn(n)
    m1 = micropython.mem_total()
    print("%-10s %6.3fx %10.0f B" % (name, median(ratios), (m1 - m0) / n))
