"""Transports over MicroPython sockets, CircuitPython socketpool and CPython sockets (plain or TLS)."""

from .clock import default_clock
from .errors import ConnectionError, TimeoutError

# Transport contract (docs/DESIGN.md "Transport"):
#   t.send(buf, n)                        send buf[0:n] completely
#   t.send_obj(obj)                       send a whole bytes/bytearray/memoryview
#   t.recv_into(buf, start, timeout_ms)   >= 1 byte into buf[start:]; 0 = nothing before the
#                                         timeout (0: poll, never block; < 0: wait forever)
#   t.close()                             idempotent
# Every socket failure leaves as microredis ConnectionError or TimeoutError, never as OSError,
# and a failed transport is closed: a half-sent command or a half-read reply cannot be resumed.

# errnos that mean "no data yet / would block", not "broken":
#   11 EAGAIN, 110 ETIMEDOUT (Linux, lwIP), 116 ETIMEDOUT (ESP-IDF newlib, also what CircuitPython
#   on ESP32 raises), -110 (RP2), 118/119 (what MicroPython on ESP32 reports for "no data yet").
_NO_DATA = (11, 110, 116, -110, 118, 119)
_TIMEDOUT = (110, 116, -110)
# errnos of a non-blocking connect that is under way: 115 EINPROGRESS (Linux, lwIP), 119 (ESP-IDF).
_IN_PROGRESS = (115, 119, 11)


def _errno(e):
    n = getattr(e, "errno", None)
    if n is None and e.args:
        n = e.args[0]
    return n


def _desc(e):
    # str() of a MicroPython OSError is "[Errno 111] ECONNREFUSED"; mbedtls texts carry newlines.
    return str(e).strip() or repr(e)


def _where(host, port):
    return "%s:%s" % (host, port)


def _nodelay(stack, s):
    # Commands are often written as a header and then a large value (send + send_obj); with Nagle
    # the second write waits for the ACK of the first (up to 40 ms with delayed ACKs, and lwIP
    # enables Nagle by default). The MicroPython unix port has setsockopt but no constants, so fall
    # back to the standard numbers (IPPROTO_TCP 6, TCP_NODELAY 1, the same in lwIP).
    if not hasattr(s, "setsockopt"):
        return
    try:
        s.setsockopt(getattr(stack, "IPPROTO_TCP", 6), getattr(stack, "TCP_NODELAY", 1), 1)
    except (OSError, ValueError, TypeError):
        pass  # an option the port does not know is not a reason to fail the connection


def _tls_context(tls):
    """None, True (the platform's default client context) or an SSLContext-like object."""
    if tls is None or tls is False:
        return None
    if tls is True:
        try:
            import ssl as mod
        except ImportError:
            import tls as mod  # MicroPython without the ssl.py shim
        if hasattr(mod, "create_default_context"):  # CPython, CircuitPython
            return mod.create_default_context()
        # MicroPython: PROTOCOL_TLS_CLIENT verifies the certificate (CERT_REQUIRED); a board has
        # no CA store, so pass a context with load_verify_locations(cadata=DER) instead of True.
        return mod.SSLContext(mod.PROTOCOL_TLS_CLIENT)
    if hasattr(tls, "wrap_socket"):
        return tls
    raise TypeError("tls must be None, True or an SSLContext")


_stack = None


def default_stack():
    """The platform's network stack: the socket module, else a SocketPool over wifi.radio."""
    global _stack
    if _stack is None:
        try:
            import socket
            _stack = socket
        except ImportError:
            # CircuitPython has no socket module. One SocketPool per radio is enough (and creating
            # several wastes their socket tables), so it is cached.
            import socketpool
            import wifi
            _stack = socketpool.SocketPool(wifi.radio)
    return _stack


