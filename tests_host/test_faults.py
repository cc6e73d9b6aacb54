"""The real client through a misbehaving network (faultproxy.FaultProxy): slow, trickling, cut, reset, stalled and
black-holed links, and a server restart, on CPython in-process and on the MicroPython unix port; and, on CPython,
a transaction's EXEC reply, a script's NOSCRIPT fallback and a cache fill cut at every byte.

Each scenario is written once, in the portable section below (plain Python that MicroPython runs too). CPython
calls it in-process with the proxy's command() as its control function; for MicroPython that section of this file
is shipped as a script, and the scenario drives the proxy through its control port (FAULT_CTL_PORT). A scenario
returns a list of observations (strings) that the test compares with the expected list, so both runtimes must
behave identically; timings are kept as notes (printed, and checked against bounds inside the scenario).
"""

import os
import re
import socket
import time

import pytest

import microredis as mr
from microredis.cache import Cache
from faultproxy import FaultProxy
from mstime import ms as _ms, since as _since

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- portable: begin ----------------------------------------------------------------------------------------------
# Everything down to "portable: end" also runs on MicroPython: no pytest, no f-strings, only mr, socket, time, mstime.


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def outcome(fn):
    """'ok' or the name of the exception fn() raised ('mr.X' for microredis errors)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the kind is what is being observed
        return ("mr." if isinstance(e, mr.RedisError) else "") + type(e).__name__
    return "ok"


class Env:
    # proxy: (host, port) of the fault proxy; server: the redis-server behind it; ctl(line) -> text after "OK"
    def __init__(self, proxy, server, ctl, key):
        self.proxy = proxy
        self.server = server
        self.ctl = ctl
        self.key = key
        self.notes = []

    def note(self, name, value):
        self.notes.append((name, value))

    def accepted(self):
        # connections the proxy has accepted so far ("accepted=3 live=1")
        return int(self.ctl("stats").split()[0].split("=")[1])

    def handler(self, timeout_ms, proto=3, direct=False):
        addr = self.server if direct else self.proxy
        h = mr.ConnectionHandler.resp3(addr) if proto == 3 else mr.ConnectionHandler.resp2(addr)
        return h.timeout(timeout_ms)


class Ctl:
    # The proxy's control port, from another process: one line out, one line back.
    def __init__(self, port):
        self.addr = socket.getaddrinfo("127.0.0.1", port)[0][-1]

    def __call__(self, line):
        s = socket.socket()
        out = b""
        try:
            s.connect(self.addr)
            s.send(line.encode() + b"\n")
            while not out.endswith(b"\n"):
                d = s.recv(256)
                if not d:
                    break
                out += d
        finally:
            s.close()
        out = out.decode().strip()
        if out[:2] != "OK":
            raise AssertionError("proxy control %r: %r" % (line, out))
        return out[2:].strip()


class RecvCounter:
    # wraps a client's transport to count the receive calls (and bytes) of that client
    def __init__(self, client):
        self.t = client._transport
        client._transport = self
        self.calls = 0
        self.bytes = 0

    def recv_into(self, buf, start, ms):
        n = self.t.recv_into(buf, start, ms)
        if n:
            self.calls += 1
            self.bytes += n
        return n

    def send(self, buf, n):
        self.t.send(buf, n)

    def send_obj(self, o):
        self.t.send_obj(o)

    def close(self):
        self.t.close()


def _redial(env, h, before):
    # the next connect() after a failure dials a new connection through the proxy (back in pass mode)
    c = h.connect()
    expect(env.accepted() == before + 1, "connect() did not re-dial: accepted %d -> %d" % (before, env.accepted()))
    return c


def sc_trickle(env):
    """Every byte of every reply arrives alone: handshake, pipelined SET/GET/HGETALL/INCR, a 2 KB GET, get_into."""
    k = env.key
    big = bytes(range(256)) * 8  # 2 KB, with \r\n and every other byte value inside
    admin = env.handler(5000, direct=True).connect()
    obs = []
    for proto in (3, 2):
        env.ctl("pass")
        admin.set(k + b"big", big).wait()
        admin.command(b"DEL", k + b"h").wait()
        admin.hset(k + b"h", mapping={b"f1": b"a", b"f2": b"\r\n"}).wait()
        admin.set(k + b"n", 41).wait()
        env.ctl("trickle")
        t0 = _ms()
        h = env.handler(20000, proto)
        c = h.connect()  # the HELLO reply is trickled too
        rc = RecvCounter(c)
        with c.pipeline():
            f1 = c.set(k + b"s", b"v\r\n1")
            f2 = c.get(k + b"s")
            f3 = c.hgetall(k + b"h")
            f4 = c.incr(k + b"n")
            f5 = c.get(k + b"big")
            f6 = c.get(k + b"missing")
            f7 = c.command(b"ECHO", b"")
        expect(f1.wait() is True, "SET")
        expect(f2.wait() == b"v\r\n1", "GET")
        v = f3.wait()
        expect(v == {b"f1": b"a", b"f2": b"\r\n"}, "HGETALL %r" % (v,))
        expect(f4.wait() == 42, "INCR")
        v = f5.wait()
        expect(v == big, "2 KB GET: %d bytes" % len(v))
        expect(f6.wait() is None, "GET missing")
        expect(f7.wait() == b"", "ECHO empty")
        buf = bytearray(2100)
        n = c.get_into(k + b"big", buf).wait()
        expect(n == 2048 and buf[:n] == big, "get_into 2 KB")
        expect(c.ping().wait() is True, "PING")
        elapsed = _since(t0)
        # proof that the bytes really came one by one (leaves room for coalescing on a loaded machine)
        expect(rc.calls * 8 >= rc.bytes, "only %d receives for %d bytes" % (rc.calls, rc.bytes))
        env.note("resp%d: %d bytes in %d receives, ms" % (proto, rc.bytes, rc.calls), elapsed)
        h.disconnect()
        obs.append("resp%d trickled ok" % proto)
    env.ctl("pass")
    return obs


def sc_delay_below_timeout(env):
    k = env.key
    h = env.handler(1000)
    c = h.connect()
    env.ctl("delay 150")
    t0 = _ms()
    with c.pipeline():
        f1 = c.set(k, b"slow")
        f2 = c.get(k)
        f3 = c.incr(k + b"n")
    f4 = c.get(k)  # sent on its own: its own chunk, its own delay
    expect(f1.wait() is True and f2.wait() == b"slow" and f3.wait() == 1 and f4.wait() == b"slow", "values")
    elapsed = _since(t0)
    env.note("delayed round trip ms", elapsed)
    expect(elapsed >= 140, "the delay was not applied (%d ms)" % elapsed)
    env.ctl("pass")
    expect(h.connect().get(k).wait() == b"slow", "reuse")
    return ["delayed replies ok"]


def _over_timeout(env, mode):
    # A reply that never comes within the deadline: the waited (oldest) future raises TimeoutError, the others
    # InvalidFuture, the broken client refuses new commands, and the next connect() re-dials.
    k = env.key
    h = env.handler(300)
    c = h.connect()
    c.set(k, 1).wait()
    env.ctl(mode)
    t0 = _ms()
    f1 = c.incr(k)
    f2 = c.get(k)
    f3 = c.set(k + b"x", b"y")
    obs = ["oldest: " + outcome(f1.wait)]
    elapsed = _since(t0)
    env.note("timeout raised after ms", elapsed)
    expect(250 <= elapsed <= 1500, "TimeoutError after %d ms (timeout 300)" % elapsed)
    obs.append("second: " + outcome(f2.wait))
    obs.append("third: " + outcome(f3.wait))
    obs.append("new command: " + outcome(lambda: c.get(k)))
    before = env.accepted()
    env.ctl("pass")
    c = _redial(env, h, before)
    # the INCR reached the server (only replies were held back) and is not retried
    obs.append("after re-dial: %r" % (c.get(k).wait(),))
    return obs


def sc_delay_over_timeout(env):
    return _over_timeout(env, "delay 1000")


def sc_stall_over_timeout(env):
    return _over_timeout(env, "stall")


def sc_stall_mid_reply(env):
    # half a reply has arrived (and is half parsed) when the link stalls: still a clean TimeoutError
    k = env.key
    h = env.handler(300)
    c = h.connect()
    c.set(k, b"z" * 400).wait()
    env.ctl("stall 150")
    t0 = _ms()
    f1 = c.get(k)
    f2 = c.get(k)
    obs = ["half reply: " + outcome(f1.wait)]
    elapsed = _since(t0)
    env.note("timeout raised after ms", elapsed)
    expect(250 <= elapsed <= 1500, "TimeoutError after %d ms (timeout 300)" % elapsed)
    obs.append("next: " + outcome(f2.wait))
    before = env.accepted()
    env.ctl("pass")
    obs.append("after re-dial: %d bytes" % len(_redial(env, h, before).get(k).wait()))
    return obs


def sc_trickle_past_deadline(env):
    # a reply that keeps coming, one byte every ~3 ms, but not in time: the deadline counts from the send,
    # it is not re-armed by every byte that arrives
    k = env.key
    h = env.handler(300)
    c = h.connect()
    c.set(k, b"w" * 1000).wait()
    env.ctl("trickle 3000")
    t0 = _ms()
    obs = ["slow reply: " + outcome(c.get(k).wait)]
    elapsed = _since(t0)
    env.note("timeout raised after ms", elapsed)
    expect(250 <= elapsed <= 1500, "TimeoutError after %d ms (timeout 300)" % elapsed)
    before = env.accepted()
    env.ctl("pass")
    obs.append("after re-dial: %d bytes" % len(_redial(env, h, before).get(k).wait()))
    return obs


def sc_timeout_wait_newest_first(env):
    # the same timeout, but the user waits the newest future first (the natural thing in a loop)
    k = env.key
    h = env.handler(300)
    c = h.connect()
    env.ctl("stall")
    f1 = c.set(k, b"a")
    f2 = c.get(k)
    t0 = _ms()
    obs = ["newest: " + outcome(f2.wait)]
    env.note("raised after ms", _since(t0))
    obs.append("oldest: " + outcome(f1.wait))
    before = env.accepted()
    env.ctl("pass")
    obs.append("after re-dial: %r" % (_redial(env, h, before).get(k).wait(),))
    return obs


def sc_truncate(env):
    # The connection is closed (FIN) partway through the 2nd of three pipelined replies: in its header, in its
    # data, just before its CRLF, between CR and LF. The 1st reply is whole and correct; never a wrong value,
    # never a wait for the deadline.
    k = env.key
    val = b"x" * 300
    h = env.handler(2000)
    c = h.connect()
    c.set(k, val).wait()
    first = len(b":7\r\n")
    obs = []
    n = 6
    for cut in (2, 100, 306, 307):  # into "$300\r\n" + 300 bytes + "\r\n"
        c.set(k + b"n", n).wait()
        env.ctl("truncate %d" % (first + cut))
        t0 = _ms()
        with c.pipeline():
            f1 = c.incr(k + b"n")
            f2 = c.get(k)
            f3 = c.get(k + b"n")
        r1 = f1.wait()
        r = ["first ok" if r1 == n + 1 else "first %r" % (r1,), outcome(f2.wait), outcome(f3.wait)]
        elapsed = _since(t0)
        expect(elapsed < 1000, "cut at %d took %d ms (deadline 2000): EOF not seen" % (cut, elapsed))
        env.note("cut %d noticed after ms" % cut, elapsed)
        obs.append("cut %d: %s" % (cut, ", ".join(r)))
        before = env.accepted()
        env.ctl("pass")
        c = _redial(env, h, before)
        expect(c.get(k).wait() == val and c.get(k + b"n").wait() == b"%d" % (n + 1), "state after re-dial")
        n += 10
    return obs


def sc_reset_mid_reply(env):
    k = env.key
    h = env.handler(2000)
    c = h.connect()
    c.set(k, b"y" * 500).wait()
    env.ctl("reset 100")
    t0 = _ms()
    with c.pipeline():  # one send: the reset cannot land between the two commands and fail the second send
        f1 = c.get(k)
        f2 = c.incr(k + b"n")
    obs = ["cut reply: " + outcome(f1.wait), "next: " + outcome(f2.wait)]
    env.note("reset noticed after ms", _since(t0))
    expect(_since(t0) < 1000, "reset not noticed before the deadline")
    before = env.accepted()
    env.ctl("pass")
    c = _redial(env, h, before)
    obs.append("after re-dial: %d bytes" % len(c.get(k).wait()))
    return obs


def sc_reset_before_reply(env):
    k = env.key
    h = env.handler(2000)
    c = h.connect()
    # reset when the first byte of the reply arrives
    env.ctl("reset 0")
    t0 = _ms()
    with c.pipeline():  # one send, as above
        f1 = c.set(k, b"1")
        f2 = c.get(k)
    obs = ["first: " + outcome(f1.wait), "second: " + outcome(f2.wait)]
    expect(_since(t0) < 1000, "reset not noticed before the deadline")
    before = env.accepted()
    env.ctl("pass")
    c = _redial(env, h, before)
    obs.append("after re-dial: %r" % (c.get(k).wait(),))
    # reset of an idle connection: the next command fails when it is sent or when it is waited
    env.ctl("reset")
    before = env.accepted()

    def cmd():
        c.incr(k).wait()

    obs.append("idle reset, next command: " + outcome(cmd))
    env.ctl("pass")
    c = _redial(env, h, before)
    obs.append("after re-dial: %r" % (c.incr(k).wait(),))
    return obs


def sc_blackhole(env):
    env.ctl("blackhole")
    h = env.handler(300)
    t0 = _ms()
    r = outcome(h.connect)
    elapsed = _since(t0)
    env.note("connect() raised %s after ms" % r, elapsed)
    expect(r in ("mr.ConnectionError", "mr.TimeoutError"), "connect(): %s" % r)
    expect(250 <= elapsed <= 1500, "connect() failed after %d ms (timeout 300)" % elapsed)
    before = env.accepted()
    env.ctl("pass")
    c = _redial(env, h, before)
    return ["blackholed connect raised", "after: %r" % (c.ping().wait(),)]


def sc_server_restart(env):
    # env.server is a private server; ctl("restart") restarts it (same port, empty data set)
    k = env.key
    hp = env.handler(1000, direct=True).use_ping()
    hn = env.handler(1000, direct=True)
    cp = hp.connect()
    cn = hn.connect()
    cp.set(k, b"before").wait()
    cn.get(k).wait()
    env.ctl("restart")
    t0 = _ms()
    cp = hp.connect()  # PINGs the dead socket, re-dials
    obs = ["use_ping: %r" % (cp.get(k).wait(),)]
    env.note("use_ping connect() after restart ms", _since(t0))
    # without use_ping the dead socket is handed out; its first command fails, the next connect() re-dials
    cn = hn.connect()

    def cmd():
        cn.get(k).wait()

    obs.append("no ping, first command: " + outcome(cmd))
    cn = hn.connect()
    obs.append("no ping, re-dialed: %r" % (cn.set(k, b"after").wait(),))
    expect(hp.connect().get(k).wait() == b"after", "use_ping handler reuses its new socket")
    return obs


def sc_pubsub_trickle(env):
    k = env.key
    ch = k + b"ch"
    payloads = [b"hello", b"", b"a\r\nb", bytes(range(256)) * 2]
    pub = env.handler(5000, direct=True).connect()
    obs = []
    for proto in (3, 2):
        env.ctl("trickle")
        h = env.handler(10000, proto)
        c = h.connect()
        sub = c.subscribe(ch)  # the confirmation is trickled
        expect(sub.channels == {ch}, "confirmed channels %r" % (sub.channels,))
        for p in payloads:
            expect(pub.publish(ch, p).wait() == 1, "one subscriber")
        for p in payloads:
            m = sub.receive(5000)
            expect(m is not None, "message missing")
            expect(m.kind == b"message" and m.channel == ch and m.pattern is None, "header %r" % (m,))
            expect(m.payload == p, "payload %r != %r" % (m.payload[:40], p[:40]))
        pub.publish(ch, payloads[3]).wait()
        buf = bytearray(600)
        n = sub.receive_into(buf, 5000)
        expect(n == 512 and buf[:n] == payloads[3] and sub.channel_is(ch), "receive_into %r" % (n,))
        if proto == 3:
            # commands keep working while subscribed; a message arriving meanwhile is queued, not lost
            f = c.set(k, b"v")
            pub.publish(ch, b"during").wait()
            expect(f.wait() is True and c.get(k).wait() == b"v", "command while subscribed")
            m = sub.receive(5000)
            expect(m is not None and m.payload == b"during", "queued message")
        expect(sub.receive(0) is None, "no extra message")
        sub.close()
        expect(c.ping().wait() is True, "usable after unsubscribe")
        h.disconnect()
        obs.append("resp%d messages intact" % proto)
    env.ctl("pass")
    return obs


SCENARIOS = {
    "trickle": sc_trickle,
    "delay_below_timeout": sc_delay_below_timeout,
    "delay_over_timeout": sc_delay_over_timeout,
    "stall_over_timeout": sc_stall_over_timeout,
    "stall_mid_reply": sc_stall_mid_reply,
    "trickle_past_deadline": sc_trickle_past_deadline,
    "timeout_wait_newest_first": sc_timeout_wait_newest_first,
    "truncate": sc_truncate,
    "reset_mid_reply": sc_reset_mid_reply,
    "reset_before_reply": sc_reset_before_reply,
    "blackhole": sc_blackhole,
    "server_restart": sc_server_restart,
    "pubsub_trickle": sc_pubsub_trickle,
}

# ---- portable: end ------------------------------------------------------------------------------------------------

_OVER_TIMEOUT = ["oldest: mr.TimeoutError", "second: mr.InvalidFuture", "third: mr.InvalidFuture",
                 "new command: mr.ConnectionError", "after re-dial: b'2'"]

EXPECTED = {
    "trickle": ["resp3 trickled ok", "resp2 trickled ok"],
    "delay_below_timeout": ["delayed replies ok"],
    "delay_over_timeout": _OVER_TIMEOUT,
    "stall_over_timeout": _OVER_TIMEOUT,
    "stall_mid_reply": ["half reply: mr.TimeoutError", "next: mr.InvalidFuture", "after re-dial: 400 bytes"],
    "trickle_past_deadline": ["slow reply: mr.TimeoutError", "after re-dial: 1000 bytes"],
    # the waited future and the oldest (whose deadline was detected) both missed their deadlines
    "timeout_wait_newest_first": ["newest: mr.TimeoutError", "oldest: mr.TimeoutError", "after re-dial: b'a'"],
    "truncate": ["cut %d: first ok, mr.ConnectionError, mr.InvalidFuture" % cut for cut in (2, 100, 306, 307)],
    "reset_mid_reply": ["cut reply: mr.ConnectionError", "next: mr.InvalidFuture", "after re-dial: 500 bytes"],
    "reset_before_reply": ["first: mr.ConnectionError", "second: mr.InvalidFuture", "after re-dial: b'1'",
                           "idle reset, next command: mr.ConnectionError", "after re-dial: 2"],
    "blackhole": ["blackholed connect raised", "after: True"],
    "server_restart": ["use_ping: None", "no ping, first command: mr.ConnectionError", "no ping, re-dialed: True"],
    "pubsub_trickle": ["resp3 messages intact", "resp2 messages intact"],
}

# Known library misbehaviour, marked strict xfail so the test says so once it is fixed (none at the moment).
KNOWN_BUGS = {}


def _scenario_params():
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason=KNOWN_BUGS[n]))
            if n in KNOWN_BUGS else n for n in SCENARIOS]


MP_MAIN = """
import os
import sys
env = Env(("127.0.0.1", int(os.getenv("FAULT_PROXY_PORT"))),
          ("127.0.0.1", int(os.getenv("MICROREDIS_TEST_PORT"))),
          Ctl(int(os.getenv("FAULT_CTL_PORT"))), os.getenv("FAULT_KEY").encode())
