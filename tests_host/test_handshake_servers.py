"""Handshake against servers that need their own configuration, each test of tests_device/t_client.py that needs one
run under CPython and under the MicroPython unix port:

- a server without HELLO (a pre-6 server as far as the handshake can tell: rename-command);
- a server at its maxclients (1), which refuses on accept as protected mode does;
- a server in protected mode that counts the client as remote, as a default Redis on a laptop counts a board: a real
  Redis 7 (Debian's, when installed) bound to 127.0.0.1 with `--protected-mode yes` and no password, reached through a
  proxy whose upstream connections come from 127.0.0.2 (Redis 7 trusts only 127.0.0.1 and ::1); and, because Redis
  6.2 refuses only when it has no bind address at all (it would listen on every interface, which no test server
  may), a tiny server that sends the exact bytes 6.2 sends and closes without reading what came, so the client meets
  a reset (on MicroPython the refusal's bytes are then read and their count lost: rare.refused). Against both, the
  handshakes that send something, and a RESP2 handler that sends nothing at the dial, whose first commands meet
  the refusal (as their reply, or as a reset: a read or a second write fails; rare.refusal).
"""
import os
import socket
import subprocess
import sys

import pytest

from faultproxy import FaultProxy
from testkit import DENIED_62, RedisServer, Refuser, redis7_executable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOHELLO = "t_client.test_hello_rejected_clear_error_or_fallback"
DENIED = ("t_client.test_protected_mode_refusal_names_its_cause_and_fix",
          "t_client.test_protected_mode_refusal_without_a_handshake")  # (one process: both)
FULL = "t_client.test_max_clients_refusal_is_the_servers_error_not_a_fallback"

@pytest.fixture
def nohello(redis_factory):
    return redis_factory("--rename-command", "HELLO", "")


@pytest.fixture
def full(redis_factory):
    return redis_factory("--maxclients", "1")


@pytest.fixture
def denied_62():
    with Refuser(DENIED_62) as srv:
        yield srv


@pytest.fixture
def denied_7():
    exe = redis7_executable()
    if exe is None:
        pytest.skip("no Redis 7 installed (apt-get install redis-server)")
    srv = RedisServer(["--protected-mode", "yes"], executable=exe).start()  # (no password: protected mode is on)
    try:
        with FaultProxy(srv.address, source="127.0.0.2") as proxy:
            yield proxy
    finally:
        srv.cleanup()


def _run(runtime, redis_server, tests, **ports):
    tests = (tests,) if isinstance(tests, str) else tests
    env = dict(os.environ)
    env["MICROREDIS_TEST_HOST"] = redis_server.host
    env["MICROREDIS_TEST_PORT"] = str(redis_server.port)
    for name, port in ports.items():
        env["MICROREDIS_TEST_%s_PORT" % name.upper()] = str(port)
    if runtime is None:
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "lib"), os.path.join(REPO, "tests_device")])
        p = subprocess.run([sys.executable, os.path.join(REPO, "tests_device", "run.py")] + list(tests), env=env,
                           capture_output=True, text=True, timeout=60)
    else:
        p = runtime.run([os.path.join(REPO, "tests_device", "run.py")] + list(tests), env=env)
    assert "%d passed, 0 failed" % len(tests) in p.stdout, p.stdout + p.stderr


def test_server_without_hello_cpython(redis_server, nohello):
    _run(None, redis_server, NOHELLO, nohello=nohello.port)


def test_server_without_hello_micropython(redis_server, nohello, micropython):
    _run(micropython, redis_server, NOHELLO, nohello=nohello.port)


def test_protected_mode_redis62_refusal_cpython(redis_server, denied_62):
    _run(None, redis_server, DENIED, denied=denied_62.port)
    assert denied_62.accepted >= 7  # every handler of the test dialed (the last one twice)


def test_protected_mode_redis62_refusal_micropython(redis_server, denied_62, micropython):
    _run(micropython, redis_server, DENIED, denied=denied_62.port)
    assert denied_62.accepted >= 7


def test_protected_mode_real_redis7_cpython(redis_server, denied_7):
    _run(None, redis_server, DENIED, denied=denied_7.port)
    assert denied_7.accepted >= 7


def test_protected_mode_real_redis7_micropython(redis_server, denied_7, micropython):
    _run(micropython, redis_server, DENIED, denied=denied_7.port)
    assert denied_7.accepted >= 7


def test_redis7_really_refuses_the_proxied_client(denied_7):
    # the proxy's premise: the server's own refusal, not one the test made up
    with socket.create_connection(denied_7.address, timeout=5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"-DENIED Redis is running in protected mode"), data[:80]


def test_server_at_maxclients_cpython(redis_server, full):
    _run(None, redis_server, FULL, full=full.port)


def test_server_at_maxclients_micropython(redis_server, full, micropython):
    _run(micropython, redis_server, FULL, full=full.port)
