"""CPython-only validation: buffer shapes MicroPython cannot build (2-D, strided), surrogates in passwords, and the
TLS handshake message. Shared checks live in tests_device/t_validate.py."""

import socket
import time

import pytest

import microredis as mr
from microredis.encoder import Encoder, check

from conftest import free_port, raw_command
from t_validate import Sink  # counts the encoder's writes (tests_device/)


def _client(server, **kw):
    return mr.ConnectionHandler.resp3(server.address if hasattr(server, "address") else (server.host, server.port)) \
        .timeout(kw.get("timeout", 2000)).connect()


def _counting(c):
    sent = []

    class W:
        def __init__(self, t):
            self.t = t

        def send(self, buf, n):
            sent.append(bytes(buf[:n]))
            self.t.send(buf, n)

        def send_obj(self, o):
            sent.append(bytes(o))
            self.t.send_obj(o)

        def recv_into(self, buf, start, ms):
            return self.t.recv_into(buf, start, ms)

        def close(self):
            self.t.close()

    w = W(c._transport)
    c._transport = w
    c._encoder.sink = w
    return sent


def _views():
    b16 = bytearray(16)
    return [
        memoryview(b16).cast("B", (4, 4)),      # 2-D, itemsize 1: len() is 4 rows, nbytes 16
        memoryview(bytearray(8))[::2],          # strided: not contiguous
        memoryview(bytes(8)).cast("B", (2, 2, 2)),
        memoryview(bytearray(8)).cast("H"),     # itemsize 2
        memoryview(b"x").cast("B", ()),         # 0-D
    ]


@pytest.mark.parametrize("view", _views(), ids=["2d", "strided", "3d", "itemsize2", "0d"])
def test_odd_views_fail_in_check_before_anything_is_written(view):
    with pytest.raises(TypeError):
        check(view)
    s = Sink()
    for size in (64, 256):  # the value copied into the buffer, and sent uncopied after its header
        e = Encoder(bytearray(size), s)
        with pytest.raises(TypeError):
            e.command([b"SET", b"k", view])
        assert (e.n, s.n) == (0, 0)