name = sys.argv[1]
t0 = _ms()
obs = SCENARIOS[name](env)
for o in obs:
    print("OBS", o)
for n, v in env.notes:
    print("NOTE", n, "=", v)
print("DONE", name, _since(t0))
"""


def _portable_source():
    with open(os.path.join(HERE, "test_faults.py")) as f:
        text = f.read()
    start = text.index("# ---- portable: begin")
    end = text.index("# ---- portable: end")
    return ("import socket\nimport time\nimport microredis as mr\nfrom mstime import ms as _ms, since as _since\n\n"
            + text[start:end] + MP_MAIN)


@pytest.fixture(scope="module")
def mp_script(tmp_path_factory):
    p = tmp_path_factory.mktemp("faults") / "faults_mp.py"
    p.write_text(_portable_source())
    return str(p)


@pytest.fixture
def fault_setup(request, redis_server, redis_factory):
    """(proxy, server): a fresh proxy in front of the shared server, or, for the restart scenario, in front of a
    private server that the proxy's "restart" control command restarts (the shared one is left alone)."""
    name = request.node.callspec.params["name"]
    server = redis_server
    hooks = {}
    if name == "server_restart":
        server = redis_factory()
        hooks["restart"] = server.restart
    proxy = FaultProxy(server.address, hooks=hooks).start()
    yield proxy, server
    proxy.stop()


