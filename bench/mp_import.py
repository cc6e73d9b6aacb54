# RAM cost of a library on MicroPython (run by bench/run.py, one fresh process per library and format).
# usage: micropython mp_import.py microredis|uredis HOST PORT
# Prints: RESULT <bare import> <ready to connect> <connected, after one of each benchmarked command>
#   <one more connection, used the same way> <heap traffic of the import>
# The first four are gc.mem_alloc() after gc.collect(), relative to before (the last one: relative to before the
# second connection); the heap traffic is the micropython.mem_total() delta over the import and first use: every
# byte requested, garbage included (compiling .py source churns far more than loading .mpy).
import gc
import sys
import micropython

LIB = sys.argv[1]
ADDR = (sys.argv[2], int(sys.argv[3]))
res = [0, 0, 0, 0, 0]
keep2 = None
base = 0  # globals are declared up front so the module dict does not grow while measuring
m = None
keep = None


def used():
    gc.collect()
    return gc.mem_alloc() - base


def use_microredis(mr):
    h = mr.ConnectionHandler.resp3(ADDR).memory(mr.MemoryParameters(frame_capacity=16))
    c = h.connect()
    c.set(b"bench:k", b"21.50").wait()
    c.get_into(b"bench:k", bytearray(16)).wait()
    c.incr(b"bench:ctr").wait()
    c.publish(b"bench:ch", b"21.50").wait()
    with c.pipeline():
        fs = [c.set(b"bench:k", b"21.50") for _ in range(16)]
    for f in fs:
        f.wait()
    return h, c


def use_uredis(uredis):
    r = uredis.Redis(ADDR[0], ADDR[1])
    r.set(b"bench:k", b"21.50")
    r.get(b"bench:k")
    r.incr(b"bench:ctr")
    r.publish(b"bench:ch", b"21.50")
    for _ in range(16):
        r.run_command("SET", b"bench:k", b"21.50")
    for _ in range(16):
        r.get_response()
    return r


use = use_microredis if LIB == "microredis" else use_uredis
gc.collect()
base = gc.mem_alloc()
res[4] = micropython.mem_total()
if LIB == "microredis":
    import microredis as m

    res[0] = used()
    m.ConnectionHandler, m.MemoryParameters  # submodules load on first use
    res[1] = used()
else:
    import uredis as m

    res[0] = res[1] = used()
keep = use(m)
res[4] = micropython.mem_total() - res[4]
res[2] = used()
keep2 = use(m)
res[3] = used() - res[2]
print("RESULT", res[0], res[1], res[2], res[3], res[4])
