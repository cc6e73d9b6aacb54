"""Outbox soaks: readings added while the server is killed and restarted, the network black-holed and connections
reset (mid-reply too), through the fault proxy; and a file-backed outbox whose own process (the MicroPython unix
port) is SIGKILLed at random points and restarted. Afterwards a second client checks with XRANGE that the stream
holds every reading exactly once, in order."""

import os
import random
import signal
import subprocess
import sys
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


SOAK = """
import sys, time, socket
import microredis as mr
port, cport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sched = SCHEDULE  # in the script: the unix port dies ("FATAL: uncaught NLR") on an argument of 256+ characters
faults = {}
for item in sched.split(','):
    at, kind, arg = item.split(':')
    faults[int(at)] = (kind, int(arg))

def ctl(line):  # the fault proxy's control port (both runtimes: send/recv only)
    s = socket.socket()
    s.connect(socket.getaddrinfo('127.0.0.1', cport)[0][-1])
    s.send(line.encode() + b'\\n')
    r = b''
    while not r.endswith(b'\\n'):
        r += s.recv(64)
    s.close()
    assert r.startswith(b'OK'), r

def nap(ms):
    time.sleep(ms / 1000)

h = mr.ConnectionHandler.resp3(('127.0.0.1', port)).timeout(300)
box = mr.Outbox(h, b't_outbox_soak:ram', capacity=n)
box.backoff_ms = 20
box.max_backoff_ms = 200
counts = {'restart': 0, 'blackhole': 0, 'reset': 0}
peak = 0
i = 0
while i < n:
    f = faults.get(i)
    if f:
        kind = f[0]
        if kind == 'restart':
            ctl('stop')
            m = 20
        elif kind == 'blackhole':
            ctl('reset')  # the live connection goes; new ones are never answered
            ctl('blackhole')
            m = 20
        else:
            box.pump(timeout_ms=3000)  # on a live connection, then reset once a few reply bytes went through:
            ctl('reset %d' % f[1])     # the XADDs land, their replies are lost
            m = 5
        for _ in range(m):
            box.add({b'i': i})
            i += 1
            box.pump()
        ctl('start' if kind == 'restart' else 'pass')
        counts[kind] += 1
        continue
    box.add({b'i': i})
    i += 1
    if i % 7 == 0:
        box.pump()
        nap(5)  # readings come at a pace, so backoffs end between faults
    if box.pending > peak:
        peak = box.pending
box.pump(timeout_ms=15000)
print('RESULT', box.pending, box.dropped, box.duplicates, peak, box._bytes, counts['restart'], counts['blackhole'],
      counts['reset'], repr(box.last_error))
"""


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_soak_faults_exactly_once_in_order(durable, runtime, micropython, tmp_path):
    rng = random.Random(7)
    proxy = FaultProxy(durable.address, hooks={"stop": durable.stop, "start": durable.start}).start()
    try:
        sched = []
        for j in range(30):
            at = 50 + j * 60 + rng.randrange(0, 30)  # apart enough that no fault's own readings hide the next
            kind = "restart" if j % 6 == 0 else ("blackhole" if j % 6 == 1 else "reset")
            sched.append("%d:%s:%d" % (at, kind, rng.randrange(1, 60)))
        script = tmp_path / "soak.py"
        script.write_text(SOAK.replace("SCHEDULE", repr(",".join(sched))))
        args = [str(script), str(proxy.port), str(proxy.control_port), str(N)]
        if runtime == "micropython":
            cp = micropython.run(args, timeout=300)
        else:
            env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
            cp = subprocess.run([sys.executable] + args, env=env, cwd=str(REPO), timeout=300,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        out = cp.stdout + (cp.stderr or "")
        assert cp.returncode == 0 and "RESULT" in out, out
        r = out.split("RESULT", 1)[1].split()
        pending, dropped, dups, peak, nbytes, restarts, holes, resets = (int(x) for x in r[:8])
        assert (pending, dropped, nbytes) == (0, 0, 0), out
        assert restarts >= 5 and holes >= 5 and resets >= 20, out
        assert peak <= N
        assert _values(durable.address, b"t_outbox_soak:ram") == list(range(N))
        assert dups > 0, "no reply was lost: the reset faults did not bite"
        print("soak (%s): %d restarts, %d black holes, %d resets; %d re-sends recognised as already there, "
              "peak pending %d, %d connections" % (runtime, restarts, holes, resets, dups, peak, proxy.accepted))
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
    n = 1500  # more than 10 short lives can add
    proxy = FaultProxy(durable.address).start()
    env = dict(os.environ, MICROPYPATH=micropython.micropypath())
    argv = [micropython.executable, str(script), str(proxy.port), path, str(n)]
    kills = 0
    progress = []  # readings in the stream after each kill
    try:
        while True:
            p = subprocess.Popen(argv, env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if kills < 10:
                time.sleep(rng.uniform(0.05, 0.3))
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
        assert kills >= 10, (kills, progress)
        got = _values(durable.address, b"t_outbox_soak:file")
        assert got == list(range(n)), (len(got), [x for x in got if got.count(x) > 1][:5])
        assert len(set(progress)) >= 5, progress  # the kills fell at different points
        print("file soak: %d SIGKILLs, stream length after each %r; %s" % (kills, progress, out.strip()))
    finally:
        proxy.stop()


def test_pump_waits_at_most_one_timeout(redis_server):
    # a stalled server and a black hole: pump(0) gives up after one reply timeout, or one dial + handshake
    proxy = FaultProxy(redis_server.address).start()
    key = b"t_outbox_soak:bounded"
    try:
        h = mr.ConnectionHandler.resp3(proxy.address).timeout(300)
        h.connect().command(b"DEL", key).wait()
        box = mr.Outbox(h, key)
        box.jitter = False
        for i in range(3):
            box.add({b"i": i})
        assert box.pump() == 3
        took = []
        for mode in ("stall", "stall", "blackhole"):
            proxy.set_mode(mode)
            box.add({b"i": len(took) + 3})
            box.fails = 0  # no backoff in the way: measure one attempt
            t0 = time.monotonic()
            assert box.pump() == 0
            took.append(time.monotonic() - t0)
            assert isinstance(box.last_error, (mr.TimeoutError, mr.ConnectionError)), box.last_error
        # 1: a reply timeout on the live connection; 2: dial + HELLO timeout; 3: the same behind a black hole
        assert all(t < 0.3 + 0.4 for t in took), took
        assert box.pump() == 0  # the first re-dial is immediate (and fails again)
        t0 = time.monotonic()
        assert box.pump() == 0  # within the backoff now (backoff_ms): no attempt at all
        assert time.monotonic() - t0 < 0.05
        proxy.passthrough()
        assert box.pump(timeout_ms=5000) == 3
        assert _values(redis_server.address, key) == [0, 1, 2, 3, 4, 5]
        print("pump(0) under faults took %s s (timeout 0.3 s)" % ["%.2f" % t for t in took])
    finally:
        proxy.stop()
