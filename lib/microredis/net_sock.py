"""Transport for sockets with recv_into/send only: CircuitPython socketpool and CPython."""

from .clock import default_clock
from .errors import ConnectionError, TimeoutError
from .transport import _TIMEDOUT, _errno, _desc, _nodelay, _Base, send_obj


_HINT = " (is the server's port TLS? rediss:// needs one)"


def radio_pool():
    # CircuitPython has no socket module. One SocketPool per radio is enough (and creating several wastes their
    # socket tables), so net.default_stack() caches it.
    import socketpool  # pyright: ignore[reportMissingImports]  (CircuitPython)
    import wifi  # pyright: ignore[reportMissingImports]
    return socketpool.SocketPool(wifi.radio)


def _connected(s):
    # True when the socket has a peer (the TCP connect succeeded); False where unknown (no getpeername).
    if not hasattr(s, "getpeername"):
        return False
    try:
        s.getpeername()
        return True
    except Exception:
        return False


class SockTransport(_Base):
    """CircuitPython socketpool and CPython: settimeout + recv_into/send.

    Uses only connect, settimeout, recv_into, send, close (and setsockopt where it exists): a
    CircuitPython TLS socket has no sendall and no socket has recv/read/readinto there.
    CircuitPython timeouts: OSError(ETIMEDOUT); non-blocking and empty: EAGAIN; non-blocking and
    closed by the peer: ENOTCONN (mapped to ConnectionError like every errno not in _NO_DATA).
    """

    send_obj = send_obj

    def __init__(self, stack, host, port, tmo, ctx, server_hostname):
        self._timeout_ms = tmo
        self._sock_ms = None  # timeout currently set on the socket in ms (-1: blocking); None: unknown
        self._stall_since = None
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
            # With TLS, connect() is the TCP connect and the handshake in one call; a peer address means TCP got
            # through, so the handshake is what failed (e.g. rediss:// to a plain-TCP port, which never answers).
            what = "TLS handshake with" if ctx is not None and _connected(s) else "connect to"
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
                hint = _HINT if ctx is not None and what[0] == "T" else ""
                raise ConnectionError("%s %s:%s timed out%s" % (what, host, port, hint))
            raise ConnectionError("%s %s:%s failed: %s" % (what, host, port, _desc(e)))
        self._sock = s

    def _settimeout(self, s, ms):
        # Only touch the socket when the value changes: the client usually waits with the same
        # timeout, so a round trip stays at one send and one recv_into.
        if ms < 0:
            ms = -1
        if ms != self._sock_ms:
            s.settimeout(None if ms < 0 else ms / 1000)
            self._sock_ms = ms

    def recv_into(self, buf, start, timeout_ms):
        s = self._sock
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
        s = self._sock
        if s is None:
            self._closed()
        if self._sock_ms is not None and self._sock_ms < 0 and self._timeout_ms > 0:
            self._settimeout(s, self._timeout_ms)  # never let a send block forever when bounded
        off = 0
        self._stall_since = None
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
                self._stall_since = None
                continue
            self._stalled(s)

    def _stalled(self, s):
        # No progress. CircuitPython's send never waits (its sockets are non-blocking inside and
        # raise EAGAIN when the buffer is full), so measure the stall with the clock and yield a
        # little; CPython's send waits by itself once a timeout is set.
        clk = default_clock()
        now = clk.ticks_ms()
        if self._stall_since is None:
            self._stall_since = now
        elif self._timeout_ms > 0 and clk.ticks_diff(now, self._stall_since) >= self._timeout_ms:
            self.close()
            raise TimeoutError("send stalled for %d ms" % self._timeout_ms)
        self._settimeout(s, self._timeout_ms)
        import time
        if hasattr(time, "sleep_ms"):
            time.sleep_ms(1)  # pyright: ignore[reportAttributeAccessIssue]  (the hasattr above)
        else:
            time.sleep(0.001)
