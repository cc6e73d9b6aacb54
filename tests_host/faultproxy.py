"""A loopback TCP fault proxy for tests: sits between a client and a redis-server and misbehaves on demand.

    proxy = FaultProxy(("127.0.0.1", redis_port)).start()   # listens on 127.0.0.1:<free port>
    (source="127.0.0.2": its upstream connections come from that loopback address, which a server does not count
    as local: Redis 7 in protected mode refuses them as it refuses a board on the network)
    h = mr.ConnectionHandler.resp3(proxy.address)
    proxy.stall(); ...; proxy.passthrough()
    proxy.stop()

One accept thread (which also serves the control port) and one thread per proxied connection, each running its
own select loop. Client->server bytes are always forwarded at once (except on blackholed connections); the modes
shape the server->client direction:

| mode                | server -> client                                                                      |
|---------------------|---------------------------------------------------------------------------------------|
| pass                | forwarded as it arrives                                                               |
| delay MS            | each chunk is held MS ms from its arrival at the proxy (a latency, not cumulative)    |
| trickle [US]        | one byte per send (TCP_NODELAY), US microseconds apart (default 100)                  |
| truncate K          | K more bytes are forwarded, then, when a further byte arrives, the client side is     |
|                     | closed normally (FIN) and the upstream closed: a reply cut after K bytes              |
| reset [N]           | the same after N bytes but the close is an RST (SO_LINGER 0); without N: every live   |
|                     | connection (and every new one) is reset at once                                       |
| stall [N]           | nothing (more) is forwarded, the upstream is not even read; the sockets stay open.    |
|                     | With N: N bytes are forwarded first, so the client is left holding half a reply       |
| blackhole           | connections accepted from now on are never connected upstream and never answered      |
|                     | (they stay black-holed until the client closes them, whatever the mode becomes)       |

Byte counts (truncate, reset N, stall N) start at the moment the mode is set, per connection. Changing the mode is
synchronous: when set_mode() (or a control command) returns, every live connection has seen the new mode.

Control port (`control_address`), for a client in another process (the MicroPython unix port): connect, send one
line, read one line back, e.g. "stall\\n" -> "OK\\n", "truncate 20\\n", "stats\\n" -> "OK accepted=3 live=1",
"pass\\n"; an unknown or failing command answers "ERR <text>". `hooks={"restart": server.restart}` adds
commands that call back into the test process (the hook's return value is ignored).
"""

import collections
import select
import socket
import threading
import time

from testkit import HOST, Listener, close_quietly as _close, reset as _rst

POLL_S = 0.02  # how often an idle connection looks for a mode change (bounds set_mode's wait)
ACK_TIMEOUT_S = 3.0
IO_TIMEOUT_S = 5.0  # no blocking socket call in the proxy can hang longer than this

MODES = ("pass", "delay", "trickle", "truncate", "reset", "stall", "blackhole")


def _nodelay(s):
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _fin(s):
    if s is None:
        return
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    _close(s)


