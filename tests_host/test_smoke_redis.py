"""The redis_server / redis_factory fixtures start real servers that answer RESP."""

import socket

from conftest import raw_command


def _roundtrip(host, port, payload):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(64)
            if not chunk:
                break
            data += chunk
    return data


def test_ping(redis_server):
    assert _roundtrip(redis_server.host, redis_server.port, b"*1\r\n$4\r\nPING\r\n") == b"+PONG\r\n"


def test_server_is_redis_6_or_later(redis_server):
    assert redis_server.version >= (6, 2)
    assert redis_server.proc.poll() is None


def test_factory_requirepass(redis_factory, redis_server):
    srv = redis_factory("--requirepass", "secret")
    assert srv.port != redis_server.port
    assert raw_command(srv.host, srv.port, "PING").startswith(b"-NOAUTH")
    assert _roundtrip(srv.host, srv.port, b"*2\r\n$4\r\nAUTH\r\n$6\r\nsecret\r\n") == b"+OK\r\n"


def test_restart_keeps_port(redis_factory):
    srv = redis_factory()
    port = srv.port
    srv.stop()
    assert not srv.ping()
    srv.start()
    assert srv.port == port and srv.ping()
