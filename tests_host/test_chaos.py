"""Chaos soak: the client (chaos_client.py) runs SET/GET/INCR batches through the fault proxy while a chaos thread
switches it between random faults (resets, stalls, FIN mid-reply, injected garbage, split and delayed writes,
black holes). Afterwards a direct connection checks that no acknowledged write was lost, no wait() returned another
command's value, every acknowledged INCR value is unique and within the final count, and nothing but documented
errors was raised. CPython in-process and MicroPython as a subprocess; CHAOS_SECONDS sets the length per runtime
(default 15 for `make test`; `make soak` runs a long one).
"""

import os
import random
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import microredis as mr  # noqa: E402
import chaos_client  # noqa: E402
import faultproxy  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

SECONDS = int(os.environ.get("CHAOS_SECONDS", "15"))
GARBAGE = b"\x00\x01garbage\r\n"  # starts with a byte that is no RESP type: unparseable wherever a reply starts


class RespBoundaries:
    """Incremental scanner of a server->client RESP stream: absolute offsets where top-level replies end."""

    def __init__(self):
        self.pos = 0
        self.line = bytearray()
        self.bulk = 0
        self.stack = []
        self.ends = [0]

    def feed(self, data):
        for b in data:
            self.pos += 1
            if self.bulk:
                self.bulk -= 1
                if not self.bulk:
                    self._done()
                continue
            self.line.append(b)
            if b != 10:
                continue
            line = bytes(self.line)
            self.line = bytearray()
            t = line[:1]
            if t in (b"$", b"=", b"!") and line[1:-2] != b"?":
                n = int(line[1:-2])
                if n < 0:
                    self._done()
                else:
                    self.bulk = n + 2
            elif t in (b"*", b"%", b"~", b">", b"|"):
                n = int(line[1:-2])
                if n <= 0:
                    self._done()
                else:
                    self.stack.append(n * 2 if t in (b"%", b"|") else n)
            else:
                self._done()
        del self.ends[:-64]

    def _done(self):
        while self.stack:
            self.stack[-1] -= 1
            if self.stack[-1] > 0:
                return
            self.stack.pop()
        self.ends.append(self.pos)


class _CountingSock:
    # the link's client socket, counting the bytes sent to the client
    def __init__(self, s):
        self.s = s
        self.sent = 0

    def sendall(self, data):
        self.s.sendall(data)
        self.sent += len(data)

    def fileno(self):
        return self.s.fileno()

    def __getattr__(self, name):
        return getattr(self.s, name)


class _Scanned:
    # the link's deque of pending server->client chunks, feeding each appended chunk to the boundary scanner
    def __init__(self, real, scan):
        self.real = real
        self.scan = scan

    def append(self, item):
        self.scan.feed(item[1])
        self.real.append(item)

    def popleft(self):
        return self.real.popleft()

    def __getitem__(self, i):
        return self.real[i]

    def __len__(self):
        return len(self.real)


class ChaosLink(faultproxy._Link):
    """A proxied connection with two more server->client modes: "garbage" (at the next reply boundary, bytes that
    no RESP parser accepts, then FIN) and "split" (each chunk sent in random small pieces)."""

    def __init__(self, proxy, client, n):
        super().__init__(proxy, _CountingSock(client), n)
        self.scan = RespBoundaries()

    def _run(self):
        self.pend = _Scanned(self.pend, self.scan)  # every upstream chunk passes here in arrival order
        return super()._run()

    def _forward(self, name, arg):
        c = self.c
        pend = self.pend
        if name == "garbage":
            while pend:
                ends = [e for e in self.scan.ends if e >= c.sent]
                if ends and ends[0] == c.sent:
                    c.sendall(GARBAGE)
                    return "truncated"
                if not ends:
                    chunk = pend.popleft()[1]
                    c.sendall(chunk)
                    continue
                chunk = pend[0][1]
                k = min(len(chunk), ends[0] - c.sent)
                c.sendall(bytes(chunk[:k]))
                del chunk[:k]
                if not chunk:
                    pend.popleft()
            return None
        if name == "split":
            while pend:
                chunk = pend.popleft()[1]
                while chunk:
                    k = random.randint(1, 7)
                    c.sendall(bytes(chunk[:k]))
                    del chunk[:k]
                    time.sleep(0.0005)
            return None
        return super()._forward(name, arg)