_seq = [0]


def _key(runtime, name):
    _seq[0] += 1
    return "t_faults:%s:%s:%d:%d:" % (runtime, name, os.getpid(), _seq[0])


@pytest.mark.parametrize("name", _scenario_params())
def test_cpython(name, fault_setup):
    proxy, server = fault_setup
    env = Env(proxy.address, server.address, proxy.command, _key("cpy", name).encode())
    t0 = time.monotonic()
    obs = SCENARIOS[name](env)
    for n, v in env.notes:
        print("NOTE", n, "=", v)
    print("DONE %s %d ms" % (name, (time.monotonic() - t0) * 1000))
    assert obs == EXPECTED[name], proxy.log


@pytest.mark.parametrize("name", _scenario_params())
def test_micropython(name, fault_setup, micropython, mp_script):
    proxy, server = fault_setup
    env = {"FAULT_PROXY_PORT": proxy.port, "FAULT_CTL_PORT": proxy.control_port,
           "MICROREDIS_TEST_PORT": server.port, "FAULT_KEY": _key("mp", name)}
    cp = micropython.run([mp_script, name], env=env, timeout=60, path=[HERE])  # HERE: mstime
    out = cp.stdout
    print(out)
    assert cp.returncode == 0 and re.search(r"^DONE %s \d+$" % name, out, re.M), \
        "micropython rc=%d\n--- stdout ---\n%s\n--- stderr ---\n%s\n--- proxy ---\n%s" % (
            cp.returncode, out, cp.stderr, proxy.log)
    obs = [line[4:] for line in out.splitlines() if line.startswith("OBS ")]
    assert obs == EXPECTED[name]


