"""`make demo` works end to end: exit 0, every reading seen by the subscriber, in the key and the stream, and the
"led on" command acknowledged - in well under its 30 s bound."""

import os
import subprocess
import time

import pytest

from conftest import REPO


def test_make_demo():
    t0 = time.monotonic()
    env = dict(os.environ)
    for k in ("REDIS_HOST", "REDIS_PORT", "DEVICE_ID", "READINGS", "INTERVAL_MS"):
        env.pop(k, None)
    cp = subprocess.run(["make", "-s", "demo"], cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    took = time.monotonic() - t0
    out = cp.stdout
    if cp.returncode != 0:
        pytest.fail("make demo: rc=%d after %.1f s\n%s" % (cp.returncode, took, out), pytrace=False)
    assert "demo: OK: 5 readings arrived" in out, out
    assert "demo: subscriber got ack:demo-1: led on" in out, out
    assert "  board | LED on (simulated)" in out, out
    assert "XLEN sensors:demo-1:stream -> 5" in out, out
    assert took < 30, "make demo took %.1f s" % took
