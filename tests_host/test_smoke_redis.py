"""The redis_server / redis_factory fixtures start real servers that answer RESP."""

import socket

from testkit import raw_command, raw_reply


def _roundtrip(host, port, payload):
    return raw_reply(host, port, payload, timeout=5)


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


def test_encoder_and_reader_over_a_plain_socket(redis_server):
    """The sans-IO core alone against a real server: commands encoded with Encoder, replies parsed with Reader
    from whatever chunks the socket returns (RESP2 and, after HELLO 3, RESP3 values)."""
    from microredis.encoder import Encoder
    from microredis.resp import Reader, MemoryParameters, NEED_DATA, Push

    class Sink:
        def __init__(self, s):
            self.s = s

        def send(self, buf, n):
            self.s.sendall(bytes(buf[:n]))

        def send_obj(self, obj):
            self.s.sendall(obj)

    with socket.create_connection((redis_server.host, redis_server.port), timeout=5) as s:
        e = Encoder(bytearray(64), Sink(s))
        r = Reader(MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=1 << 20))
        cmds = [
            (b"SET", b"smoke:k", b"v" * 300),
            (b"GET", b"smoke:k"),
            (b"HELLO", b"3"),
            (b"HSET", b"smoke:h", b"a", 1, b"b", 2.5),
            (b"HGETALL", b"smoke:h"),
            (b"SUBSCRIBE", b"smoke:ch"),
            (b"UNSUBSCRIBE", b"smoke:ch"),
            (b"DEL", b"smoke:k", b"smoke:h"),
            (b"NOSUCHCOMMAND",),
        ]
        for c in cmds:
            e.command(c)
        e.flush()
        got = []
        while len(got) < len(cmds):
            v = r.gets()
            if v is NEED_DATA:
                r.feed(s.recv(37))  # odd chunk size: replies split everywhere
                continue
            got.append(v)
    assert got[0] == b"OK" and got[1] == b"v" * 300
    assert got[2][b"proto"] == 3
    assert got[3] == 2 and got[4] == {b"a": b"1", b"b": b"2.5"}
    assert type(got[5]) is Push and list(got[5]) == [b"subscribe", b"smoke:ch", 1]
    assert type(got[6]) is Push and got[6][0] == b"unsubscribe"
    assert got[7] == 2
    assert got[8].code == "ERR"
