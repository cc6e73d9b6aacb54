"""Handshake against servers that need their own configuration: one without HELLO (a pre-6 server as far as the
handshake can tell). The shared test runs under CPython and under the MicroPython unix port."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST = "t_client.test_hello_rejected_clear_error_or_fallback"


@pytest.fixture
def nohello(redis_factory):
    return redis_factory("--rename-command", "HELLO", "")


def _env(redis_server, nohello):
    env = dict(os.environ)
    env["MICROREDIS_TEST_HOST"] = redis_server.host
    env["MICROREDIS_TEST_PORT"] = str(redis_server.port)
    env["MICROREDIS_TEST_NOHELLO_PORT"] = str(nohello.port)
    return env


def test_server_without_hello_cpython(redis_server, nohello):
    env = _env(redis_server, nohello)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "lib"), os.path.join(REPO, "tests_device")])
    p = subprocess.run([sys.executable, os.path.join(REPO, "tests_device", "run.py"), TEST], env=env,
                       capture_output=True, text=True, timeout=60)
    assert "1 passed, 0 failed" in p.stdout, p.stdout + p.stderr


def test_server_without_hello_micropython(redis_server, nohello, micropython):
    env = _env(redis_server, nohello)
    p = micropython.run([os.path.join(REPO, "tests_device", "run.py"), TEST], env=env)
    assert "1 passed, 0 failed" in p.stdout, p.stdout + p.stderr
