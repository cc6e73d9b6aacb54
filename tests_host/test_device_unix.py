"""tests_device/ on the MicroPython unix port driven through mpremote + socat, exactly like a board
(tools/device_unix.py, `make test-device-unix`), and the `make test-device` recipe itself against that "board".

Each suite gets a fresh socat + `micropython -i` process. Skipped (with the reason) when socat is missing.
"""

import os
import subprocess

import pytest

from conftest import REPO

import device_unix
from testkit import device_modules, small_heap
from unixboard import UnixBoard, Unavailable, socat_executable

pytestmark = pytest.mark.skipif(socat_executable() is None,
                                reason="socat is not installed (make ensure-socat, as root, installs it)")


def _check(ok, out, what):
    if not ok:
        pytest.fail("%s failed:\n%s" % (what, out), pytrace=False)


# Through the mounted pty every file read is slow (all modules: about 5 minutes, 17 of them 200 s). What only this
# path shows (the mount, the raw REPL, a board's channel) the board-facing modules show: the reader, the encoder,
# the client, the network adapter, pub/sub, the board loop, allocation and the self-test. The others run under the
# same micropython binary in test_shared.py and from .mpy in test_mpy.py already; `make test-device-unix` runs
# every module here too.
NOT_THROUGH_MPREMOTE = ("t_commands", "t_misdelivery", "t_pubsub_edges", "t_reader_edges", "t_validate", "t_outbox",
                        "t_retry", "t_hotpath", "t_aio", "t_alloc_client", "t_cache", "t_cluster", "t_compat",
                        "t_inbox", "t_scripts", "t_streams", "t_transaction")


def test_device_suite_through_mpremote(redis_server):
    mods = [m for m in device_modules() if m not in NOT_THROUGH_MPREMOTE]
    assert len(mods) >= 8, mods
    ok, out, secs = device_unix.run_suite(redis_server.port, mods, timeout=480)
    _check(ok, out, "mpremote mount . run tests_device/run.py (%d modules)" % len(mods))
    for m in mods:  # every module ran
        assert ("ok   %s." % m) in out or ("SKIP %s." % m) in out, "%s did not run:\n%s" % (m, out)


SMALL = [m for m in device_modules() if small_heap(m)]


@pytest.mark.parametrize("module", SMALL)
def test_device_suite_small_heap_from_mpy(module, redis_server, micropython):
    ok, out, secs = device_unix.run_suite(redis_server.port, [module], heapsize="64k",
                                          mount=micropython.mpy_tree(), timeout=300)
    _check(ok, out, "micropython -X heapsize=64k -i, .mpy mounted: %s" % module)


def test_make_test_device_recipe(redis_server):
    """`make test-device PORT=<pty> REDIS=host:port MODULES=...` as a user runs it against a board."""
    try:
        board = UnixBoard()
    except Unavailable as e:
        pytest.skip(str(e))
    with board:
        cp = subprocess.run(["make", "-s", "test-device", "PORT=" + board.tty,
                             "REDIS=127.0.0.1:%d" % redis_server.port, "MODULES=t_selftest t_encoder"],
                            cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    out = cp.stdout
    assert cp.returncode == 0, out
    assert "ok   t_selftest.test_server_ping" in out, out  # the server address reached the board
    assert "ok   t_encoder." in out and " 0 failed" in out, out


def test_make_test_device_needs_port_and_redis():
    env = dict(os.environ)
    env.pop("PORT", None)
    cp = subprocess.run(["make", "-s", "test-device"], cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    assert cp.returncode != 0 and "usage: make test-device" in cp.stdout
