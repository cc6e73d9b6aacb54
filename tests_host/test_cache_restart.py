"""The client-side cache (microredis/cache.py) across real server restarts, CPython and the MicroPython unix port:
with h.retry() the same Client re-dials in place; the cache must be flushed (the restarted server, empty, sends
no invalidation for what changed meanwhile) and track again on the new connection, so a value written after the
restart is seen, and later writes still invalidate."""

import os
import subprocess
import sys
import time

import pytest

from conftest import REPO

import microredis as mr

# Reads one word per line from stdin: GET prints the value and the counters; QUIT ends.
READER = """
import sys
import microredis as mr
from microredis.cache import Cache
h = mr.ConnectionHandler.resp3(('127.0.0.1', int(sys.argv[1]))).timeout(500).retry(backoff_ms=50, max_backoff_ms=200)
c = h.connect()
cache = Cache(c, slots=4, size=32, prefixes=(b'cfg:',))
print('READY')
while True:
    line = sys.stdin.readline().strip()
    if line == 'QUIT':
        break
    try:
        v = c.get(b'cfg:rate').wait()
    except mr.RedisError as e:
        v = 'ERR'
    print('GOT', v, cache.hits, cache.misses, h.reconnects)
"""

ROUNDS = 3


def _set(address, value):
    h = mr.ConnectionHandler.resp3(address).timeout(1000)
    try:
        return h.connect().set(b"cfg:rate", value).wait()
    finally:
        h.disconnect()


def _ask(p):
    p.stdin.write("GET\n")
    p.stdin.flush()
    line = p.stdout.readline().strip()
    assert line.startswith("GOT "), line
    v, hits, misses, reconnects = line.split()[1:]
    return v, int(hits), int(misses), int(reconnects)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_cache_survives_server_restarts(redis_factory, micropython, tmp_path, runtime):
    srv = redis_factory()
    _set(srv.address, b"0")
    script = tmp_path / "reader.py"
    script.write_text(READER)
    if runtime == "micropython":
        if micropython.executable is None:
            pytest.skip("no micropython binary")
        env = dict(os.environ, MICROPYPATH=micropython.micropypath())
        argv = [micropython.executable, str(script), str(srv.port)]
    else:
        env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
        argv = [sys.executable, "-u", str(script), str(srv.port)]
    p = subprocess.Popen(argv, env=env, cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    try:
        assert p.stdout.readline().strip() == "READY"
        want = "b'0'"
        for k in range(ROUNDS):
            if k:
                srv.restart()  # every connection is gone and the data with it (no persistence)
                want = "b'r%d'" % k
                _set(srv.address, want[2:-1].encode())
            got = None
            end = time.monotonic() + 10
            while time.monotonic() < end:  # the first get() after the restart may fail (a paced re-dial)
                got = _ask(p)
                if got[0] != "ERR":
                    break
                time.sleep(0.1)
            assert got[0] == want, (k, got)
            assert got[3] >= k  # re-dialled in place
            v, hits, misses, _ = _ask(p)
            assert v == want
            v, hits2, misses2, _ = _ask(p)
            assert (v, hits2, misses2) == (want, hits + 1, misses), "a hit on the new connection"
            _set(srv.address, b"w%d" % k)  # a write after the restart still invalidates
            time.sleep(0.05)
            assert _ask(p)[0] == "b'w%d'" % k
        p.stdin.write("QUIT\n")
        p.stdin.flush()
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