class FaultProxy(Listener):
    def __init__(self, upstream, host=HOST, hooks=None, source=None):
        self.upstream = tuple(upstream)
        self.source = source  # the address the upstream connections come from (e.g. 127.0.0.2: not "local")
        self.host = host
        self.hooks = dict(hooks or {})
        self._mode = ("pass", None, 0)  # (name, arg, generation): read atomically by the link threads
        self._cv = threading.Condition()
        self._links = []
        self._stopping = False
        self._thread = None
        self._lsock = None
        self._csock = None
        self.accepted = 0  # connections accepted on the proxy port, ever
        self.log = []  # (time, event) for debugging a failing test

    # ---- life cycle ------------------------------------------------------------------------------------------
    def start(self):
        self._lsock = self.listen(16)
        self._csock = self.listen(16)
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        if self._thread is not None:
            self._thread.join(5)
        _close(self._lsock)
        _close(self._csock)
        with self._cv:
            links = list(self._links)
        for ln in links:
            ln.join(5)

    @property
    def control_address(self):
        return self._csock.getsockname()[:2]

    @property
    def control_port(self):
        return self.control_address[1]

    @property
    def live(self):
        with self._cv:
            return len(self._links)

    @property
    def mode(self):
        return self._mode[:2]

    # ---- modes -----------------------------------------------------------------------------------------------
    def set_mode(self, name, arg=None):
        """Switch mode; returns once every live connection has taken the change into account."""
        if name not in MODES:
            raise ValueError("unknown mode %r" % (name,))
        if name in ("delay", "truncate") and (arg is None or arg < 0):
            raise ValueError("%s needs a count >= 0" % name)
        if name == "trickle" and arg is None:
            arg = 100
        self._drain_accepts()
        with self._cv:
            gen = self._mode[2] + 1
            self._mode = (name, arg, gen)
            self._note("mode %s %s" % (name, arg))
            deadline = time.monotonic() + ACK_TIMEOUT_S
            while True:
                lagging = [ln for ln in self._links if ln.gen != gen]
                left = deadline - time.monotonic()
                if not lagging or left <= 0:
                    break
                self._cv.wait(left)
        return self

    def passthrough(self):
        return self.set_mode("pass")

    def delay(self, ms):
        return self.set_mode("delay", ms)

    def trickle(self, interval_us=100):
        return self.set_mode("trickle", interval_us)

    def truncate(self, k):
        return self.set_mode("truncate", k)

    def reset(self, after=None):
        """after=None: reset every connection now (and each new one); after=N: once N bytes went to the client."""
        return self.set_mode("reset", after)

    def stall(self, after=None):
        """Forward nothing more (after=N: N more bytes first), keeping the connection open."""
        return self.set_mode("stall", after)

    def blackhole(self):
        return self.set_mode("blackhole")

    def stats(self):
        return "accepted=%d live=%d" % (self.accepted, self.live)

    def command(self, line):
        """Apply one control line ("stall", "delay 800", "reset", "reset 5", "stats", a hook name...); returns
        what follows "OK" in the control port's answer, raises ValueError for a bad line."""
        words = line.split()
        if not words:
            raise ValueError("empty command")
        name, args = words[0], words[1:]
        if name == "stats":
            return self.stats()
        if name in self.hooks:
            self.hooks[name](*args)
            return ""
        if name not in MODES:
            raise ValueError("unknown command %r" % (name,))
        if len(args) > 1:
            raise ValueError("%s takes at most one number" % name)
        arg = int(args[0]) if args else None
        self.set_mode(name, arg)
        return ""

    # ---- internals -------------------------------------------------------------------------------------------
    def _note(self, what):
        self.log.append((round(time.monotonic(), 4), what))

    def _drain_accepts(self):
        # A client whose TCP connect completed under the old mode must be judged by it (blackhole-on-connect):
        # let the accept thread take what waits in the backlog first. (The accept thread itself takes pending
        # connections before it reads a control command.)
        if threading.current_thread() is self._thread:
            return
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                r, _, _ = select.select([self._lsock], [], [], 0)
            except (OSError, ValueError):
                return
            if not r:
                return
            time.sleep(0.002)

    def _accept_loop(self):
        while not self._stopping:
            try:
                r, _, _ = select.select([self._lsock, self._csock], [], [], 0.05)
            except (OSError, ValueError):
                return
            if self._lsock in r:
                try:
                    s, _ = self._lsock.accept()
                except OSError:
                    s = None
                if s is not None:
                    self.accepted += 1
                    ln = self._new_link(s, self.accepted)
                    with self._cv:
                        self._links.append(ln)
                    ln.start()
            if self._csock in r:
                try:
                    s, _ = self._csock.accept()
                except OSError:
                    continue
                self._control(s)

    def _new_link(self, s, n):
        return _Link(self, s, n)  # a subclass's own link class (tests_host/test_chaos.py)

    def _control(self, s):
        try:
            s.settimeout(IO_TIMEOUT_S)
            data = b""
            while b"\n" not in data:
                d = s.recv(256)
                if not d:
                    break
                data += d
            line = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
            try:
                out = "OK " + self.command(line)
            except Exception as e:  # reported to the remote side, which raises
                out = "ERR %s: %s" % (type(e).__name__, e)
            s.sendall(out.strip().encode() + b"\n")
        except OSError:
            pass
        finally:
            _close(s)

    def _ack(self, link, gen):
        with self._cv:
            link.gen = gen
            self._cv.notify_all()

    def _gone(self, link):
        with self._cv:
            if link in self._links:
                self._links.remove(link)
            self._cv.notify_all()


