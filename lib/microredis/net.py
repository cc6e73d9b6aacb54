"""Transports over MicroPython sockets, CircuitPython socketpool and CPython sockets (plain or TLS)."""

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
    # TCP keepalive lets the stack notice a dead peer on an idle socket (its timing is the stack's: hours on
    # Linux by default; h.health_check() is the bound microredis controls). Only where the stack names the
    # option: its number differs between stacks (lwIP is not BSD), so none is guessed.
    so = getattr(stack, "SO_KEEPALIVE", None)
    if so is not None and hasattr(stack, "SOL_SOCKET"):
        try:
            s.setsockopt(stack.SOL_SOCKET, so, 1)
        except (OSError, ValueError, TypeError):
            pass


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
    # Each adapter lives in its own module, so a board loads only the one it uses.
    if hasattr(factory, "readinto"):
        from .net_mp import StreamTransport
        return StreamTransport(stack, host, port, tmo, ctx, server_hostname)
    from .net_sock import SockTransport
    return SockTransport(stack, host, port, tmo, ctx, server_hostname)


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
