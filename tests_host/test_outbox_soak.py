"""Outbox soaks: readings added while the server is killed and restarted, the network black-holed and connections
reset (mid-reply too), through the fault proxy; and a file-backed outbox whose own process (the MicroPython unix
port) is SIGKILLed at random points and restarted. Afterwards a second client checks with XRANGE that the stream
holds every reading exactly once, in order."""

import os
import random
import signal
import subprocess
import time

import pytest

from conftest import REPO
from faultproxy import FaultProxy

import microredis as mr

N = 2000


def _values(address, key):
    h = mr.ConnectionHandler.resp3(address).timeout(5000).memory(mr.MemoryParameters(memory_limit=None))
    c = h.connect()
    out = [int(e[1][b"i"]) for e in c.xrange(key).wait()]
    h.disconnect()
    return out


@pytest.fixture
def durable(redis_factory):
    # every write on disk before its reply, so a restart (SIGTERM) keeps the stream
    return redis_factory("--appendonly", "yes", "--appendfsync", "always")


def test_soak_faults_exactly_once_in_order(durable):
    rng = random.Random(7)
    proxy = FaultProxy(durable.address).start()
    try:
        h = mr.ConnectionHandler.resp3(proxy.address).timeout(300)
        key = b"t_outbox_soak:ram"
        box = mr.Outbox(h, key, capacity=N)
        box.backoff_ms = 20
        box.max_backoff_ms = 200
        # fault schedule: reading number -> fault
        faults = {}
        for j in range(30):
            at = 50 + j * 60 + rng.randrange(0, 30)  # apart enough that no fault's own readings hide the next
            faults[at] = "restart" if j % 6 == 0 else ("blackhole" if j % 6 == 1 else "reset")
        counts = {"restart": 0, "blackhole": 0, "reset": 0}
        peak = 0
        i = 0
        while i < N:
            f = faults.get(i)
            if f == "restart":
                durable.stop()
                for _ in range(20):
                    box.add({b"i": i})
                    i += 1
                    box.pump()
                durable.start()
            elif f == "blackhole":
                proxy.reset()  # the live connection goes; new ones are never answered
                proxy.blackhole()
                for _ in range(20):
                    box.add({b"i": i})
                    i += 1
                    box.pump()
                proxy.passthrough()
            elif f == "reset":
                # a reset once a few reply bytes went through: XADDs land, their replies are lost
                box.pump(timeout_ms=3000)  # on a live connection first
                proxy.reset(after=rng.randrange(1, 60))
                for _ in range(5):
                    box.add({b"i": i})
                    i += 1
                    box.pump()
                proxy.passthrough()
            if f:
                counts[f] += 1
                continue
            box.add({b"i": i})
            i += 1
            if i % 7 == 0:
                box.pump()
                time.sleep(0.005)  # readings come at a pace, so backoffs end between faults
            peak = max(peak, box.pending)
        # the last faults may still be in their backoff: give it time
        box.pump(timeout_ms=15000)
        assert box.pending == 0, (box.pending, box.last_error)
        assert box.dropped == 0
        assert counts["restart"] >= 5 and counts["blackhole"] >= 5 and counts["reset"] >= 20, counts
        assert _values(durable.address, key) == list(range(N))
        assert box._bytes == 0 and peak <= box.capacity
        print("soak: %r, %d re-sends recognised as already there, peak pending %d, %d connections"
              % (counts, box.duplicates, peak, proxy.accepted))
        assert box.duplicates > 0, "no reply was lost: the reset faults did not bite"
    finally:
        proxy.stop()


KILLED = """
import sys, time
import microredis as mr
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
h = mr.ConnectionHandler.resp3(('127.0.0.1', port)).timeout(1000)
box = mr.Outbox(h, b't_outbox_soak:file', capacity=n, path=path)
box.backoff_ms = 20
box.compact_at = 512
i = box.added          # readings already in the log (a torn last one is gone, and added again)
while i < n:
    box.add({b'i': i})
    i += 1
    if i % 3 == 0:
        box.pump()
    time.sleep_ms(2)
while box.pending:
    box.pump(timeout_ms=1000)
print('DONE', box.added, box.flash_writes)
"""


def test_soak_file_backed_process_killed(durable, micropython, tmp_path):
    rng = random.Random(11)
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    path = str(tmp_path / "box.log")
    n = 600
    proxy = FaultProxy(durable.address).start()
    env = dict(os.environ, MICROPYPATH=micropython.micropypath())
    argv = [micropython.executable, str(script), str(proxy.port), path, str(n)]
    kills = 0
    progress = []  # readings in the stream after each kill
    try:
        while True:
            p = subprocess.Popen(argv, env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if kills < 10:
                time.sleep(rng.uniform(0.05, 0.4))
                if kills % 3 == 1:
                    proxy.reset(after=rng.randrange(1, 40))  # and a reply lost now and then
                p.send_signal(signal.SIGKILL)
                p.wait()
                proxy.passthrough()
                progress.append(len(_values(durable.address, b"t_outbox_soak:file")))
                if p.returncode == -signal.SIGKILL:
                    kills += 1
                    continue
                out = p.stdout.read().decode()
                if "DONE" in out:
                    break  # finished before the kill
                raise AssertionError(out)
            out = p.communicate(timeout=120)[0].decode()
            assert p.returncode == 0 and "DONE" in out, out
            break
        assert kills >= 10 or "DONE" in out
        got = _values(durable.address, b"t_outbox_soak:file")
        assert got == list(range(n)), (len(got), [x for x in got if got.count(x) > 1][:5])
        assert len(set(progress)) >= 5, progress  # the kills fell at different points
        print("file soak: %d SIGKILLs, stream length after each %r; %s" % (kills, progress, out.strip()))
    finally:
        proxy.stop()