class _Link(threading.Thread):
    """One proxied connection: client socket <-> upstream socket, with its own select loop."""

    def __init__(self, proxy, client, n):
        super().__init__(name="faultproxy-link-%d" % n, daemon=True)
        self.p = proxy
        self.c = client
        self.u = None
        self.n = n
        name, arg, gen = proxy._mode
        self.gen = gen
        self.sent = 0  # bytes sent to the client since the current mode was set
        self.black = name == "blackhole"
        self.pend = collections.deque()  # server->client chunks not forwarded yet: [arrival, bytearray]

    def run(self):
        how = "closed"
        try:
            how = self._run() or how
        except OSError as e:
            how = "error %s" % e
        finally:
            if how == "rst":
                _rst(self.c)
            else:
                _fin(self.c)
            _close(self.u)
            self.p._note("link %d %s" % (self.n, how))
            self.p._gone(self)

    def _run(self):
        p = self.p
        c = self.c
        c.settimeout(IO_TIMEOUT_S)
        _nodelay(c)
        if not self.black and not (p._mode[0] == "reset" and p._mode[1] is None):
            try:
                self.u = socket.create_connection(p.upstream, timeout=IO_TIMEOUT_S,
                                                  source_address=p.source and (p.source, 0))
            except OSError:
                return "rst"  # the server is down: the client sees its connection refused/reset
            _nodelay(self.u)
        u = self.u
        up_eof = False
        while not p._stopping:
            name, arg, gen = p._mode
            if name == "reset" and arg is None and not self.black:
                return "rst"  # acknowledged by leaving the list once the RST is out
            if gen != self.gen:
                self.sent = 0
                p._ack(self, gen)
            if self.black:
                name = "blackhole"
            forwarding = name not in ("stall", "blackhole") or (name == "stall" and arg and self.sent < arg)
            rl = [c]
            if u is not None and not up_eof and forwarding:
                rl.append(u)
            timeout = POLL_S
            if self.pend and forwarding:
                if name == "trickle":
                    timeout = arg / 1e6
                elif name == "delay":
                    timeout = min(POLL_S, max(0.0, self.pend[0][0] + arg / 1000.0 - time.monotonic()))
                else:
                    timeout = 0
            r, _, _ = select.select(rl, [], [], timeout)
            if c in r:
                data = c.recv(65536)
                if not data:
                    return "client closed"
                if u is not None and not self.black:
                    u.sendall(data)
            if u is not None and u in r:
                data = u.recv(65536)
                if data:
                    self.pend.append([time.monotonic(), bytearray(data)])
                else:
                    up_eof = True
            if self.pend and forwarding:
                end = self._forward(name, arg)
                if end:
                    return end
            if up_eof and not self.pend and forwarding:
                return "server closed"
        return "proxy stopped"

    def _forward(self, name, arg):
        c = self.c
        pend = self.pend
        if name == "pass":
            while pend:
                c.sendall(pend.popleft()[1])
        elif name == "delay":
            now = time.monotonic()
            while pend and pend[0][0] + arg / 1000.0 <= now:
                c.sendall(pend.popleft()[1])
        elif name == "trickle":
            chunk = pend[0][1]
            c.sendall(chunk[:1])
            del chunk[:1]
            if not chunk:
                pend.popleft()
        elif name in ("truncate", "reset", "stall"):
            while pend and self.sent < arg:
                chunk = pend[0][1]
                k = min(len(chunk), arg - self.sent)
                c.sendall(chunk[:k])
                self.sent += k
                del chunk[:k]
                if not chunk:
                    pend.popleft()
            if pend and name != "stall":  # a byte past the budget has arrived: cut here
                return "rst" if name == "reset" else "truncated"
        return None
