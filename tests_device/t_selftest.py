# Proves the tests_device harness itself (runner, skip, server plumbing).

import cfg
from tinytest import eq, ok, raises, skip

SMALL_HEAP = True  # also run under `micropython -X heapsize=64k`


def test_passes():
    eq(1 + 1, 2)
    e = raises(ValueError, int, "x")
    ok(isinstance(e, ValueError))


def test_skips():
    skip("demonstrates SkipTest")


def test_server_ping():
    try:
        import socket
    except ImportError:
        skip("no socket module on this board")
    # raw RESP over a socket: checks that the server address reaches the test
    host, port = cfg.server()
    addr = socket.getaddrinfo(host, port)[0][-1]
    s = socket.socket()
    try:
        s.connect(addr)
        s.send(b"*1\r\n$4\r\nPING\r\n")
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(16)
            if not chunk:
                break
            data += chunk
        eq(data, b"+PONG\r\n")
    finally:
        s.close()