def open_transport(stack, host, port, timeout_ms, tls=None, server_hostname=None):
    """Connect to host:port and return a Transport.

    timeout_ms bounds the connect (and TLS handshake) and any stall while sending; 0, None or a
    negative value means no bound. The adapter is chosen by what the stack offers: sockets with
    readinto (MicroPython streams) get poll + readinto/write; sockets with only recv_into
    (CircuitPython socketpool, CPython) get settimeout + recv_into/send.
    """
    if stack is None:
        stack = default_stack()
    ctx = _tls_context(tls)
    if ctx is not None and server_hostname is None:
        server_hostname = host
    tmo = timeout_ms if timeout_ms and timeout_ms > 0 else -1
    factory = getattr(stack, "socket", None)
    if factory is None:
        raise TypeError("stack must be a socket module or a SocketPool")
    # MicroPython's socket type has readinto; CPython's socket class and CircuitPython's
    # pool.socket (a bound method) do not.
    if hasattr(factory, "readinto"):
        return _StreamTransport(stack, host, port, tmo, ctx, server_hostname)
    return _SockTransport(stack, host, port, tmo, ctx, server_hostname)


class _Base:
    _s = None
    _tls = False

    def send_obj(self, obj):
        self.send(obj, len(obj))

    def close(self):
        s = self._s
        if s is not None:
            self._s = None
            try:
                s.close()
            except Exception:
                pass  # closing a broken socket may complain; it is closed either way

    def _closed(self):
        raise ConnectionError("connection is closed")

    def _fail(self, e, what):
        """Classify an exception from the socket: return None for "no data yet", else raise."""
        n = _errno(e)
        if self._tls and n in _TIMEDOUT:
            # MicroPython's SSLSocket remembers a read timeout and fails every later call with it,
            # so the connection is dead: report the timeout once and close.
            self.close()
            raise TimeoutError("TLS %s timed out" % what)
        if n in _NO_DATA or isinstance(e, self._nodata):
            return None
        self.close()
        raise ConnectionError("connection lost while %s: %s" % (what, _desc(e)))

    def _eof(self):
        self.close()
        raise ConnectionError("connection closed by the server")


