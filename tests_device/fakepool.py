"""A faithful fake of CircuitPython's socketpool.SocketPool over real CPython sockets (host tests only)."""

# Modelled on CircuitPython's shared-bindings/socketpool/Socket.c and
# ports/espressif/common-hal/socketpool/Socket.c:
# - a pool socket is non-blocking underneath; settimeout(s) only changes how long recv_into
#   loops (0: fail at once, None: forever). send() never waits: a full buffer raises EAGAIN.
# - recv_into(buf, n=0): n > len(buf) is a ValueError, 0 means len(buf). Timed out: ETIMEDOUT.
#   Non-blocking and empty: EAGAIN. Non-blocking and closed by the peer: ENOTCONN (and the
#   socket counts as unconnected from then on). Blocking or timed and closed: returns 0.
# - send() on a closed socket: EBADF; on an unconnected one: BrokenPipeError.
# - connect((host, port)) resolves the name (gaierror) and honours the timeout (ETIMEDOUT).
# The Socket class deliberately has no recv, read, readinto, write, sendall, fileno or
# setsockopt, and the pool has no getaddrinfo, so an adapter that reaches for them fails here.
import errno
import select
import socket as _socket
import time


def _err(n):
    # "[Errno 110] ETIMEDOUT", as MicroPython-based CircuitPython prints it; .errno is set
    return OSError(n, "ETIMEDOUT" if n == 116 else errno.errorcode.get(n, str(n)))  # 116: ESP-IDF


class _Calls(dict):
    def hit(self, name):
        self[name] = self.get(name, 0) + 1


class SocketPool:
    AF_INET = 2
    SOCK_STREAM = 1
    SOCK_DGRAM = 2

    class gaierror(OSError):
        pass

    def __init__(self, radio=None, partial=False, chunk=7, timeout_errno=errno.ETIMEDOUT):
        """partial: every send/recv_into moves at most `chunk` bytes. timeout_errno: 110, or 116
        as CircuitPython on ESP32 raises it."""
        self.partial = partial
        self.chunk = chunk
        self.timeout_errno = timeout_errno
        self.calls = _Calls()    # method name -> count, over every socket of this pool
        self.sockets = []

    def socket(self, family=AF_INET, type=SOCK_STREAM, proto=0):
        if family != self.AF_INET or type != self.SOCK_STREAM:
            raise OSError(errno.EINVAL, "fakepool: only AF_INET/SOCK_STREAM")
        s = Socket(self)
        self.sockets.append(s)
        return s


class Socket:
    """What CircuitPython's socketpool.Socket offers to a TCP client, and nothing more."""

    def __init__(self, pool):
        self._pool = pool
        self._s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        self._s.setblocking(False)
        self._timeout_ms = -1     # CircuitPython's default: block forever
        self._connected = False
        self._closed = False
        self._reset = 0           # recv_into calls seen since the peer reset the connection

    # -- helpers (underscore names only: no public attribute beyond the real API) --
    def _hit(self, name):
        self._pool.calls.hit(name)

    def _wait(self, rd):
        """select() for the current timeout; True when ready."""
        t = None if self._timeout_ms < 0 else self._timeout_ms / 1000
        if rd:
            r, _, _ = select.select([self._s], [], [], t)
        else:
            _, r, _ = select.select([], [self._s], [], t)
        return bool(r)

    # -- the API --
    def settimeout(self, value):
        self._hit("settimeout")
        self._timeout_ms = -1 if value is None else int(1000 * value)

    def setblocking(self, flag):
        self._hit("setblocking")
        self._timeout_ms = -1 if flag else 0

    def connect(self, address):
        self._hit("connect")
        if self._closed:
            raise _err(errno.EBADF)
        host, port = address
        if not (host == "localhost" or host.startswith("127.")):
            # only loopback names resolve here: a test never sends a DNS query off the machine
            raise SocketPool.gaierror(-2, "Name or service not known: %s" % host)
        try:
            infos = _socket.getaddrinfo(host, port, _socket.AF_INET, _socket.SOCK_STREAM)
        except _socket.gaierror as e:
            raise SocketPool.gaierror(-2, "Name or service not known: %s" % e)
        err = self._s.connect_ex(infos[0][4])
        if err in (errno.EINPROGRESS, errno.EAGAIN):
            if self._timeout_ms == 0 or not self._wait(False):
                raise _err(self._pool.timeout_errno)
            err = self._s.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        if err:
            raise _err(err)
        self._connected = True

    def send(self, buf):
        self._hit("send")
        if self._closed:
            raise _err(errno.EBADF)
        if not self._connected:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")
        data = memoryview(buf).cast("B")
        if self._pool.partial:
            data = data[: self._pool.chunk]
        try:
            return self._s.send(data)
        except BlockingIOError:
            raise _err(errno.EAGAIN)  # lwIP: non-blocking send with a full buffer
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.ENOTCONN, errno.EPIPE):
                self._connected = False
            raise _err(e.errno)

    def recv_into(self, buffer, bufsize=0):
        self._hit("recv_into")
        if self._closed:
            raise _err(errno.EBADF)
        mv = memoryview(buffer).cast("B")
        n = len(mv)
        if bufsize > n:
            raise ValueError("buffer too small for requested bytes")
        if 0 < bufsize < n:
            n = bufsize
        if self._pool.partial:
            n = min(n, self._pool.chunk)
        if n == 0:
            return 0
        if self._timeout_ms == 0:
            return self._recv_nonblocking(mv, n)
        if self._reset:
            # lwip_recv keeps failing and the C loop keeps polling until the timeout.
            if self._timeout_ms < 0:
                raise AssertionError("a real CircuitPython board would block forever here "
                                     "(recv_into without timeout on a reset socket)")
            time.sleep(self._timeout_ms / 1000)
            raise _err(self._pool.timeout_errno)
        if not self._wait(True):
            raise _err(self._pool.timeout_errno)
        try:
            return self._s.recv_into(mv[:n])  # 0 at EOF: the blocking path returns it as is
        except BlockingIOError:
            raise _err(self._pool.timeout_errno)
        except ConnectionResetError:
            self._reset = 1
            time.sleep(max(self._timeout_ms, 0) / 1000)
            raise _err(self._pool.timeout_errno)

    def _recv_nonblocking(self, mv, n):
        if self._reset:
            # After a reset lwIP reports ENOTCONN (the first failing call gave EAGAIN).
            self._connected = False
            raise _err(errno.ENOTCONN)
        try:
            got = self._s.recv_into(mv[:n])
        except BlockingIOError:
            raise _err(errno.EAGAIN)
        except ConnectionResetError:
            self._reset = 1
            raise _err(errno.EAGAIN)  # errno ECONNRESET is not ENOTCONN: the C code says EAGAIN
        if got == 0:
            self._connected = False
            raise _err(errno.ENOTCONN)
        return got

    def close(self):
        self._hit("close")
        if not self._closed:
            self._closed = True
            self._connected = False
            self._s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FakeSupervisor:
    """Stand-in for CircuitPython's `supervisor` module: ticks_ms() wraps at 2**29.

    It starts `before_wrap` ms before the wrap and advances with real time, so a wait of more
    than `before_wrap` ms crosses it.
    """

    PERIOD = 1 << 29

    def __init__(self, before_wrap=20):
        self._start = self.PERIOD - before_wrap
        self._t0 = time.monotonic_ns()

    def ticks_ms(self):
        return (self._start + (time.monotonic_ns() - self._t0) // 1000000) % self.PERIOD
