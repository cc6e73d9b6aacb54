# The survival set-up of docs/SURVIVAL.md, for its heap figure (bench/run.py on x64 and 32-bit;
# tests_host/test_survival_heap.py runs it at the heap the doc states).
# usage: micropython [-X heapsize=N] bench/ram/survival.py HOST PORT ROUNDS LOGPATH
#   Every part of the survival package at once, from .mpy, without the command catalogue: three handlers, each with
#   retry() and health_check(); a subscription (CoreClient) on the first; a RAM outbox (64 readings) on the second
#   and a file-backed one (LOGPATH, its files removed first) on the third. Per round: 50 readings into each outbox,
#   pump() each until empty, one message published to the subscription (by the subscription's own client: RESP3
#   shares the connection) and received.
#   Prints RESULT <held at the end> <readings delivered> <messages received>: held = gc.mem_alloc() after
#   gc.collect(), relative to before `import microredis`. Exits 1 without RESULT if anything failed (an outbox error
#   counts: pump() keeps errors in last_error instead of raising).
import gc
import os
import sys

ADDR = (sys.argv[1], int(sys.argv[2]))
ROUNDS = int(sys.argv[3])
LOG = sys.argv[4]
base = 0  # globals declared before the measurement starts, so the module dict does not grow
hs = hr = hf = ram = fil = c = sub = m = box = None
i = rnd = got = 0
for f in (LOG, LOG + ".cur", LOG + ".tmp"):
    try:
        os.remove(f)
    except OSError:
        pass
gc.collect()
base = gc.mem_alloc()

import microredis as mr  # noqa: E402


def handler(name):
    h = mr.ConnectionHandler.resp3(ADDR).timeout(2000).memory(mr.MemoryParameters(256, 4, 4096)).client_name(name)
    h.retry(500, 30000)
    h.health_check(30000)
    return h


hs, hr, hf = handler("bench-surv-sub"), handler("bench-surv-ram"), handler("bench-surv-file")
c = hs.connect(client=mr.CoreClient)
sub = c.subscribe("bench:surv:cmd")
ram = mr.Outbox(hr, "bench:surv:ram", capacity=64, maxlen=1000)
fil = mr.Outbox(hf, "bench:surv:file", capacity=64, path=LOG, maxlen=1000)
for rnd in range(ROUNDS):
    for box in (ram, fil):
        for i in range(50):
            box.add({"temp": "21.50", "seq": rnd * 50 + i})
        while box.pending and box.last_error is None:
            box.pump()
        if box.pending or box.dropped or box.last_error is not None:
            raise RuntimeError("outbox %r: %d pending, %d dropped, last error %r" % (
                box.stream, box.pending, box.dropped, box.last_error))
    box = None
    c.publish("bench:surv:cmd", "ping").wait()
    m = sub.receive(timeout_ms=2000)
    if m is None:
        raise RuntimeError("round %d: the message did not arrive" % rnd)
    got += 1
    m = None
    gc.collect()
getattr(fil, "close", lambda: None)()
gc.collect()
print("RESULT", gc.mem_alloc() - base, ROUNDS * 100, got)
