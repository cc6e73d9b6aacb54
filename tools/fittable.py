"""README's "Will it fit my board?" table, from one `make bench` run and the library's files.

    .venv/bin/python tools/fittable.py [build/bench/results.md]    # rewrites the table in README.md
    .venv/bin/python tools/fittable.py --print [RESULTS]            # prints it

RAM: the 32-bit figures of the run's "RAM", "Programs" and "Optional parts" tables (the unix port built for i386 by
firmware/build32.sh; ESP32 and the Pico W are 32-bit). Flash: the bytes of each package file's modules, as `.mpy`
(mpy-cross, as `make mpy` builds them) and as `.py` (what mip copies). The table sits between the markers
FIT_BEGIN and FIT_END in README.md; tests_host/test_newcomer.py checks its flash figures against the files.
"""

import json
import os
import re
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LIB = os.path.join(REPO, "lib", "microredis")
README = os.path.join(REPO, "README.md")
FIT_BEGIN = "<!-- fit table: begin"
FIT_END = "<!-- fit table: end -->"
sys.path.insert(0, HERE)

from mkpackages import PACKAGES  # noqa: E402


def flash_sizes():
    """{package file: (bytes of its .mpy files, bytes of its .py files)}."""
    from testkit import compile_mpy

    out = {}
    with tempfile.TemporaryDirectory() as d:
        for pkg, mods in PACKAGES.items():
            mpy = py = 0
            for m in mods:
                src = os.path.join(LIB, m + ".py")
                dst = os.path.join(d, m + ".mpy")
                compile_mpy(src, dst, "microredis/%s.py" % m)
                mpy += os.path.getsize(dst)
                py += os.path.getsize(src)
            out[pkg] = (mpy, py)
    return out


def _pair(cell):
    """'53.0 / 37.8' -> (53.0, 37.8); None for an empty or n/a cell."""
    m = re.match(r"^\s*([\d.]+) / ([\d.]+)\s*$", cell)
    return (float(m.group(1)), float(m.group(2))) if m else None


def parse_results(text):
    """The figures the table needs, from a results.md of bench/run.py."""
    date = re.search(r"^- date: (.+)$", text, re.M).group(1).strip()
    ram, programs, parts = {}, {}, {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[0].startswith("microredis ") and cells[1] in (".mpy", ".py"):
            kind = "core" if "CoreClient" in cells[0] else "full"
            ram[(kind, cells[1])] = {"import": _pair(cells[2]), "connected": _pair(cells[3]),
                                     "subscribed": _pair(cells[4]), "traffic": _pair(cells[5]),
                                     "heap": _pair(cells[6])}
        elif len(cells) == 5 and cells[0].startswith(("telemetry program", "survival set-up")):
            programs[cells[0].split()[0]] = {"end": _pair(cells[2]), "heap": _pair(cells[3])}
        elif len(cells) == 3 and cells[0].startswith("package") and re.match(r"^`\w+`$", cells[1]):
            parts[cells[1].strip("`")] = _pair(cells[2])
    return date, ram, programs, parts


def kb(n):
    return "%.1f KB" % (n / 1000.0)


def table(results_text, source):
    date, ram, programs, parts = parse_results(results_text)
    sizes = flash_sizes()

    def r32(kind, fmt, what):
        v = ram.get((kind, fmt), {}).get(what)
        return "n/a" if v is None else ("%d" if what == "heap" else "%.1f") % v[1]

    def p32(*mods):
        return ", ".join("`%s` %s" % (m, "n/a" if parts.get(m) is None else "%.1f" % parts[m][1]) for m in mods)

    ram_cells = {
        "package.json": "imported: %s (`CoreClient`) / %s (`Client`); connected + one SET: %s / %s; loaded on first "
                        "use: %s" % (r32("core", ".mpy", "import"), r32("full", ".mpy", "import"),
                                     r32("core", ".mpy", "connected"), r32("full", ".mpy", "connected"),
                                     p32("rare", "url", "ticks", "setopts", "credentials", "tlsctx")),
        "package-pubsub.json": "%s (a subscription on a connected `Client`: %s in all)"
                               % (p32("pubsub"), r32("full", ".mpy", "subscribed")),
        "package-survival.json": "%s; with `path=` %s" % (p32("outbox", "inbox", "retry", "retryon", "sentinel"),
                                                          p32("journal", "journal1")),
        "package-tx.json": p32("transaction", "scripts"),
        "package-cache.json": p32("cache"),
        "package-aio.json": "%s (with asyncio), %s (with `pubsub`)" % (p32("aio"), p32("aio_pubsub")),
        "package-cluster.json": p32("cluster", "cluster_pubsub"),
    }
    L = ["%s: from `make bench` of %s (%s), 32-bit column; flash from the files (tools/fittable.py) -->"
         % (FIT_BEGIN, date, source),
         "",
         "| package file | flash, `.mpy` (`make deploy`) | flash, `.py` (mip) | RAM on a 32-bit board, from `.mpy`, KB |",
         "|---|---:|---:|---|"]
    for pkg in PACKAGES:
        mpy, py = sizes[pkg]
        L.append("| `%s` | %s | %s | %s |" % (pkg, kb(mpy), kb(py), ram_cells[pkg]))
    L += ["",
          "| route | smallest heap for connect + 200 SET/GET/PUBLISH, core / full `Client` | heap churned by import + "
          "connect + one SET, core / full |",
          "|---|---:|---:|",
          "| `.mpy` (`make deploy`, or `make mpy` and copy) | %s / %s KiB | %s / %s KB |"
          % (r32("core", ".mpy", "heap"), r32("full", ".mpy", "heap"), r32("core", ".mpy", "traffic"),
             r32("full", ".mpy", "traffic")),
          "| `.py` (mip: the board compiles each module when it is imported) | %s / %s KiB | %s / %s KB |"
          % (r32("core", ".py", "heap"), r32("full", ".py", "heap"), r32("core", ".py", "traffic"),
             r32("full", ".py", "traffic")),
          "",
          "| board program (from `.mpy`, 32-bit) | RAM held at the end | smallest heap that runs it |",
          "|---|---:|---:|"]
    for name, label in (("telemetry", "the boards' telemetry loop as `bench/ram/telemetry.py` models it (an `Outbox`, SET + PUBLISH, "
                                      "commands from an `Inbox`, one connection; 200 cycles)"),
                        ("survival", "docs/SURVIVAL.md's set-up (`bench/ram/survival.py`)")):
        p = programs.get(name)
        L.append("| %s | %s | %s |" % (label, "n/a" if not p or not p["end"] else "%.1f KB" % p["end"][1],
                                       "n/a" if not p or not p["heap"] else "%d KiB" % p["heap"][1]))
    L += ["", FIT_END]
    return "\n".join(L)


def main(argv):
    show = "--print" in argv
    args = [a for a in argv if a != "--print"]
    src = args[0] if args else os.path.join(REPO, "build", "bench", "results.md")
    with open(src, encoding="utf-8") as f:
        text = f.read()
    rel = os.path.relpath(os.path.abspath(src), REPO)
    new = table(text, "build/bench/results.md" if rel.startswith("..") else rel)
    if show:
        print(new)
        return 0
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    i, j = readme.find(FIT_BEGIN), readme.find(FIT_END)
    if i < 0 or j < 0:
        raise SystemExit("fittable: README.md has no %r ... %r block" % (FIT_BEGIN, FIT_END))
    readme = readme[:i] + new + readme[j + len(FIT_END):]
    with open(README, "w", encoding="utf-8") as f:
        f.write(readme)
    print("fittable: README.md's table now from %s (%s)" % (src, parse_results(text)[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