# ---- the proxy itself, with raw sockets: the faults are real ------------------------------------------------------

PING = b"*1\r\n$4\r\nPING\r\n"


def _raw(proxy, timeout=2.0):
    s = socket.create_connection(proxy.address, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _read(s, n):
    data = b""
    while len(data) < n:
        d = s.recv(n - len(data))
        if not d:
            break
        data += d
    return data


def test_proxy_modes_on_raw_sockets(redis_server):
    with FaultProxy(redis_server.address) as px:
        s = _raw(px)
        s.sendall(PING)
        assert _read(s, 7) == b"+PONG\r\n"
        # trickle: one byte per segment
        px.trickle(2000)
        s.sendall(PING)
        chunks = [s.recv(64) for _ in range(7)]
        assert chunks == [bytes([b]) for b in b"+PONG\r\n"]
        # delay
        px.delay(200)
        t0 = time.monotonic()
        s.sendall(PING)
        assert _read(s, 7) == b"+PONG\r\n" and time.monotonic() - t0 >= 0.19
        # stall: nothing comes back, the socket stays open; pass releases what was held
        px.stall()
        s.sendall(PING)
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(64)
        px.passthrough()
        s.settimeout(2)
        assert _read(s, 7) == b"+PONG\r\n"
        # truncate: 3 bytes, then an orderly close
        px.truncate(3)
        s.sendall(PING + PING)
        assert _read(s, 14) == b"+PO"
        s.close()
        # reset after 2 bytes: the client sees ECONNRESET
        px.passthrough()
        s = _raw(px)
        px.reset(2)
        s.sendall(PING)
        with pytest.raises(ConnectionResetError):
            _read(s, 7)
            s.recv(64)
        s.close()
        # reset at once, of a live idle connection
        px.passthrough()
        s = _raw(px)
        s.sendall(PING)
        assert _read(s, 7) == b"+PONG\r\n"
        px.reset()
        with pytest.raises(ConnectionResetError):
            s.recv(64)
        s.close()
        # blackhole: accepted, never answered, even after the mode changes back
        before = px.accepted
        px.blackhole()
        s = _raw(px)
        s.sendall(PING)
        deadline = time.monotonic() + 5
        while px.accepted == before and time.monotonic() < deadline:
            time.sleep(0.005)  # the proxy's accept thread must take it while the mode is still blackhole
        assert px.accepted == before + 1
        px.passthrough()
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(64)
        s.close()
        # the control port speaks the same commands
        assert _control(px, "stall") == "OK"
        assert px.mode == ("stall", None)
        assert _control(px, "delay 5") == "OK" and px.mode == ("delay", 5)
        assert _control(px, "bogus").startswith("ERR")
        assert re.match(r"OK accepted=\d+ live=\d+$", _control(px, "stats"))


def _control(px, line):
    with socket.create_connection(px.control_address, timeout=5) as s:
        s.sendall(line.encode() + b"\n")
        return _read(s, 200).decode().strip()


# ---- transactions, scripts and the cache with their replies cut at every byte (truncate, reset; CPython) ------------
# Whatever the cut, no result holds a wrong value: each is its own reply or raises a RedisError, and the next
# connect() works.

CUT = b"t_faults_cut:"


@pytest.fixture
def proxy(redis_server):
    p = FaultProxy(("127.0.0.1", redis_server.port)).start()
    yield p
    p.stop()


class _Failed:
    # a command whose call itself raised (the cut came while it was written, or the re-dial failed)
    def __init__(self, e):
        self.e = e

    def wait(self):
        raise self.e


def _call(fn, *a):
    try:
        return fn(*a)
    except mr.ConnectionError as e:
        return _Failed(e)


def _results(fs):
    out = []
    for f in fs:
        try:
            out.append(("ok", f.wait()))
        except mr.RedisError as e:
            out.append(("err", type(e).__name__))
    return out


@pytest.mark.parametrize("how", ["truncate", "reset"])
def test_transaction_reply_cut_at_every_byte(proxy, redis_server, how):
    admin = mr.ConnectionHandler.resp3(redis_server.address).connect()
    h = mr.ConnectionHandler.resp3(proxy.address).timeout(1000)
    full = None
    for k in range(1, 190, 4):
        admin.command(b"DEL", CUT + b"n", CUT + b"s").wait()
        admin.set(CUT + b"s", b"v").wait()
        c = h.connect()
        c.ping().wait()
        proxy.set_mode(how, k)
        try:
            with c.transaction() as t:
                fs = [t.incr(CUT + b"n"), t.get(CUT + b"s"), t.hgetall(CUT + b"s"), t.incr(CUT + b"n")]
        except mr.ConnectionError:
            pass  # cut while written: the results say so too
        got = _results(fs)
        proxy.passthrough()
        want = [("ok", 1), ("ok", b"v"), ("err", "ReplyError"), ("ok", 2)]
        if got == want:
            full = k if full is None else full
        else:
            assert all(r[0] == "err" and r[1] != "ReplyError" for r in got), (k, got)  # all failed, none wrong
            assert c._conn is None
        c = h.connect()
        assert c.ping().wait() is True
        c.close()
        h.disconnect()
    assert full is not None  # the later cuts come after the whole reply
    admin.close()


@pytest.mark.parametrize("how", ["truncate", "reset"])
def test_noscript_fallback_cut_at_every_byte(proxy, redis_server, how):
    h = mr.ConnectionHandler.resp3(proxy.address).timeout(1000)
    for k in range(1, 70, 3):
        c = h.connect()
        s = c.register_script("return {ARGV[1], 'x'}")
        c.command(b"SCRIPT", b"FLUSH").wait()
        proxy.set_mode(how, k)
        r = _call(s.run, (), (b"a",))
        g = _call(c.get, CUT + b"none")
        got = _results([r, g])
        proxy.passthrough()
        for r, v in zip(got, ([b"a", b"x"], None)):
            assert r == ("ok", v) or (r[0] == "err" and r[1] != "ReplyError"), (k, got)
        c = h.connect()
        assert s.run((), (b"b",), client=c).wait() == [b"b", b"x"]
        c.close()
        h.disconnect()


@pytest.mark.parametrize("how", ["truncate", "reset"])
def test_cache_fill_cut_at_every_byte_with_retry(proxy, redis_server, how):
    admin = mr.ConnectionHandler.resp3(redis_server.address).connect()
    admin.set(CUT + b"a", b"value-a").wait()
    admin.set(CUT + b"b", b"value-b").wait()
    h = mr.ConnectionHandler.resp3(proxy.address).timeout(1000).retry(backoff_ms=0)
    c = h.connect()
    cache = Cache(c, prefixes=(CUT,))
    for k in range(1, 40, 2):
        cache.flush()
        proxy.set_mode(how, k)
        fa = _call(c.get, CUT + b"a")
        fb = _call(c.get, CUT + b"b")
        got = _results([fa, fb])
        proxy.passthrough()
        for r, v in zip(got, (b"value-a", b"value-b")):
            assert r == ("ok", v) or r[0] == "err", (k, got)
        for _ in range(3):  # hits or re-dialled misses: never anything but the value
            try:
                assert c.get(CUT + b"a").wait() == b"value-a"
                assert c.get(CUT + b"b").wait() == b"value-b"
            except mr.ConnectionError:
                time.sleep(0.01)
    admin.set(CUT + b"a", b"changed").wait()
    time.sleep(0.05)
    for _ in range(3):
        try:
            assert c.get(CUT + b"a").wait() == b"changed"
            break
        except mr.ConnectionError:
            time.sleep(0.01)
    cache.close()
    c.close()
    admin.close()
