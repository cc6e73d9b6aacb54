# Where microredis's time and heap go on MicroPython (run by bench/run.py; not a test). MicroPython has no
# profiler, so the SET path is taken apart by hand: each step of one SET (the same calls set().wait() makes, in
# the same order) is timed and its micropython.mem_total() delta taken, over N commands; then each layer alone
# (encoder, reader, transport, raw socket); then the RAM each module holds after import.
# usage: micropython mp_profile.py HOST PORT N MODE [ROUNDS]      MODE: path | modules
# Prints one line: RESULT <json>.
import sys
import gc
import json
import time
import socket
import micropython

HOST = sys.argv[1]
PORT = int(sys.argv[2])
N = int(sys.argv[3])
MODE = sys.argv[4]
ROUNDS = int(sys.argv[5]) if len(sys.argv) > 5 else 1
KEY = b"bench:k"
VAL = b"21.50"
SET3 = b"*3\r\n$3\r\nSET\r\n"
OKR = b"+OK\r\n"
MODULES = ("errors", "clock", "encoder", "resp", "client", "net", "net_mp",
           "connection", "commands", "pubsub", "asyncio", "aio", "aio_pubsub")

ticks = time.ticks_us
diff = time.ticks_diff
memt = micropython.mem_total


def path():
    import microredis as mr
    from microredis.encoder import check, Encoder
    from microredis.resp import Reader, NEED_DATA
    c = mr.ConnectionHandler.resp3((HOST, PORT)).connect(client=mr.CoreClient)
    # The public steps of one SET (the hot path is a few module functions; bench/hot/frames.py lists which of them
    # still take a heap frame)
    names = ("set(): check, claim a slot, encode, one write", "wait(): poll + readinto, parse, resolve, recycle")
    us = [0] * len(names)
    heap = [0] * len(names)
    rounds = []
    for rnd in range(ROUNDS + 1):  # the first round warms up (futures, buffers) and is not reported
        for i in range(len(names)):
            us[i] = heap[i] = 0
        gc.collect()
        for _ in range(N):
            m0 = memt()
            t0 = ticks()
            f = c.set(KEY, VAL)
            t1 = ticks()
            m1 = memt()
            f.wait()
            t2 = ticks()
            m2 = memt()
            us[0] += diff(t1, t0)
            us[1] += diff(t2, t1)
            heap[0] += m1 - m0
            heap[1] += m2 - m1
        if rnd:
            rounds.append([(us[i] / N, heap[i] / N) for i in range(len(names))])
    steps = [(names[i], median([r[i][0] for r in rounds]), median([r[i][1] for r in rounds]))
             for i in range(len(names))]

    def whole():
        c.set(KEY, VAL).wait()

    # the layers alone
    class Null:
        def send(self, buf, n):
            pass

        def send_obj(self, o):
            pass

    enc = Encoder(bytearray(512), Null())

    def encoder():
        enc.raw(SET3)
        enc.arg(KEY)
        enc.arg(VAL)
        enc.n = 0

    rd = Reader()

    def reader():
        rd.space()
        w = rd.wpos
        rd.buf[w:w + 5] = OKR
        rd.wrote(5)
        return rd.gets()

    t = c._transport
    pre = bytearray(SET3 + b"$7\r\nbench:k\r\n$5\r\n21.50\r\n")
    rbuf = bytearray(64)

    def transport():
        t.send(pre, len(pre))
        n = 0
        while n < 5:
            n += t.recv_into(rbuf, n, 1000)

    s = socket.socket()
    s.connect(socket.getaddrinfo(HOST, PORT)[0][-1])
    s.setsockopt(6, 1, 1)
    r5 = bytearray(5)

    def raw():
        s.write(pre)
        s.readinto(r5)

    fns = (("set(key, value).wait(), whole", whole), ("encoder alone (SET, null sink)", encoder),
           ("reader alone (+OK from its buffer)", reader),
           ("transport alone (send + recv_into of SET)", transport),
           ("raw socket (write + readinto of SET)", raw))
    res = [([], []) for _ in fns]
    for name, fn in fns:
        for _ in range(20):
            fn()
    for rnd in range(ROUNDS):  # alternated, the first one rotating, so that a disturbed moment hits all alike
        for j in range(len(fns)):
            k = (j + rnd) % len(fns)
            fn = fns[k][1]
            gc.collect()
            m0 = memt()
            t0 = ticks()
            for _ in range(N):
                fn()
            t1 = ticks()
            m1 = memt()
            res[k][0].append(diff(t1, t0) / N)
            res[k][1].append((m1 - m0) / N)
    s.close()
    layers = [(fns[k][0], median(res[k][0]), median(res[k][1])) for k in range(len(fns))]
    return {"steps": steps, "layers": layers, "rounds": ROUNDS}


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def modules():
    # RAM each module holds once imported (gc.mem_alloc after gc.collect), in dependency order, so each delta is
    # that module's own bytecode, qstrs, functions and tables.
    out = []
    gc.collect()
    a0 = gc.mem_alloc()
    import microredis
    gc.collect()
    a1 = gc.mem_alloc()
    out.append(("__init__ (+ errors)", a1 - a0))
    for name in MODULES[1:]:
        if name == "asyncio" and ".frozen" not in sys.path:
            sys.path.append(".frozen")  # the port's own asyncio is frozen; the bench's MICROPYPATH leaves it out
        __import__(name if name == "asyncio" else "microredis." + name)  # (asyncio: the platform's, before aio)
        gc.collect()
        a2 = gc.mem_alloc()
        out.append((name, a2 - a1))
        a1 = a2
    return out


print("RESULT " + json.dumps(path() if MODE == "path" else modules()))
