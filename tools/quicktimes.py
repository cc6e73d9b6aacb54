"""Measures `make test-quick` once and records it in tests_host/quick_times.json: the wall time, and the seconds of
each entry of the Makefile's QUICK list (pytest's own durations, summed per entry). tests_host/test_newcomer.py checks
that QUICK and this record list the same entries and that they fit QUICK_BUDGET.

    .venv/bin/python tools/quicktimes.py          # about a minute and a half; run it on a machine that is not busy
"""

import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RECORD = os.path.join(REPO, "tests_host", "quick_times.json")


def makefile_var(name):
    """A `NAME := ...` variable of the Makefile, continuation lines joined."""
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(r"^%s\s*:=\s*(.*)$" % re.escape(name), text, re.M)
    if not m:
        raise SystemExit("quicktimes: no %s in the Makefile" % name)
    return m.group(1).strip()


def entry_of(classname, name, entries):
    """The QUICK entry a junit testcase belongs to (the longest match: a function before its file)."""
    path = classname.replace(".", "/") + ".py"
    func = name.split("[", 1)[0]
    for e in (path + "::" + func, path):
        if e in entries:
            return e
    return None


def main():
    entries = makefile_var("QUICK").split()
    try:
        load = " ".join("%.2f" % x for x in os.getloadavg())
    except OSError:
        load = "n/a"
    with tempfile.TemporaryDirectory() as d:
        xml = os.path.join(d, "quick.xml")
        t0 = time.monotonic()
        cp = subprocess.run(["make", "-s", "--no-print-directory", "test-quick", "PYTEST_ARGS=--junitxml=" + xml],
                            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
        wall = time.monotonic() - t0
        print(cp.stdout[-1500:])
        if cp.returncode != 0:
            raise SystemExit("quicktimes: make test-quick failed (rc=%d): nothing recorded" % cp.returncode)
        times = dict((e, 0.0) for e in entries)
        for tc in ET.parse(xml).getroot().iter("testcase"):
            e = entry_of(tc.get("classname"), tc.get("name"), entries)
            if e is None:
                raise SystemExit("quicktimes: %s::%s is in no QUICK entry" % (tc.get("classname"), tc.get("name")))
            times[e] += float(tc.get("time") or 0)
    record = {
        "measured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": "nproc %d, load average before the run %s" % (os.cpu_count() or 0, load),
        "wall_s": round(wall, 1),
        "entries_s": dict((e, round(t, 1)) for e, t in times.items()),
    }
    with open(RECORD, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print("quicktimes: %s: %.0f s wall, %.0f s in tests -> %s" % (record["measured"], wall, sum(times.values()),
                                                                  os.path.relpath(RECORD, REPO)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
