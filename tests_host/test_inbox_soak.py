"""Inbox soaks: a board process (the MicroPython unix port, and CPython) takes commands from a stream through an
mr.Inbox while a producer adds them, the process is SIGKILLed at random points and restarted, and the fault proxy
resets and black-holes its connection; then the board is off the network for 30 s while 200 commands queue. The
board appends each command to an effect log before done() and a "done" line after it, so the test knows where each
kill landed: a command may appear twice only where a kill fell between its effect and the end of its done()."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO
from faultproxy import FaultProxy

import microredis as mr

BOARD = """
import sys
import microredis as mr
port, path, effects, key, last = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].encode(), sys.argv[5].encode()
h = mr.ConnectionHandler.resp3(('127.0.0.1', port)).timeout(300)
box = mr.Inbox(h, key, b'devices', b'board', path=path, count=4, block_ms=100)
box.backoff_ms = 20
box.max_backoff_ms = 200
log = open(effects, 'ab')
while True:
    e = box.next(200)
    if e is None:
        continue
    log.write(b'E ' + e.id + b' ' + e.fields[b'i'] + b'\\n')  # the effect: on file before done()
    log.flush()
    box.done(e)
    log.write(b'D ' + e.id + b'\\n')
    log.flush()
    if e.fields[b'i'] == last:
        break
