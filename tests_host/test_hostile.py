"""The library against a hostile server (hostile_server.py): wrong reply shapes for every converted command, huge
and endless replies, malformed pushes, handshake failures and early replies. The cases and their checks live in
hostile_client.py (portable); here they run on CPython in-process and on the MicroPython unix port.

Each case must end in its command's own correct value or a documented error, within the deadline, with memory
bounded by memory_limit, and a later command (same client if usable, then a fresh connect()) gets its own value.
"""

import os
import re
import sys
import tracemalloc

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import hostile_client  # noqa: E402
from hostile_server import HostileServer, CASES as SERVER_CASES  # noqa: E402

NAMES = sorted(hostile_client.CASES)
PEAK_BYTES = 1 << 20  # CPython: what one case may allocate at its peak (the budget is memory_limit = 2 KB)


def test_every_case_is_scripted():
    assert sorted(SERVER_CASES) == NAMES


@pytest.fixture(scope="module")
def server():
    srv = HostileServer().start()
    # the library's lazily imported modules, loaded before any case measures its peak allocation
    hostile_client.run_case(srv.address, "warmup%d" % os.getpid(), "time_good", check_heap=False)
    hostile_client.run_case(srv.address, "warmup%d" % os.getpid(), "push_sub_nullchan", check_heap=False)
    yield srv
    srv.stop()


@pytest.mark.parametrize("name", NAMES)
def test_cpython(name, server):
    tracemalloc.start()
    try:
        verdict, details = hostile_client.run_case(server.address, "cp%d" % os.getpid(), name, check_heap=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    log = [e for n, e in server.log if n.endswith(":" + name)]
    assert verdict == "PASS", "%s: %s (server: %s)" % (name, details, log)
    assert peak <= PEAK_BYTES, "%s: peak allocation %d bytes (%s)" % (name, peak, details)


@pytest.fixture(scope="module")
def mp_results(server, micropython):
    # one MicroPython process runs every case (a process per case would cost ~60 s more)
    cp = micropython.run([os.path.join(HERE, "hostile_client.py")] + NAMES,
                         env={"HOSTILE_PORT": server.port, "HOSTILE_RUN": "mp%d" % os.getpid()},
                         timeout=240)
    lines = {}
    for line in cp.stdout.splitlines():
        m = re.match(r"CASE (\S+) (PASS|FAIL) ?(.*)$", line)
        if m:
            lines[m.group(1)] = (m.group(2), m.group(3))
    return cp, lines


@pytest.mark.parametrize("name", NAMES)
def test_micropython(name, mp_results):
    cp, lines = mp_results
    assert name in lines, "micropython gave no line for %s: rc=%d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        name, cp.returncode, cp.stdout[-3000:], cp.stderr[-3000:])
    verdict, details = lines[name]
    assert verdict == "PASS", "%s: %s" % (name, details)
