"""The benchmark harness in its smallest mode (1 round, a few ops, no downloads), so that it cannot rot.

The bench itself is never part of `make test`; this only checks that bench/run.py still runs end to end against
the library as it is and writes every section of its report. Third-party clients are used only if a previous
`make bench` left them in build/bench-deps (--no-fetch: nothing is downloaded here).
"""
import os
import re
import subprocess
import sys

from conftest import REPO


def test_bench_smoke(tmp_path):
    out = tmp_path / "results.md"
    tracked = REPO / "bench" / "results.md"
    before = tracked.read_bytes()
    p = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--smoke", "--no-fetch", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    md = out.read_text()
    for section in ("- date: ", "- machine: ", "## Speed on MicroPython", "## Per command on MicroPython",
                    "## RAM on MicroPython", "**Programs, from .mpy**", "**Optional parts, from .mpy**",
                    "**Optional parts, per operation (MicroPython, from .mpy)**", "`get()` rate", "## CPython",
                    "## Profile", "## Exact commands"):
        assert section in md, section
    # the optional parts' table: asyncio, transaction, script, cache hit, outbox reading, inbox command, each with
    # its bytes per operation
    parts = md.split("**Optional parts, per operation (MicroPython, from .mpy)**", 1)[1].split("\n\n", 2)[1]
    rows = [r for r in parts.splitlines() if r.startswith("| ") and not r.startswith("| operation ")]
    assert len(rows) == 6, parts
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert float(cells[1]) >= 0 and float(cells[2]) >= 0, r
    assert float(rows[0].split("|")[4].split()[0]) > 0 and float(rows[3].split("|")[4].split()[0]) > 0, parts
    # the telemetry program and docs/SURVIVAL.md's set-up: RAM held and the smallest heap, x64 / 32-bit (n/a when
    # build/mp32 was never built: --no-fetch builds nothing)
    progs = md.split("**Programs, from .mpy**", 1)[1].split("\n\n", 2)[1]
    rows = [r for r in progs.splitlines() if r.startswith("| ") and not r.startswith("| program ")]
    assert [r.split("|")[1].split("(")[0].strip() for r in rows] == ["telemetry program", "survival set-up"], progs
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        held, heap = cells[2].split(" / "), cells[3].split(" / ")
        assert float(held[0]) > 20 and int(heap[0]) > 32, r
        assert held[1] == heap[1] == "n/a" or (float(held[1]) < float(held[0]) and int(heap[1]) < int(heap[0])), r
    if "32-bit MicroPython: not available" not in md:  # the 32-bit column is filled in every RAM table
        ram = md.split("## RAM", 1)[1].split("## CPython", 1)[0]
        assert "| microredis core (CoreClient) | .mpy |" in ram and not re.search(r"\d / n/a", ram), ram
    # the raw floor and microredis always run; every op has a ratio for microredis
    speed = md.split("**Client and redis-server on the same CPU (headline)**", 1)[1].split("\n\n", 2)[1]
    rows = [r for r in speed.splitlines() if r.startswith("| ") and not r.startswith("| op ")]
    assert len(rows) == 7, speed
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert float(cells[1]) > 0 and float(cells[2].split()[0]) > 0, r
    # the report went where it was told, not into the tracked tree
    assert "wrote " in p.stdout
    assert tracked.read_bytes() == before