class ChaosProxy(FaultProxy):
    """FaultProxy whose connections are ChaosLinks: its modes plus "garbage" and "split"."""

    def set_mode(self, name, arg=None):
        if name not in ("garbage", "split"):
            return super().set_mode(name, arg)
        with self._cv:
            self._mode = (name, arg, self._mode[2] + 1)
            self._note("mode %s" % name)
        return self

    def _new_link(self, s, n):
        return ChaosLink(self, s, n)


class Chaos(threading.Thread):
    """Switches the proxy between faults: mostly short healthy stretches, then one fault at a time."""

    FAULTS = [
        ("pass", None), ("pass", None), ("pass", None), ("pass", None),
        ("delay", 60), ("trickle", 300), ("split", None), ("garbage", None),
        ("truncate", "n"), ("reset", "n"), ("reset", None), ("stall", "n"), ("blackhole", None),
    ]

    def __init__(self, proxy, seed):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.rng = random.Random(seed)
        self.stopping = False
        self.counts = {}

    def run(self):
        while not self.stopping:
            name, arg = self.rng.choice(self.FAULTS)
            if arg == "n":
                arg = self.rng.randint(0, 60)
            try:
                self.proxy.set_mode(name, arg)
            except Exception:  # noqa: BLE001 - a mode switch racing a closing link is harmless
                pass
            self.counts[name] = self.counts.get(name, 0) + 1
            time.sleep(self.rng.uniform(0.05, 0.4) if name != "pass" else self.rng.uniform(0.1, 0.6))
        self.proxy.set_mode("pass")


def check(lines, server_addr, prefix):
    """The host-side verdict on a client's report lines; returns a summary dict (raises AssertionError)."""
    admin = mr.ConnectionHandler.resp3(server_addr).timeout(5000).memory(
        mr.MemoryParameters(buffer_size=4096, frame_capacity=64, memory_limit=65536)).connect()
    bad = [ln for ln in lines if ln.startswith("X ") or ln.startswith("SLOW ")]
    assert not bad, "undocumented exceptions, wrong-typed values or overrun deadlines:\n" + "\n".join(bad[:30])
    assert lines and lines[-1].startswith("DONE "), "the client did not finish: %s" % lines[-5:]
    sets = [ln[2:] for ln in lines if ln.startswith("S ")]
    lost = []
    for j in range(0, len(sets), 64):
        with admin.pipeline():
            futs = [(k, admin.get(k)) for k in sets[j:j + 64]]
        for k, f in futs:
            v = f.wait()
            if v != chaos_client.value_of(k.encode()):
                lost.append((k, v))
    assert not lost, "acknowledged SETs not on the server: %s" % lost[:10]
    wrong = []
    for ln in lines:
        if ln.startswith("G "):
            _, k, acked, got = ln.split(" ")
            if got == "-":
                if acked == "1":
                    wrong.append("GET of acknowledged %s gave None" % k)
            elif bytes.fromhex(got) != chaos_client.value_of(k.encode()):
                wrong.append("GET %s gave %r" % (k, bytes.fromhex(got)))
    assert not wrong, "misdelivered GETs:\n" + "\n".join(wrong[:20])
    incrs = [int(ln[2:]) for ln in lines if ln.startswith("I ")]
    final = admin.get(prefix + ":ctr").wait()
    final = int(final) if final is not None else 0
    seen = set()
    dup = sorted(set(n for n in incrs if n in seen or seen.add(n)))
    assert not dup, "INCR values acknowledged twice: %s" % dup[:10]
    over = [n for n in incrs if n > final or n < 1]
    assert not over, "INCR values beyond the final count %d: %s" % (final, over[:10])
    admin.close()
    errors = {}
    for ln in lines:
        if ln.startswith("E "):
            errors[ln[2:]] = errors.get(ln[2:], 0) + 1
    summary = {"sets": len(sets), "gets": sum(1 for ln in lines if ln.startswith("G ")), "incrs": len(incrs),
               "final": final, "errors": errors, "batches": int(lines[-1].split()[1])}
    assert summary["sets"] >= 20, "too little progress under chaos: %s" % summary
    return summary


