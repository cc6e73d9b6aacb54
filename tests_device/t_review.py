# Adversarial review of the hot read path (client.py _fast/_consume) against the reader's scanner state, and of
# the in-place encoder (send.py). Scripted in-process transports that deliver the server's bytes in the chunks a
# TCP stack could produce. test_bug_*: confirmed bugs (they fail until fixed); the other tests are regression
# guards that pass today. Plain MicroPython; runs under CPython too.
import time

from tinytest import eq, ok, raises
import microredis as mr
from microredis.connection import _Conn
from microredis.commands import Client
from microredis.clock import default_clock
from microredis.encoder import encode


def _sleep_ms(ms):
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(ms)
    else:
        time.sleep(ms / 1000)


class Chunks:
    # delivers each scripted chunk in its own receive (as TCP may split a reply anywhere); with nothing left it
    # waits like a socket that gets no more data
    def __init__(self):
        self.chunks = []
        self.out = b""

    def add(self, *chunks):
        for c in chunks:
            self.chunks.append(c)

    def send(self, buf, n):
        self.out += bytes(buf[0:n])

    def send_obj(self, o):
        self.out += bytes(o)

    def recv_into(self, buf, start, ms):
        if not self.chunks:
            _sleep_ms(ms if 0 <= ms < 1000 else 50)
            return 0
        c = self.chunks[0]
        n = len(buf) - start
        if n > len(c):
            n = len(c)
        buf[start:start + n] = c[0:n]
        if n < len(c):
            self.chunks[0] = c[n:]
        else:
            self.chunks.pop(0)
        return n

    def close(self):
        pass


def client(protocol=3, decode=False, buffer_size=128, limit=4096, timeout=300):
    t = Chunks()
    conn = _Conn(t, mr.MemoryParameters(buffer_size=buffer_size, frame_capacity=8, memory_limit=limit), decode)
    conn.protocol = protocol
    c = Client(conn, timeout, default_clock())
    conn.client = c
    return c, t


def _outcome(f):
    try:
        return f.wait()
    except Exception as e:
        return type(e).__name__


# ---- confirmed bugs ----------------------------------------------------------------------------------------
# The scanner remembers how far it searched an incomplete simple line (Reader._lo) so the next search resumes
# there. When the rest of that line arrives and the line is a +OK or a short :n, the fast path (client._fast)
# consumes it, but _lo stays set, and the scanner's next frame is searched for its CRLF from _lo bytes past its
# start: a shorter first line is not found (the reply waits for bytes that never come: TimeoutError) or the
# frame is taken to run into the next one (ProtocolError "trailing data": every pending future fails).

def test_bug_split_integer_then_simple_string_breaks_the_stream():
    c, t = client(protocol=2)
    t.add(b":123456", b"7\r\n+PONG\r\n:1234\r\n:5\r\n")
    a = c.incr(b"x")
    b = c.ping()
    d = c.incr(b"y")
    e = c.incr(b"z")
    got = [_outcome(a), _outcome(b), _outcome(d), _outcome(e)]
    eq(got, [1234567, b"PONG", 1234, 5])


def test_bug_split_integer_then_last_reply_times_out():
    c, t = client(protocol=2)
    t.add(b":123456", b"7\r\n+PONG\r\n")
    a = c.incr(b"x")
    b = c.ping()
    eq([_outcome(a), _outcome(b)], [1234567, b"PONG"])


def test_bug_split_ok_then_resp3_null_times_out():
    # RESP3: SET answered "+OK" in two segments ("+OK", "\r\n"), then GET of a missing key ("_\r\n")
    c, t = client(protocol=3)
    a = c.set(b"k", b"v")
    b = c.get(b"missing")
    t.add(b"+OK", b"\r\n_\r\n")
    eq([_outcome(a), _outcome(b)], [True, None])


def test_bug_split_ok_then_resp3_null_via_ready():
    c, t = client(protocol=3)
    a = c.set(b"k", b"v")
    b = c.hget(b"h", b"f")
    t.add(b"+OK", b"\r\n", b"_\r\n")
    ok(not a.ready())  # reads "+OK": the scanner has searched it
    eq(_outcome(a), True)
    eq(_outcome(b), None)