print('DONE', box.redelivered, box.skipped, box.dead, repr(box.last_error))
"""


def _argv(runtime, micropython, script, *args):
    if runtime == "micropython":
        return [micropython.executable, str(script)] + [str(a) for a in args], \
            dict(os.environ, MICROPYPATH=micropython.micropypath())
    return [sys.executable, "-u", str(script)] + [str(a) for a in args], \
        dict(os.environ, PYTHONPATH=str(REPO / "lib"))


def _admin(address):
    return mr.ConnectionHandler.resp3(address).timeout(5000).memory(mr.MemoryParameters(memory_limit=None)).connect()


def _producer(address, key, n, pace_s):
    def run():
        c = _admin(address)
        for i in range(n):
            c.command(b"XADD", key, b"*", b"i", i).wait()
            time.sleep(pace_s)
        c.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _check(effects, n, key, address):
    # every command applied, in stream order; a second application only where the first had no "done" line
    applied = []  # (id, i) in order
    finished = set()
    with open(effects, "rb") as f:
        for line in f.read().split(b"\n"):
            w = line.split(b" ")
            if len(w) == 3 and w[0] == b"E":
                applied.append((w[1], int(w[2])))
            elif len(w) == 2 and w[0] == b"D":
                finished.add(w[1])
    order = []
    twice = []
    for k, (eid, i) in enumerate(applied):
        if order and order[-1] == i:
            twice.append(eid)
            prev = applied[k - 1][0]
            assert prev == eid, (prev, eid)
            continue
        order.append(i)
    assert order == list(range(n)), order[:20]
    c = _admin(address)
    try:
        assert c.command(b"XPENDING", key, b"devices").wait()[0] == 0
    finally:
        c.close()
    return twice, finished


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_commands_survive_kills_resets_and_black_holes(runtime, redis_server, micropython, tmp_path):
    if runtime == "micropython" and micropython.executable is None:
        pytest.skip("no micropython")
    rng = random.Random(7 if runtime == "micropython" else 8)
    script = tmp_path / "board.py"
    script.write_text(BOARD)
    key = b"t_inbox_soak:%s" % runtime.encode()
    c = _admin(redis_server.address)
    c.command(b"DEL", key).wait()
    c.close()
    n = 1000
    effects = str(tmp_path / "effects")
    proxy = FaultProxy(redis_server.address).start()
    argv, env = _argv(runtime, micropython, script, proxy.port, tmp_path / "inbox", effects, key.decode(), n - 1)
    producer = _producer(redis_server.address, key, n, 0.004)
    kills = faults = 0
    kill_points = []
    try:
        while True:
            p = subprocess.Popen(argv, env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if kills < 10:
                time.sleep(rng.uniform(0.1, 0.5))
                if kills % 3 == 1:
                    proxy.reset(after=rng.randrange(1, 60))  # a reply lost on the way
                    faults += 1
                elif kills % 3 == 2:
                    proxy.blackhole()  # a connection that stops answering
                    time.sleep(0.4)
                    faults += 1
                p.send_signal(signal.SIGKILL)
                p.wait()
                proxy.passthrough()
                kill_points.append(os.path.getsize(effects) if os.path.exists(effects) else 0)
                if p.returncode == -signal.SIGKILL:
                    kills += 1
                    continue
                out = p.stdout.read().decode()
                if "DONE" in out:
                    break
                raise AssertionError(out)
            out = p.communicate(timeout=120)[0].decode()
            assert p.returncode == 0 and "DONE" in out, out
            break
        producer.join(30)
        assert kills >= 10, kills
        twice, finished = _check(effects, n, key, redis_server.address)
        # applied twice only where the first application had no "done" line yet: a kill between effect and done()
        assert not [eid for eid in twice if _done_before_twice(effects, eid)], twice
        assert len(set(kill_points)) >= 5, kill_points  # the kills fell at different points
        print("%s: %d SIGKILLs, %d proxy faults, applied twice (a kill between effect and done): %d; %s"
              % (runtime, kills, faults, len(twice), out.strip()))
    finally:
        proxy.stop()


def _done_before_twice(effects, eid):
    # True if the first application of eid was followed by its "done" line before it was applied again
    seen_e = seen_d = False
    with open(effects, "rb") as f:
        for line in f.read().split(b"\n"):
            w = line.split(b" ")
            if len(w) >= 2 and w[1] == eid:
                if w[0] == b"E":
                    if seen_e and seen_d:
                        return True
                    seen_e = True
                elif w[0] == b"D":
                    seen_d = True
    return False


def test_commands_queued_while_the_board_is_off_the_network_arrive_in_order(redis_server, micropython, tmp_path):
    # two boards (the unix port and CPython), each with its own stream, behind one proxy that black-holes everything
    # for 30 s while 200 commands queue for each: after it passes traffic again, all arrive, in order, once
    script = tmp_path / "board.py"
    script.write_text(BOARD)
    n = 200
    proxy = FaultProxy(redis_server.address).start()
    boards = []
    try:
        runtimes = ["cpython"] + (["micropython"] if micropython.executable is not None else [])
        for rt in runtimes:
            key = b"t_inbox_off:%s" % rt.encode()
            c = _admin(redis_server.address)
            c.command(b"DEL", key).wait()
            c.command(b"XGROUP", b"CREATE", key, b"devices", b"$", b"MKSTREAM").wait()
            c.close()
            effects = str(tmp_path / ("effects-" + rt))
            argv, env = _argv(rt, micropython, script, proxy.port, tmp_path / ("inbox-" + rt), effects, key.decode(),
                              n - 1)
            boards.append((rt, key, effects, subprocess.Popen(argv, env=env, cwd=str(REPO), stdout=subprocess.PIPE,
                                                              stderr=subprocess.STDOUT)))
        time.sleep(1)  # both connected and waiting
        proxy.blackhole()
        t0 = time.monotonic()
        for rt, key, effects, p in boards:
            _producer(redis_server.address, key, n, 0).join(30)
        time.sleep(max(0.0, 30 - (time.monotonic() - t0)))
        for rt, key, effects, p in boards:
            assert p.poll() is None, p.stdout.read().decode()
            assert not os.path.exists(effects) or os.path.getsize(effects) == 0, rt  # nothing while off
        proxy.passthrough()
        for rt, key, effects, p in boards:
            out = p.communicate(timeout=60)[0].decode()
            assert p.returncode == 0 and "DONE" in out, out
            twice, _ = _check(effects, n, key, redis_server.address)
            assert twice == [], (rt, twice)
    finally:
        for _, _, _, p in boards:
            if p.poll() is None:
                p.kill()
        proxy.stop()