class _StreamTransport(_Base):
    """MicroPython: non-blocking socket, select.poll registered once, readinto/write.

    In steady state send(buf, n) and recv_into(buf, 0, ms) allocate nothing: poll.ipoll iterates
    without building a list, readinto(buf) on a non-blocking socket returns the count (or None when
    empty), and write(buf, off, n) sends a slice without creating a memoryview.
    """

    _nodata = ()

    def __init__(self, stack, host, port, tmo, ctx, server_hostname):
        import select
        self._tmo = tmo
        self._tls = ctx is not None
        self._clk = default_clock()
        addr = self._resolve(stack, host, port)
        raw = stack.socket(addr[0], stack.SOCK_STREAM)
        s = raw
        try:
            self._connect(select, raw, addr[-1], host, port)
            _nodelay(stack, raw)
            if ctx is not None:
                # The handshake runs inside wrap_socket and blocks; the SSLSocket has no
                # settimeout, so bound it on the raw socket first (TLS to a plain port would
                # otherwise hang forever).
                raw.settimeout(tmo / 1000 if tmo > 0 else None)
                s = ctx.wrap_socket(raw, server_hostname=server_hostname)
            # Non-blocking from here on: no read ever times out inside the socket (a timeout
            # would be sticky on a MicroPython SSLSocket); waiting is poll's job.
            s.setblocking(False)
        except Exception as e:
            try:
                raw.close()
            except Exception:
                pass
            if not isinstance(e, (OSError, ValueError)):
                raise  # our own ConnectionError from _connect, or a programming error
            raise ConnectionError("%s to %s failed: %s" % (
                "TLS handshake" if ctx is not None else "connect", _where(host, port), _desc(e)))
        self._s = s
        # Two poll objects, each registered once, so waiting never re-registers or modifies.
        self._rp = select.poll()
        self._rp.register(s, select.POLLIN)
        self._wp = select.poll()
        self._wp.register(s, select.POLLOUT)

    @staticmethod
    def _resolve(stack, host, port):
        # DNS once per open_transport. Ask for stream sockets where getaddrinfo takes the extra
        # arguments (on unix it otherwise lists DGRAM and RAW entries too).
        try:
            try:
                ai = stack.getaddrinfo(host, port, 0, stack.SOCK_STREAM)
            except TypeError:
                ai = stack.getaddrinfo(host, port)
        except OSError as e:
            # On MicroPython the errno of a DNS failure is a string: "[addrinfo error -2]".
            raise ConnectionError("cannot resolve %s: %s" % (host, _errno(e)))
        if not ai:
            raise ConnectionError("cannot resolve %s" % host)
        return ai[0]

    def _connect(self, select, s, sockaddr, host, port):
        # Non-blocking connect + poll gives the same timeout on every port (a blocking connect
        # ignores settimeout on some lwIP ports) and shows a refusal as POLLERR/POLLHUP, which
        # matters because MicroPython sockets have no getsockopt(SO_ERROR).
        s.setblocking(False)
        try:
            s.connect(sockaddr)
        except OSError as e:
            if _errno(e) not in _IN_PROGRESS:
                raise ConnectionError("connect to %s failed: %s" % (_where(host, port), _desc(e)))
        p = select.poll()
        p.register(s, select.POLLOUT)
        ready = p.poll(self._tmo)
        if not ready:
            raise ConnectionError("connect to %s timed out" % _where(host, port))
        if ready[0][1] & (select.POLLERR | select.POLLHUP):
            raise ConnectionError("connect to %s refused" % _where(host, port))

    def recv_into(self, buf, start, timeout_ms):
        s = self._s
        if s is None:
            self._closed()
        if start and start >= len(buf):
            raise ValueError("no room in buffer")
        clk = self._clk
        t0 = clk.ticks_ms() if timeout_ms > 0 else 0
        wait = timeout_ms
        while True:
            if wait:
                # Wake on data, error or hangup; the read below tells them apart.
                for _ in self._rp.ipoll(wait):
                    pass
            try:
                if start == 0:
                    n = s.readinto(buf)
                else:
                    n = s.readinto(memoryview(buf)[start:])
            except OSError as e:
                n = self._fail(e, "receiving")
            if n is not None:
                break
            # Woken without a byte: a TLS record that is still incomplete (mbedtls swallowed
            # the bytes that woke us), or a signal. 0 promises the timeout is over, so wait on.
            if timeout_ms == 0:
                return 0
            if timeout_ms > 0:
                wait = timeout_ms - clk.ticks_diff(clk.ticks_ms(), t0)
                if wait <= 0:
                    return 0
        if n == 0:
            self._eof()
        return n

    def send(self, buf, n):
        s = self._s
        if s is None:
            self._closed()
        off = 0
        while off < n:
            try:
                w = s.write(buf, off, n - off)
            except OSError as e:
                w = self._fail(e, "sending")
            if w:
                off += w
                continue
            # Send buffer full: wait for room. The bound is per stall, not per call, so a large
            # value over a slow link is fine as long as it keeps moving.
            ready = False
            for _ in self._wp.ipoll(self._tmo):
                ready = True
            if not ready:
                self.close()
                raise TimeoutError("send stalled for %d ms" % self._tmo)