def test_2d_view_carrying_a_command_never_executes(redis_server):
    # Bytes past the first "row" of a 2-D view would follow a too-short length header and reach the server as a
    # command of their own.
    key = b"t_validate_cpy:victim"
    # after len(view) value bytes and the 2 bytes taken for CRLF, the server reads the next bytes as a command
    inject = b"\r\n*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nowned\r\n" % (len(key), key)
    for total in (256, 4096):  # 16 rows: copied into the 512-byte send buffer; 256 rows: sent uncopied
        raw = bytearray(b"v" * total)
        raw[total // 16:total // 16 + len(inject)] = inject
        view = memoryview(raw).cast("B", (total // 16, 16))
        assert len(view) == total // 16 and view.nbytes == total
        c = _client(redis_server)
        sent = _counting(c)
        with pytest.raises(TypeError):
            c.set(b"t_validate_cpy:k", view)
        with pytest.raises(TypeError):
            c.command(b"SET", b"t_validate_cpy:k", view)
        assert sent == [] and (c._pending, c._encoder.n) == (0, 0)
        assert c.command(b"PING").wait() == b"PONG"
        assert len(c._encoder.buf) == 512
        c.close()
    assert raw_command(redis_server.host, redis_server.port, "EXISTS", key) == b":0\r\n"


def test_strided_view_sends_nothing_and_the_connection_stays_usable(redis_server):
    c = _client(redis_server)
    sent = _counting(c)
    for v in (memoryview(bytearray(b"a" * 400))[::2], memoryview(bytearray(b"abcd"))[::2]):
        with pytest.raises(TypeError):  # was BufferError after the header had left
            c.set(b"t_validate_cpy:s", v)
    assert sent == []
    assert c.set(b"t_validate_cpy:s", memoryview(bytearray(b"ok"))).wait() is True
    assert c.get(b"t_validate_cpy:s").wait() == b"ok"


def test_get_into_refuses_odd_views_before_sending(redis_server):
    c = _client(redis_server)
    assert c.set(b"t_validate_cpy:gi", b"abcdefgh").wait() is True
    sent = _counting(c)
    base = bytearray(16)
    for v in (memoryview(base)[::2], memoryview(base).cast("B", (4, 4)), memoryview(base).cast("H"),
              memoryview(bytes(16))):
        with pytest.raises(TypeError):
            c.get_into(b"t_validate_cpy:gi", v)
    assert sent == []
    assert c.get_into(b"t_validate_cpy:gi", memoryview(base)[2:12]).wait() == 8
    assert bytes(base[2:10]) == b"abcdefgh"


def _chain(e):
    out = []
    while e is not None and len(out) < 10:
        out.append(e)
        e = e.__cause__ if e.__cause__ is not None else e.__context__
    return out


def _assert_no_secret(e, secret):
    assert e.__cause__ is None and e.__context__ is None, "chained: %r" % (_chain(e),)
    for x in _chain(e):
        for text in (repr(x), str(x), repr(x.args)):
            assert secret not in text
    import traceback
    assert secret not in "".join(traceback.format_exception_only(type(e), e))


@pytest.mark.parametrize("make", [
    lambda: mr.Credentials.password_only("SECRETpw\udcff"),
    lambda: mr.Credentials.acl("user", "SECRETpw\ud800x"),
    lambda: mr.Credentials.acl("SECRETpw\ud800", "pw"),
    lambda: mr.from_url("redis://u:SECRETpw\udcff@h"),
    lambda: mr.from_url("redis://u:SECRETpw\udcff%41@h"),
    lambda: mr.from_url("redis://u:SECRETpw%FF@h"),
    lambda: mr.from_url("redis://u:SECRETpw%zz@h"),
    lambda: mr.from_url("redis://u:SECRETpw%C3@h"),
], ids=["surrogate", "acl-surrogate", "user-surrogate", "url-surrogate", "url-surrogate-escape", "url-%FF",
        "url-%zz", "url-truncated-utf8"])
def test_bad_password_text_never_appears_in_the_exception(make):
    with pytest.raises((ValueError, TypeError)) as ei:
        make()
    _assert_no_secret(ei.value, "SECRETpw")


def test_tls_to_a_plain_port_says_the_handshake_timed_out(redis_server):
    h = mr.ConnectionHandler.resp3((redis_server.host, redis_server.port)).timeout(300).tls(True)
    t0 = time.monotonic()
    with pytest.raises(mr.ConnectionError) as ei:
        h.connect()
    assert time.monotonic() - t0 < 3
    msg = str(ei.value)
    assert "TLS handshake" in msg and "connect to" not in msg, msg


def test_tls_to_a_silent_listener_says_the_handshake_timed_out():
    srv = socket.socket()
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        h = mr.ConnectionHandler.resp3(srv.getsockname()).timeout(200).tls(True)
        with pytest.raises(mr.ConnectionError) as ei:
            h.connect()
        assert "TLS handshake with 127.0.0.1:" in str(ei.value) and "timed out" in str(ei.value)
    finally:
        srv.close()


def test_tls_refused_is_still_a_connect_failure():
    port = free_port()  # nothing listens there
    h = mr.ConnectionHandler.resp3(("127.0.0.1", port)).timeout(500).tls(True)
    with pytest.raises(mr.ConnectionError) as ei:
        h.connect()
    assert str(ei.value).startswith("connect to "), str(ei.value)


def test_oversized_and_non_int_ports_fail_at_configuration():
    for port in (70000, -1, 2 ** 64):
        with pytest.raises(ValueError):
            mr.ConnectionHandler.resp3(("127.0.0.1", port))
    for port in ("6379", 6379.5, b"6379", None):
        with pytest.raises(TypeError):
            mr.ConnectionHandler.resp3(("127.0.0.1", port))
    for url in ("redis://h:70000", "redis://h:99999999999999999999", "redis://h:６３７９"):
        with pytest.raises(ValueError):
            mr.from_url(url)
    h = mr.ConnectionHandler.resp3(("127.0.0.1", 6379))
    with pytest.raises(ValueError):
        h.timeout(2 ** 62)
