"""Sans-IO RESP command encoder: writes arrays of bulk strings into a send buffer that the caller owns."""
# The encoder never touches a socket. When the buffer fills it hands it to `sink.send(buf, n)`, and a value too large
# for the buffer goes to `sink.send_obj(value)` uncopied, right after its header. A Transport is a valid sink.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import text

_BIG = const(4)  # a value is sent uncopied when it exceeds 1/_BIG of the send buffer
_HDR = const(24)  # room for "$<len>\r\n" or "*<n>\r\n"


def check(a):
    """TypeError unless `a` is a valid command argument; called for every argument before anything is written.

    Buffers must be bytes, bytearray (or subclasses) or a 1-D, contiguous memoryview of byte-sized items: the
    encoder sizes a value with len(), which counts items (or rows), not bytes, for any other buffer, and a wrong
    length header would let the value's surplus bytes reach the server as commands. array.array is refused
    (wrap a byte array in memoryview())."""
    t = type(a)
    if t is memoryview:
        if getattr(a, "itemsize", 0) == 1 and getattr(a, "ndim", 1) == 1 and getattr(a, "c_contiguous", True):
            return  # CPython (and builds with itemsize): a byte view, so len() is its size in bytes
        _view(a)
        return
    if t is bytes or t is str or t is int or t is bytearray or t is float:
        return
    if isinstance(a, (bytes, bytearray, str, float)) or (isinstance(a, int) and not isinstance(a, bool)):
        return
    raise TypeError(text("check", type(a).__name__))


def _view(a):
    # A memoryview that did not pass as a byte view above.
    if hasattr(a, "itemsize"):
        raise TypeError(text("_view", a))  # (its item size and dimensions go into the text)
    # MicroPython without memoryview.itemsize: its views are always 1-D and contiguous, but may have wide items.
    # An empty slice store checks the item size first (ValueError "lhs and rhs should be compatible" when the
    # items are wider than a byte) and then writability (TypeError for a read-only view); a writable byte view
    # stores nothing and allocates nothing.
    try:
        a[0:0] = b""
    except ValueError:
        raise TypeError(text("itemsize"))
    except TypeError:
        pass  # read-only, items one byte wide


class Encoder:
    def __init__(self, buf, sink=None):
        self.buf = buf
        self.n = 0
        self.sink = sink
        self.flushes = 0

    def flush(self):
        n = self.n
        if n:
            if self.sink is None:
                raise ValueError(text("sink"))
            self.n = 0
            self.flushes += 1  # lets a caller tell whether part of a command has left the buffer
            self.sink.send(self.buf, n)

    def _room(self, k):
        if len(self.buf) - self.n < k:
            self.flush()

    def raw(self, data):
        """Append pre-encoded bytes (e.g. a constant command prefix such as b"*3\\r\\n$3\\r\\nSET\\r\\n")."""
        k = len(data)
        self._room(k)
        n = self.n
        if k > len(self.buf):
            self.sink.send_obj(data)
            return
        self.buf[n:n + k] = data
        self.n = n + k

    def _int(self, v):
        # Decimal digits straight into the buffer: str(v) would allocate.
        buf = self.buf
        n = self.n
        if v < 0:
            buf[n] = 45
            n += 1
            v = -v
        k = 1
        t = v
        while t >= 10:
            t //= 10
            k += 1
        i = n + k
        while True:
            i -= 1
            buf[i] = 48 + v % 10
            v //= 10
            if i == n:
                break
        self.n = n + k

    def begin(self, nargs):
        self._room(_HDR)
        self.buf[self.n] = 42  # *
        self.n += 1
        self._int(nargs)
        self._crlf()

    def _crlf(self):
        n = self.n
        self.buf[n] = 13
        self.buf[n + 1] = 10
        self.n = n + 2

    def arg(self, a):
        # A byte string's path in a frame of at most 11 words: MicroPython takes a larger frame from the heap on
        # every call, and this runs once per argument. Other types are made bytes by _other, which comes back here.
        t = type(a)
        if t is str:
            a = a.encode()  # pyright: ignore[reportAttributeAccessIssue]  (t is str)
        elif t is not bytes and t is not bytearray and t is not memoryview:
            self._other(a, t)
            return
        k = len(a)  # pyright: ignore[reportArgumentType]  (a is bytes-like by now)
        if k > len(self.buf) // _BIG and self.sink is not None:
            self._room(_HDR)
            self.buf[self.n] = 36
            self.n += 1
            self._int(k)
            self._crlf()
            self.flush()
            self.flushes += 1
            self.sink.send_obj(a)
            self._room(2)
            self._crlf()
            return
        self._room(k + _HDR)
        if len(self.buf) - self.n < k + _HDR:
            raise ValueError(text("arg", k, len(self.buf)))
        self.buf[self.n] = 36
        self.n += 1
        self._int(k)
        self._crlf()
        t = self.n
        self.buf[t:t + k] = a
        self.n = t + k
        self._crlf()

    def _other(self, a, t):
        if t is int or (t is not bool and isinstance(a, int) and t is not float):
            # header needs the digit count first
            k = 1 if a >= 0 else 2
            v = a if a >= 0 else -a
            if v >> 64:
                # 2**64 and past: 20 digits and more (the room reserved below holds 20): a long int's digits, as bytes
                # (bigint.py: any size, where CPython's str() refuses more than 4300 digits)
                from .bigint import digits
                self.arg(digits(a))
                return
            while v >= 10:
                v //= 10
                k += 1
            self._room(2 * _HDR)  # 20 digits at most here
            self.buf[self.n] = 36  # $
            self.n += 1
            self._int(k)
            self._crlf()
            self._int(a)
            self._crlf()
            return
        if t is float:
            a = repr(a).encode()
        else:
            check(a)
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, float):
                a = repr(a).encode()
            else:
                a = memoryview(a)  # pyright: ignore[reportArgumentType]  a bytes subclass may redefine len()
        self.arg(a)

    def command(self, args):
        """Encode a whole command from a sequence of arguments (all checked first)."""
        for a in args:
            check(a)
        self.begin(len(args))
        for a in args:
            self.arg(a)


def upper(a):
    # a command name as upper-case bytes (the refusals of command(), transactions and subscriptions compare them);
    # b"" for anything that is not a name (check() rejects it)
    t = type(a)
    if t is str:
        return a.upper().encode()
    if t is bytes or t is bytearray or t is memoryview:
        return bytes(a).upper()
    return b""


def encode(*args):
    """Convenience for tests and tools: the RESP bytes of one command."""
    out = []

    class _Sink:
        def send(self, buf, n):
            out.append(bytes(buf[:n]))

        def send_obj(self, obj):
            out.append(bytes(obj))

    e = Encoder(bytearray(64), _Sink())
    e.command(args)
    e.flush()
    return b"".join(out)
