"""open_transport(): connects a Transport (docs/DESIGN.md "Transport") over the platform's sockets.

The adapters live in their own modules and load on demand, so a board pays only for the one it uses: net_mp.py
(MicroPython sockets), net_sock.py (CircuitPython socketpool, CPython); their shared base is transport.py and the
TLS set-up tlsctx.py (loaded only for TLS)."""

from .errors import text

_stack = None


def default_stack():
    """The platform's network stack: the socket module, else a SocketPool over wifi.radio."""
    global _stack
    if _stack is None:
        try:
            import socket
            _stack = socket
        except ImportError:  # CircuitPython: its adapter's module makes the pool
            from .net_sock import radio_pool
            _stack = radio_pool()
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
    ctx = None
    if tls is not None and tls is not False:
        from .tlsctx import context
        ctx = context(tls)
        if server_hostname is None:
            server_hostname = host
    tmo = timeout_ms if timeout_ms and timeout_ms > 0 else -1
    factory = getattr(stack, "socket", None)
    if factory is None:
        raise TypeError(text("stack"))
    # MicroPython's socket type has readinto; CPython's socket class and CircuitPython's
    # pool.socket (a bound method) do not.
    if hasattr(factory, "readinto"):
        from .net_mp import StreamTransport
        return StreamTransport(stack, host, port, tmo, ctx, server_hostname)
    from .net_sock import SockTransport
    return SockTransport(stack, host, port, tmo, ctx, server_hostname)
