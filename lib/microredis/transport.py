"""The base of the socket adapters (net_mp.py, net_sock.py): closing, and errno classification into our errors."""

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


def _errno(e):
    n = getattr(e, "errno", None)
    if n is None and e.args:
        n = e.args[0]
    return n


def _desc(e):
    # str() of a MicroPython OSError is "[Errno 111] ECONNREFUSED"; mbedtls texts carry newlines.
    return str(e).strip() or repr(e)


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


def send_obj(t, obj):
    # each adapter binds this as its method: it sends through the adapter's own send()
    t.send(obj, len(obj))


class _Base:
    _sock = None
    _tls = False
    # the reader's buffer while the connection has read nothing (connection.py): a failed send keeps there what the
    # server sent (a refusal on accept; rare.refused)
    last_words = None
    _nodata = ()  # exception classes that mean "no data yet" besides the errnos (net_sock.py sets its own)

    def close(self):
        s = self._sock
        if s is not None:
            self._sock = None
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
        b = self.last_words
        if b is not None and not b[0] and what[0] == "s":
            s = self._sock
            try:
                s.setblocking(False)  # pyright: ignore[reportAttributeAccessIssue]
                if hasattr(s, "recv_into"):
                    s.recv_into(b)  # pyright: ignore[reportAttributeAccessIssue]  (CPython, CircuitPython, TLS)
                else:
                    s.readinto(b)  # pyright: ignore[reportAttributeAccessIssue]  (MicroPython)
            except Exception:
                pass  # (a reset may lose the count, not the bytes)
        self.close()
        raise ConnectionError("connection lost while %s: %s" % (what, _desc(e)))

    def _eof(self):
        self.close()
        raise ConnectionError("connection closed by the server")