class _SockTransport(_Base):
    """CircuitPython socketpool and CPython: settimeout + recv_into/send.

    Uses only connect, settimeout, recv_into, send, close (and setsockopt where it exists): a
    CircuitPython TLS socket has no sendall and no socket has recv/read/readinto there.
    CircuitPython timeouts: OSError(ETIMEDOUT); non-blocking and empty: EAGAIN; non-blocking and
    closed by the peer: ENOTCONN (mapped to ConnectionError like every errno not in _NO_DATA).
    """

    def __init__(self, stack, host, port, tmo, ctx, server_hostname):
        self._tmo = tmo
        self._cur = None  # timeout currently set on the socket in ms (-1: blocking); None: unknown
        self._t0 = None
        nodata = []
        t = getattr(stack, "timeout", None)  # CPython's socket.timeout has errno None
        if t is not None:
            nodata.append(t)
        if ctx is not None:
            try:
                import ssl  # CPython raises these instead of EAGAIN on a non-blocking SSLSocket
                for name in ("SSLWantReadError", "SSLWantWriteError"):
                    t = getattr(ssl, name, None)
                    if t is not None:
                        nodata.append(t)
            except ImportError:
                pass
        self._nodata = tuple(nodata)
        af = stack.AF_INET
        if ":" in host and hasattr(stack, "AF_INET6"):
            af = stack.AF_INET6
        s = stack.socket(af, stack.SOCK_STREAM)
        try:
            _nodelay(stack, s)
            self._settimeout(s, tmo)
            if ctx is not None:
                # CircuitPython wraps before connect and handshakes inside connect(); CPython
                # accepts the same order, so one path serves both.
                s = ctx.wrap_socket(s, server_hostname=server_hostname)
            # connect((host, port)) resolves the name itself (once): CircuitPython's pool has
            # no other way that every port supports.
            s.connect((host, port))
        except Exception as e:
            try:
                s.close()
            except Exception:
                pass
            if not isinstance(e, (OSError, ValueError)):
                raise
            if isinstance(e, getattr(stack, "gaierror", ())):
                raise ConnectionError("cannot resolve %s: %s" % (host, _desc(e)))
            n = _errno(e)
            if n in _TIMEDOUT or isinstance(e, self._nodata):
                raise ConnectionError("connect to %s timed out" % _where(host, port))
            raise ConnectionError("connect to %s failed: %s" % (_where(host, port), _desc(e)))
        self._s = s

    def _settimeout(self, s, ms):
        # Only touch the socket when the value changes: the client usually waits with the same
        # timeout, so a round trip stays at one send and one recv_into.
        if ms < 0:
            ms = -1
        if ms != self._cur:
            s.settimeout(None if ms < 0 else ms / 1000)
            self._cur = ms

    def recv_into(self, buf, start, timeout_ms):
        s = self._s
        if s is None:
            self._closed()
        self._settimeout(s, timeout_ms)
        try:
            if start == 0:
                n = s.recv_into(buf)
            else:
                if start >= len(buf):
                    raise ValueError("no room in buffer")
                n = s.recv_into(memoryview(buf)[start:])
        except OSError as e:
            n = self._fail(e, "receiving")
        if n is None:
            return 0
        if n == 0:
            # A blocking or timed recv_into returns 0 at EOF (a non-blocking one raises ENOTCONN).
            self._eof()
        return n

    def send(self, buf, n):
        s = self._s
        if s is None:
            self._closed()
        if self._cur is not None and self._cur < 0 and self._tmo > 0:
            self._settimeout(s, self._tmo)  # never let a send block forever when bounded
        off = 0
        self._t0 = None
        while off < n:
            try:
                if off == 0 and n == len(buf):
                    w = s.send(buf)
                else:
                    w = s.send(memoryview(buf)[off:n])
            except OSError as e:
                w = self._fail(e, "sending")
            if w:
                off += w
                self._t0 = None
                continue
            self._stalled(s)

    def _stalled(self, s):
        # No progress. CircuitPython's send never waits (its sockets are non-blocking inside and
        # raise EAGAIN when the buffer is full), so measure the stall with the clock and yield a
        # little; CPython's send waits by itself once a timeout is set.
        clk = default_clock()
        now = clk.ticks_ms()
        if self._t0 is None:
            self._t0 = now
        elif self._tmo > 0 and clk.ticks_diff(now, self._t0) >= self._tmo:
            self.close()
            raise TimeoutError("send stalled for %d ms" % self._tmo)
        self._settimeout(s, self._tmo)
        import time
        if hasattr(time, "sleep_ms"):
            time.sleep_ms(1)
        else:
            time.sleep(0.001)
