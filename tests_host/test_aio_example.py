"""examples/asyncio_tasks.py (the README's asyncio example: a sensor loop, a command listener and an outbox flusher as
three tasks on one connection) on the MicroPython unix port, with a command published while it runs, then once
under CPython; and the README's asyncio section is there."""

import os
import re
import subprocess
import sys
import time

from conftest import REPO
from testkit import Resp

SCRIPT = REPO / "examples" / "asyncio_tasks.py"
README = (REPO / "README.md").read_text(encoding="utf-8")


def _call(port, *args):
    r = Resp(port)
    try:
        return r.call(*args)
    finally:
        r.close()


def _env(port, readings):
    return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "READINGS": str(readings), "INTERVAL_MS": "150"}


def test_asyncio_example_on_micropython(micropython, redis_server, tmp_path):
    port = redis_server.port
    _call(port, "DEL", "sensors:board-1:stream", "sensors:board-1:temp")
    log = tmp_path / "out.txt"
    env = dict(os.environ, MICROPYPATH=micropython.micropypath())
    env.update(_env(port, 6))
    with open(str(log), "w") as f:
        proc = subprocess.Popen([micropython.executable, str(SCRIPT)], cwd=str(REPO), env=env,
                                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "#2 " not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.02)
        assert _call(port, "PUBLISH", "cmd:board-1", "led on") == 1, "the listener task is subscribed"
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text()
    assert re.search(r"^#6 \S+ C, led on$", out, re.M), out  # the listener task switched it between readings
    assert "done: 6 delivered, 0 pending" in out, out
    assert _call(port, "XLEN", "sensors:board-1:stream") == 6  # every reading once, through the flusher
    assert 0 < _call(port, "TTL", "sensors:board-1:temp") <= 60


def test_asyncio_example_on_cpython(redis_server):
    port = redis_server.port
    _call(port, "DEL", "sensors:board-1:stream")
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    env.update(_env(port, 3))
    cp = subprocess.run([sys.executable, str(SCRIPT)], cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "done: 3 delivered, 0 pending" in cp.stdout, cp.stdout
    assert _call(port, "XLEN", "sensors:board-1:stream") == 3


def test_readme_asyncio_section():
    assert "### asyncio" in README
    assert "examples/asyncio_tasks.py" in README
    assert "package-aio.json" in README