@pytest.fixture
def chaos_proxy(redis_server):
    proxy = ChaosProxy(redis_server.address).start()
    yield proxy
    proxy.stop()


def _prefix(runtime):
    return "chaos:%s:%d:%d" % (runtime, os.getpid(), int(time.time() * 1000))


def test_chaos_cpython(chaos_proxy, redis_server):
    prefix = _prefix("cp")
    chaos = Chaos(chaos_proxy, seed=os.getpid())
    lines = []
    chaos.start()
    try:
        chaos_client.random = random.Random(os.getpid() + 1)
        chaos_client.run(chaos_proxy.address, SECONDS, prefix.encode(), lines.append)
    finally:
        chaos.stopping = True
        chaos.join(10)
    summary = check(lines, redis_server.address, prefix)
    print("chaos cpython:", summary, "faults:", chaos.counts)


def test_chaos_micropython(chaos_proxy, redis_server, micropython):
    prefix = _prefix("mp")
    chaos = Chaos(chaos_proxy, seed=os.getpid() + 7)
    chaos.start()
    try:
        cp = micropython.run([os.path.join(HERE, "chaos_client.py")],
                             env={"CHAOS_PORT": chaos_proxy.port, "CHAOS_SECONDS": SECONDS, "CHAOS_RUN": prefix},
                             timeout=SECONDS + 120)
    finally:
        chaos.stopping = True
        chaos.join(10)
    lines = cp.stdout.splitlines()
    assert cp.returncode == 0, "micropython rc=%d\n--- stdout tail ---\n%s\n--- stderr ---\n%s" % (
        cp.returncode, "\n".join(lines[-20:]), cp.stderr[-3000:])
    summary = check(lines, redis_server.address, prefix)
    print("chaos micropython:", summary, "faults:", chaos.counts)


def test_boundary_scanner():
    s = RespBoundaries()
    replies = [b"+OK\r\n", b"$3\r\nabc\r\n", b":1\r\n", b"%2\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n$1\r\nb\r\n_\r\n",
               b"$-1\r\n", b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$0\r\n\r\n", b"*0\r\n", b"$2\r\n\r\n\r\n"]
    stream = b"".join(replies)
    for i in range(0, len(stream), 3):
        s.feed(stream[i:i + 3])
    ends = [0]
    for r in replies:
        ends.append(ends[-1] + len(r))
    assert s.ends == ends


def test_garbage_mode_gives_protocol_error(redis_server):
    # the injected bytes are never taken for a reply: the waiting command fails with a documented error
    with ChaosProxy(redis_server.address) as px:
        h = mr.ConnectionHandler.resp3(px.address).timeout(1000)
        c = h.connect()
        assert c.set(b"chaos:g", b"v").wait() is True
        px.set_mode("garbage")
        with pytest.raises(mr.RedisError):
            c.get(b"chaos:g").wait()
            c.get(b"chaos:g").wait()
        px.set_mode("pass")
        assert h.connect().get(b"chaos:g").wait() == b"v"
        h.disconnect()



def test_check_catches_misdelivery(redis_server):
    # the verdict itself: a GET that returned another key's value, a lost write, a doubled INCR each fail
    other = chaos_client.value_of(b"chaos:check:other").hex()
    with pytest.raises(AssertionError, match="misdelivered"):
        check(["G chaos:check:k 0 %s" % other, "DONE 1"], redis_server.address, "chaos:check")
    with pytest.raises(AssertionError, match="not on the server"):
        check(["S chaos:check:never-set", "DONE 1"], redis_server.address, "chaos:check")
    with pytest.raises(AssertionError, match="twice"):
        check(["I 1", "I 1", "DONE 1"], redis_server.address, "chaos:check")
    with pytest.raises(AssertionError, match="undocumented"):
        check(["X TypeError wait: boom", "DONE 1"], redis_server.address, "chaos:check")
