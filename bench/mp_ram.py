# RAM of a client on MicroPython (run by bench/run.py, one fresh process per variant and format).
# usage: micropython [-X heapsize=N] mp_ram.py HOST PORT VARIANT MODE [N]
#   VARIANT: core (microredis, connect(client=CoreClient)), full (microredis Client), picoredis, uredis
#   (microredis: `import microredis` with ConnectionHandler and the client class resolved counts as the import)
#   MODE ram: prints RESULT <after import> <connected + one SET> <+ a subscription (full only, else 0)>
#             <heap traffic (mem_total delta) of import + connect + SET>, each gc.mem_alloc() after gc.collect()
#             relative to the start
#   MODE fit: connect, then SET/GET/PUBLISH N times each (default 5); prints RESULT ok (else a MemoryError traceback);
#             the peers get TCP_NODELAY first, as in the speed runs (as shipped, Nagle stalls micropython-redis ~40 ms
#             per command)
#   VARIANT part:MOD[,MOD...] (MODE ram): the full Client connected + one SET, then `import microredis.MOD` for each;
#             prints RESULT <what those imports added> (an optional part's RAM after import, on top of the client)
import gc
import sys
import micropython

ADDR = (sys.argv[1], int(sys.argv[2]))
VARIANT = sys.argv[3]
MODE = sys.argv[4]
N = int(sys.argv[5]) if len(sys.argv) > 5 else 5
base = 0  # globals are declared up front so the module dict does not grow while measuring
t0 = 0
m = None
c = None
s = None
h = None
a = b = d = 0


def used():
    gc.collect()
    return gc.mem_alloc() - base


gc.collect()
base = gc.mem_alloc()
t0 = micropython.mem_total()
if VARIANT.startswith("part:"):
    if ".frozen" not in sys.path:
        sys.path.append(".frozen")  # asyncio (aio.py) is frozen into the port; MICROPYPATH replaced the default path
    import microredis as m

    c = m.ConnectionHandler.resp3(ADDR).connect()
    c.set(b"bench:k", b"21.50").wait()
    a = used()
    for s in VARIANT[5:].split(","):
        __import__("microredis." + s)
    s = None
    b = used() - a
    print("RESULT", b)
    sys.exit(0)
elif VARIANT in ("core", "full"):
    import microredis as m

    h = m.ConnectionHandler.resp3(ADDR)
    # the client class is resolved before the measurement, so "after import" is the code and "connected" the rest
    m.CoreClient if VARIANT == "core" else m.Client
    a = used()
    c = h.connect(client=m.CoreClient) if VARIANT == "core" else h.connect()
    c.set(b"bench:k", b"21.50").wait()
    b = used()
    t0 = micropython.mem_total() - t0
    if VARIANT == "full" and MODE == "ram":
        s = c.subscribe(b"bench:ram")
        d = used()
    if MODE == "fit":
        for _ in range(N):
            c.set(b"bench:k", b"21.50").wait()
            c.get(b"bench:k").wait()
            c.publish(b"bench:ch", b"21.50").wait()
elif VARIANT == "picoredis":
    import picoredis as m

    a = used()
    c = m.Redis(ADDR[0], ADDR[1])
    c.set("bench:k", "21.50")
    b = used()
    t0 = micropython.mem_total() - t0
    if MODE == "fit":
        c._sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
        for _ in range(N):
            c.set("bench:k", "21.50")
            c.get("bench:k")
            c.publish("bench:ch", "21.50")
else:
    import uredis as m

    a = used()
    c = m.Redis(ADDR[0], ADDR[1])
    c.set(b"bench:k", b"21.50")
    b = used()
    t0 = micropython.mem_total() - t0
    if MODE == "fit":
        c.connection.socket.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
        for _ in range(N):
            c.set(b"bench:k", b"21.50")
            c.get(b"bench:k")
            c.publish(b"bench:ch", b"21.50")
if MODE == "fit":
    print("RESULT ok")
else:
    print("RESULT", a, b, d, t0)
