"""Transport for MicroPython sockets: non-blocking, select.poll, readinto/write; allocation-free when warm."""

from .clock import default_clock
from .errors import ConnectionError, TimeoutError
from .transport import _errno, _desc, _nodelay, _Base, send_obj

# errnos of a non-blocking connect that is under way: 115 EINPROGRESS (Linux, lwIP), 119 (ESP-IDF).
_IN_PROGRESS = (115, 119, 11)


class StreamTransport(_Base):
    """MicroPython: non-blocking socket, select.poll registered once, readinto/write.

    In steady state send(buf, n) and recv_into(buf, 0, ms) allocate nothing: poll.ipoll iterates
    without building a list, readinto(buf) on a non-blocking socket returns the count (or None when
    empty), and write(buf, off, n) sends a slice without creating a memoryview.
    """

    send_obj = send_obj

    def __init__(self, stack, host, port, tmo, ctx, server_hostname):
        import select
        self._timeout_ms = tmo
        self._tls = ctx is not None
        self._clock = default_clock()
        addr = _resolve(stack, host, port)
        raw = stack.socket(addr[0], stack.SOCK_STREAM)
        s = raw
        try:
            # Non-blocking connect + poll gives the same timeout on every port (a blocking connect
            # ignores settimeout on some lwIP ports) and shows a refusal as POLLERR/POLLHUP, which
            # matters because MicroPython sockets have no getsockopt(SO_ERROR).
            raw.setblocking(False)
            try:
                raw.connect(addr[-1])
            except OSError as e:
                if _errno(e) not in _IN_PROGRESS:
                    raise ConnectionError("connect to %s:%s failed: %s" % (host, port, _desc(e)))
            p = select.poll()
            p.register(raw, select.POLLOUT)
            p = p.poll(tmo)
            if not p:
                raise ConnectionError("connect to %s:%s timed out" % (host, port))
            if p[0][1] & (select.POLLERR | select.POLLHUP):
                raise ConnectionError("connect to %s:%s refused" % (host, port))
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
                raise  # our own ConnectionError from the connect above, or a programming error
            raise ConnectionError("%s to %s:%s failed: %s" % (
                "TLS handshake" if ctx is not None else "connect", host, port, _desc(e)))
        self._sock = s
        # Two poll objects, each registered once, so waiting never re-registers or modifies.
        self._poll_in = select.poll()
        self._poll_in.register(s, select.POLLIN)
        self._poll_out = select.poll()
        self._poll_out.register(s, select.POLLOUT)

    # The per-command calls, recv_into and send, take the common case (one wait, one read or write) in frames of
    # at most 11 words, which MicroPython keeps on the C stack (a `try` with `except E as e` puts a frame on the
    # heap on every call: py/objfun.c, VM_MAX_STATE_ON_STACK; bench/hot/frames.py lists them). So the socket call
    # sits in _rd/_wr, whose `except` names nothing, and anything but the common case goes to _recv/_send, which
    # read or write again to see the error: a raising call moved no byte, and a broken socket fails again (or
    # reads EOF).
    def recv_into(self, buf, start, timeout_ms):
        s = self._sock
        if start:
            if start >= len(buf):
                raise ValueError("no room in buffer")
            buf = memoryview(buf)[start:]
        if s is None:
            self._closed()
        if timeout_ms:
            # Wake on data, error or hangup; the read tells them apart. start: 0 unless woken.
            start = 0
            for start in self._poll_in.ipoll(timeout_ms):
                pass
        n = _rd(s, buf)
        if n is not None and n > 0:
            return n
        if n is None and (timeout_ms == 0 or start == 0):
            return 0  # (a read after the wait ran out, as TLS may hold bytes that poll does not see)
        return self._recv(buf, timeout_ms, n)

    def _recv(self, buf, timeout_ms, n):
        # n: what recv_into read: None (woken without a byte: wait again, for timeout_ms from now), -1 (the read
        # raised: read again), 0 (EOF).
        if n == 0:
            self._eof()
        s = self._sock
        clk = self._clock
        t0 = clk.ticks_ms() if timeout_ms > 0 else 0
        wait = 0 if n == -1 else timeout_ms
        while True:
            if wait:
                for _ in self._poll_in.ipoll(wait):
                    pass
            try:
                n = s.readinto(buf)
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
            else:
                wait = timeout_ms
        if n == 0:
            self._eof()
        return n

    def send(self, buf, n):
        s = self._sock
        if s is None:
            self._closed()
        w = _wr(s, buf, n)
        if w != n:
            self._send(buf, n, w)

    def _send(self, buf, n, w):
        # w: what send's write returned: None or 0 (no room), -1 (it raised: write again), or a part of n.
        s = self._sock
        off = 0
        while True:
            if w is None or w == 0:
                # Send buffer full: wait for room. The bound is per stall, not per call, so a large
                # value over a slow link is fine as long as it keeps moving.
                ready = False
                for _ in self._poll_out.ipoll(self._timeout_ms):
                    ready = True
                if not ready:
                    self.close()
                    raise TimeoutError("send stalled for %d ms" % self._timeout_ms)
            elif w > 0:
                off += w
                if off >= n:
                    return
            try:
                w = s.write(buf, off, n - off)
            except OSError as e:
                w = self._fail(e, "sending")


def _rd(s, b):
    try:
        return s.readinto(b)
    except OSError:
        return -1


def _wr(s, b, n):
    # A bare except (an OSError one would take 12 words); what it catches, _send sees again.
    try:
        return s.write(b, n)
    except:  # noqa: E722
        return -1


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
