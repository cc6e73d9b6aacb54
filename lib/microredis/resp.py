"""Sans-IO RESP2/RESP3 reader: bytes in, Python values out, inside a fixed memory budget (scan and build passes)."""
# No socket, select, ssl or time here: the connection layer owns I/O and feeds this module.
# Parsing is in two passes over one receive buffer. A resumable *scan* finds where a reply ends (so a reply that
# trickles in byte by byte is not re-parsed from the start), then a *build* pass turns it into values. Both walk
# nested aggregates with an explicit stack of at most MAX_DEPTH levels: no recursion.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import MemoryFull, ProtocolError, reply_error, text

MAX_DEPTH = const(32)  # nesting limit of aggregates; deeper input raises ProtocolError
_MAX_HEADER = const(40)  # a length/count line longer than this is malformed, not "incomplete"
_UNLIMITED = const(0x3FFFFFFF)  # stays a small int on 32-bit boards, so comparisons never allocate

_CR = const(13)
_LF = const(10)
_PLUS = const(43)  # +
_MINUS = const(45)  # -
_COLON = const(58)  # :
_DOLLAR = const(36)  # $
_STAR = const(42)  # *
_UNDER = const(95)  # _
_COMMA = const(44)  # ,
_HASH = const(35)  # #
_BANG = const(33)  # !
_EQUAL = const(61)  # =
_LPAREN = const(40)  # (
_PCT = const(37)  # %
_TILDE = const(126)  # ~
_PIPE = const(124)  # |
_GT = const(62)  # >
_SEMI = const(59)  # ;
_DOT = const(46)  # .
_QMARK = const(63)  # ?

# What Reader._bad(what, ...) reports, as a number: rare.py words it (a sentence here would be a string object
# on every board's heap, a key one more interned name); the scan has 1-10, the build pass 11-19.
_E_LENGTH = const(1)  # invalid length
_E_COUNT = const(2)  # invalid count
_E_LINE = const(3)  # line too long or missing CRLF
_E_CRLF = const(4)  # bulk string not followed by CRLF
_E_CHUNK = const(5)  # streamed string chunk expected
_E_CHUNK_AT = const(6)  # unexpected streamed string chunk
_E_VERBATIM4 = const(7)  # verbatim string shorter than its format
_E_AGG_END = const(8)  # unexpected end of streamed aggregate
_E_TYPE_BYTE = const(9)  # unknown type byte
_E_NESTING = const(10)  # nesting deeper than MAX_DEPTH

# ---- the build pass: turns one complete, already scanned reply into Python values ------------------------
# Plain functions of the Reader `r` below, whose state they read (buf, decode, want_attributes, attributes, _bad_utf8,
# the _containers/_bkey and _counts/_kind stacks, _len(), _bad()). The scan has validated structure and lengths, so
# this pass walks the reply once, with an explicit stack (no recursion), and checks the contents of each value.
# Reader._bad()'s problems found while building (rare.py words them)
_E_INTEGER = const(11)  # invalid integer
_E_VERBATIM = const(12)  # verbatim string without format
_E_NULL = const(13)  # invalid null
_E_BOOLEAN = const(14)  # invalid boolean
_E_DOUBLE = const(15)  # invalid double
_E_MAP_END = const(16)  # streamed map ended after a key
_E_MAP_KEY = const(17)  # map key is a map
_E_TRAILING = const(18)  # trailing data inside reply
_E_EARLY = const(19)  # reply ended early

_COPY_LOOP = const(128)  # copies up to this size go byte by byte: slower, but allocate nothing

# Simple strings returned as constants, so the most common replies allocate nothing.
_INTERNED = (b"OK", b"PONG", b"QUEUED")
_INTERNED_STR = ("OK", "PONG", "QUEUED")


class _NeedData:
    def __repr__(self):
        return "NEED_DATA"


NEED_DATA = _NeedData()  # gets() result when the next reply is incomplete (None and False are real replies)
_NOKEY = _NeedData()  # marks "no map key pending" in the build stack


class Push(list):
    """A RESP3 out-of-band push frame (`>`), e.g. a pub/sub message or a tracking invalidation."""



def copy(dest, di, src, si, k):
    # dest[di:di+k] = src[si:si+k] without allocating for small k (a slice load would allocate)
    if k <= _COPY_LOOP:
        j = 0
        while j < k:
            dest[di + j] = src[si + j]
            j += 1
    else:
        dest[di:di + k] = memoryview(src)[si:si + k]


_FLOAT_CHARS = b"0123456789+-.eainf"  # of a lowercased double: float() alone would take "_", spaces, "infinity"


def _int(r, buf, start, p, eol):
    # an integer _digits() refused: a sign "+", more than 18 digits (RESP3 big numbers), or malformed
    neg = p < eol and buf[p] == _MINUS
    if neg or (p < eol and buf[p] == _PLUS):
        p += 1
    v = _digits(buf, p, eol)
    if v < 0:
        if eol - p <= 18:
            v = p
            while v < eol and 48 <= buf[v] <= 57:
                v += 1  # to the first byte that is not a digit
            raise r._bad(_E_INTEGER, buf, start, v)
        from .bigint import big  # loaded only then
        v = big(r, buf, start, p, eol)
    return -v if neg else v


def _error(buf, a, b):
    # invalid UTF-8 bytes become U+FFFD so `.code` stays a clean word (MicroPython's decode() has no
    # errors="replace")
    v = bytes(buf[a:b])
    out = ""
    i = 0
    while i < len(v):
        n = len(v) - i
        while n:
            try:
                out += v[i:i + n].decode()
                break
            except UnicodeError:
                n -= 1 if n < 5 else n - 4  # the whole rest, else the longest valid prefix of at most 4 bytes
        if n == 0:
            out += "\ufffd"
            n = 1
        i += n
    return reply_error(out)


def _build(r, p, end):
    # Returns the reply's value; a ProtocolError instance (returned) if decode=True met a non-UTF-8 value;
    # _NOKEY if buf[p:end] held only attributes (gets_into builds those before copying the value after them).
    # Every common element is built inline: a call per element whose frame comes from the heap (more than 11 words
    # of locals and stack, on MicroPython) would cost hundreds of bytes of heap traffic per element. The calls left
    # per element (_digits, _simple, _decode, _close) have small frames; the rest is for rare or malformed values.
    buf = r.buf
    start = p
    mv = _fast_view(r)  # values are copied from a view's slice: bytes(buf[a:b]) would copy them twice
    bc = r._containers
    bn = r._counts  # the scan is done with these until this reply is built
    bk = r._kind
    bkey = r._bkey
    depth = 0
    sk = False  # inside a skipped attribute: checked, never built (updated as levels open and close)
    while p < end:
        t = buf[p]
        eol = buf.find(b"\r\n", p + 1, end)
        q = eol + 2
        if t == _COLON or t == _LPAREN:
            c = buf[p + 1] == _MINUS
            v = _digits(buf, p + 2 if c else p + 1, eol)
            if v < 0:
                v = _int(r, buf, start, p + 1, eol)  # a sign "+", more than 18 digits, or malformed
            elif c:
                v = -v
        elif t == _DOLLAR:
            c = buf[p + 1]
            if c == _MINUS:
                v = None
            elif c == _QMARK:
                bc[depth] = None if sk else bytearray()
                bn[depth] = -1
                bk[depth] = _DOLLAR
                depth += 1
                p = q
                continue
            else:
                q = eol + 4 + _digits(buf, p + 1, eol)  # (the scan checked the length)
                if sk:
                    v = None
                else:
                    v = bytes(mv[eol + 2:q - 2])
                    if r.decode:
                        v = _decode(r, v)
        elif t == _PLUS:
            if sk:
                v = None
            else:
                c = _simple(buf, p + 1, eol)
                if c >= 0:
                    v = _INTERNED_STR[c] if r.decode else _INTERNED[c]
                else:
                    v = bytes(mv[p + 1:eol])
                    if r.decode:
                        v = _decode(r, v)
        elif t == _EQUAL or t == _BANG or t == _SEMI:
            c = buf[p + 1]
            if c == _MINUS:
                v = None
            else:
                n = r._len(buf, start, p + 1, eol)
                q = eol + 4 + n
                if t == _SEMI:
                    if n:
                        if not sk:
                            bc[depth - 1].extend(mv[eol + 2:eol + 2 + n])
                        p = q
                        continue
                    q = eol + 2  # ";0" ends the stream and carries no payload
                    depth -= 1
                    v = _close(r, depth)
                elif t == _EQUAL:
                    if buf[eol + 5] != _COLON:
                        raise r._bad(_E_VERBATIM, buf, start, eol + 2)
                    if sk:
                        v = None
                    else:
                        v = bytes(mv[eol + 6:q - 2])
                        if r.decode:
                            v = _decode(r, v)
                else:
                    v = None if sk else _error(buf, eol + 2, eol + 2 + n)
        elif t == _MINUS:
            v = None if sk else _error(buf, p + 1, eol)
        elif t == _UNDER:
            if eol != p + 1:
                raise r._bad(_E_NULL, buf, start, p)
            v = None
        elif t == _HASH:
            c = buf[p + 1]
            if eol != p + 2 or (c != 116 and c != 102):
                raise r._bad(_E_BOOLEAN, buf, start, p)
            v = c == 116
        elif t == _COMMA:
            v = bytes(mv[p + 1:eol]).lower()  # inf, nan in any case, as hiredis reads them
            for c in v:
                if c not in _FLOAT_CHARS:
                    v = b"?"  # float() fails below
            try:
                v = float(v)
            except ValueError:
                raise r._bad(_E_DOUBLE, buf, start, p + 1)
        elif t == _DOT:
            depth -= 1
            if bkey[depth] is not _NOKEY and bk[depth] == _PCT:
                raise r._bad(_E_MAP_END, buf, start, p)
            v = _close(r, depth)
            sk = depth and bc[depth - 1] is None
        else:  # aggregate header (validated by the scan)
            c = buf[p + 1]
            n = -1 if c == _MINUS else -2 if c == _QMARK else _digits(buf, p + 1, eol)
            if n == -1:
                v = None
            else:
                # c None: skipped (an attribute nobody asked for, or inside one). k NEED_DATA: part of a map key
                # (a list level's unused key slot marks it; it becomes a tuple so the key is hashable; a map
                # there cannot be). A list of known length is made whole and filled in place: appends would
                # grow it by reallocation, 4, 8, 16 ... slots
                k = _NOKEY
                if sk or (t == _PIPE and not r.want_attributes):
                    c = None
                elif t == _PIPE:
                    c = {}
                elif depth and (bkey[depth - 1] is NEED_DATA or (bkey[depth - 1] is _NOKEY and (
                        bk[depth - 1] == _PCT or bk[depth - 1] == _PIPE))):
                    if t == _PCT:
                        raise r._bad(_E_MAP_KEY, buf, start, p)
                    c = [None] * n if n > 0 and t != _GT else []  # (a push level appends, see below)
                    k = NEED_DATA
                elif t == _PCT:
                    c = {}
                elif t == _GT:
                    c = Push()
                else:
                    c = [None] * n if n > 0 else []
                if n > 0 and (t == _PCT or t == _PIPE):
                    n *= 2
                if n == 0:
                    if t == _PIPE:
                        p = q
                        continue
                    v = () if k is NEED_DATA else c
                else:
                    bc[depth] = c
                    bn[depth] = -1 if n == -2 else n
                    bk[depth] = t
                    bkey[depth] = k
                    depth += 1
                    sk = c is None
                    p = q
                    continue
        p = q
        # add v to its parent; close every aggregate it completes
        while True:
            if depth == 0:
                if p < end:
                    raise r._bad(_E_TRAILING, buf, start, p)
                if r.decode and r._bad_utf8:
                    r._bad_utf8 = False
                    r.attributes = None
                    return ProtocolError(text("decode"))
                return v
            q = depth - 1  # (the level v goes to: q is free once p has moved on, and a local less keeps a word)
            c = bc[q]
            k = bk[q]
            n = bn[q]
            if k == _PCT or k == _PIPE:
                if bkey[q] is _NOKEY:
                    bkey[q] = v
                else:
                    if c is not None:
                        c[bkey[q]] = v
                    bkey[q] = _NOKEY
            elif c is not None:
                if n > 0 and k != _GT:
                    c[len(c) - n] = v  # (made whole: n elements were still to come)
                else:
                    c.append(v)
            if n < 0:
                break
            n -= 1
            bn[q] = n
            if n:
                break
            depth = q
            v = _close(r, q)
            sk = q and bc[q - 1] is None
            if k == _PIPE:
                break
    if depth == 0:
        return _NOKEY  # attributes only (the value after them is being copied by gets_into)
    raise r._bad(_E_EARLY, buf, start, p)


def _close(r, d):
    c = r._containers[d]
    if c is None:
        return None  # skipped
    r._containers[d] = None
    k = r._kind[d]
    if k == _DOLLAR:
        c = bytes(c)
        return _decode(r, c) if r.decode else c
    if k == _PIPE:
        if r.attributes is None:
            r.attributes = c
        else:
            r.attributes.update(c)
        return None
    if r._bkey[d] is NEED_DATA:
        return tuple(c)
    return c


def _decode(r, v):
    try:
        return v.decode()
    except UnicodeError:
        r._bad_utf8 = True
        return v



class MemoryParameters:
    """buffer_size: receive buffer bytes, allocated once; frame_capacity: replies that may be pending at once;
    memory_limit: most bytes one reply may occupy while parsed (None: no cap but the machine's memory)."""

    def __init__(self, buffer_size=512, frame_capacity=8, memory_limit=16384):
        what = None  # the wrong argument
        if type(buffer_size) is not int or buffer_size < 64:
            what = "buffer_size"
        elif type(frame_capacity) is not int or frame_capacity < 1:
            what = "frame_capacity"
        elif memory_limit is not None and (type(memory_limit) is not int or memory_limit < buffer_size):
            what = "memory_limit"
        if what is not None:
            raise ValueError(text(what))
        self.buffer_size = buffer_size
        self.frame_capacity = frame_capacity
        self.memory_limit = memory_limit

    def __repr__(self):
        from .rare import params_repr
        return params_repr(self)


class Reader:
    # A class default, set on the instance only on a rare path (an instance attribute more grows the instance dict,
    # and a 64 KB heap has no room to spare): decode=True met a value that is not UTF-8 in the reply being built.
    # Read only when decode is on, so the hot path never looks it up.
    _bad_utf8 = False

    def __init__(self, params=None, decode=False, attributes=False):
        if params is None:
            params = MemoryParameters()
        self.params = params
        self.decode = decode
        self.want_attributes = attributes
        self.attributes = None  # with attributes=True: dict of attributes seen in the last reply, else None
        lim = params.memory_limit
        self._limit = _UNLIMITED if lim is None or lim > _UNLIMITED else lim
        self._base = bytearray(params.buffer_size)
        self.buf = self._base
        self.wpos = 0  # end of received data
        self.rpos = 0  # start of the reply being scanned (everything before it is consumed); read-only outside
        self._scanned = 0  # scan position: end of the last complete element of that reply
        self._need = 0  # bytes the incomplete reply is known to need, so the buffer grows once, not by doubling
        self._depth = 0
        self._counts = [0] * MAX_DEPTH  # elements still expected per level; -1 for streamed aggregates
        self._kind = bytearray(MAX_DEPTH)  # type byte per level
        self._skip = False  # discarding a reply larger than memory_limit
        # Contract with the client: after MemoryFull, skipped_type is the type byte of the frame that was discarded
        # (62 ">" for a push, 36 "$" for a bulk value that did not fit a gets_into() buffer, the value's type when
        # attributes came first); 0 once a reply is returned. So a dropped push is never confused with a reply.
        self.skipped_type = 0
        # skip mode: payload bytes (with CRLF) still to discard; -1 inside an over-long simple line, discarding up to
        # its CRLF (one attribute for both: each one more grows the instance dict, and 64 KB heaps have no room)
        self._drop = 0
        self._into = None  # gets_into: destination of a bulk string being copied as it arrives
        self._ilen = -1  # its declared length; -1 when no copy is in progress
        self._ileft = 0  # bytes still expected, CRLF included
        self._ipos = 0  # bytes copied so far
        # scan: an incomplete line was searched this far past its start, the next search resumes there; during a
        # gets_into copy (no scan then): -1 if the value is a streamed string ($?), so _ilen grows chunk by chunk
        self._searched = 0
        self.msg_kind = None  # gets_msg_into(): kind and channel length of the last message (set here: a new
        self.msg_clen = 0  # attribute created later would allocate)
        self._bulk_len = 0  # gets_msg_into() (rare.py): the length of the bulk string just parsed
        self._view = None  # memoryview of the base buffer, made once, for the fast path's values (_fast_view)
        self._pend = None  # fed data that did not fit yet (kept by reference, not copied)
        self._pend_pos = 0  # how much of it has been moved into the buffer
        # build-pass stack, allocated once
        # build pass: containers and pending map keys per level; its counts and kinds reuse _counts/_kind, which the
        # scan no longer needs once a reply is complete
        self._containers = [None] * MAX_DEPTH
        self._bkey = [None] * MAX_DEPTH

    def _bad(self, what, buf, start, p):
        # Error path only (rare.py): where in the reply the problem is, and the received bytes around it.
        from .rare import bad
        return bad(self, what, buf, start, p)

    # ---- buffer management -------------------------------------------------------------------------------
    def space(self):
        """Free bytes at buf[wpos:], after compacting or growing; a transport then writes there and calls wrote()."""
        if self.rpos == self.wpos:
            # Everything consumed: restart at 0 so a transport can readinto(buf) with no slice (no allocation).
            # (This common case in a frame of its own: the rest's frame comes from the heap on MicroPython.)
            self._scanned = 0
            self.rpos = 0
            self.wpos = 0
            if self.buf is not self._base and self._ilen < 0:
                self.buf = self._base  # give back a buffer grown for one large reply
            return len(self.buf)
        return self._room()

    def _room(self):
        w = self.wpos
        r = self.rpos
        buf = self.buf
        free = len(buf) - w
        if free > 0:
            return free
        if r > 0:
            n = w - r
            buf[0:n] = buf[r:w]
            self._scanned -= r
            self.rpos = 0
            self.wpos = n
            return len(buf) - n
        size = len(buf) * 2
        if size < self._need:
            size = self._need
        if size > self._limit:
            size = self._limit
        self.skipped_type = 0  # (if this fails, nothing was discarded)
        if size <= len(buf):
            # Only reachable with a limit below the buffer: the scan switches to skip mode before this.
            raise MemoryFull("receive buffer cannot grow past memory_limit")
        try:
            nb = bytearray(size)
        except MemoryError:
            raise MemoryFull("no memory to grow the receive buffer to %d bytes" % size)
        nb[0:w] = buf[0:w]
        self.buf = nb
        return size - w

    def wrote(self, n):
        self.wpos += n

    def feed(self, data):
        """Queue received bytes: copied into the receive buffer as far as it has room; the rest waits for gets().
        Never raises and never drops data: memory_limit applies to each reply as gets() parses it."""
        n = len(data)
        if n == 0:
            return
        d = self._pend
        if d is not None:
            d.extend(data)  # _pull() drops it once drained
            return
        # not space() when the buffer is full: feed() must not grow it for data that may be many whole replies
        # (the limit is per reply); gets() grows it through _pull() only for the one reply it is scanning
        w = self.wpos
        r = self.rpos
        if r == w or (r and w == len(self.buf)):
            free = self.space()  # resets or compacts
            w = self.wpos
        else:
            free = len(self.buf) - w
        if n <= free:
            self.buf[w:w + n] = data
            self.wpos = w + n
        else:
            self.buf[w:w + free] = data[0:free]
            self.wpos = w + free
            self._pend = bytearray(data[free:])  # a copy: the caller may reuse its buffer
            self._pend_pos = 0

    def _pull(self):
        # Move more queued data into the buffer; False when there is none.
        d = self._pend
        if d is None:
            return False
        free = self.space()
        i = self._pend_pos
        k = len(d) - i
        if k > free:
            k = free
        w = self.wpos
        self.buf[w:w + k] = d[i:i + k]
        self.wpos = w + k
        i += k
        if i >= len(d):
            self._pend = None
            self._pend_pos = 0
        else:
            self._pend_pos = i
        return True

    def pending(self):
        """Bytes received but not yet returned as replies."""
        n = self.wpos - self.rpos
        if self._pend is not None:
            n += len(self._pend) - self._pend_pos
        return n

    # ---- public parsing ------------------------------------------------------------------------------------
    def gets(self):
        """The next reply, or NEED_DATA. Error replies are returned as ReplyError instances; with decode=True a
        reply holding a value that is not UTF-8 is returned as a ProtocolError instance (the reply is consumed, the
        stream stays in sync). Raises ProtocolError on malformed input (the stream is then unusable) and MemoryFull
        after discarding a reply larger than memory_limit (the stream is still in sync; see skipped_type)."""
        return self._get(None)

    def gets_into(self, dest):
        """Like gets(), but a bulk-string reply ($n, streamed $?, or either after attributes) is copied into `dest`
        as it arrives, bypassing memory_limit, and its length is returned (None for nil). A value longer than `dest`
        is discarded and raises MemoryFull with skipped_type 36 ("$"); the stream stays in sync. copied(v) tells a
        length copied into dest from another reply that is an integer."""
        if not self._skip:
            self.skipped_type = 0  # only a skip that begins now sets it (62 may be left from a dropped push)
        if self._ilen < 0:
            self._ipos = -1  # a copy that completes sets it to the length: tells a copied value from an integer
        return self._get(dest)

    def copied(self, v):
        """True if v, what gets_into() just returned, is the length of a value copied into its dest (not an integer
        reply or any other value)."""
        return type(v) is int and self._ipos == v

    def _get(self, dest):
        while True:
            if self._ilen >= 0:
                v = self._copy_into()
                if v is not NEED_DATA:
                    return v
            elif self._scan(dest):
                if self._ilen < 0:
                    return self._take()
                continue
            if not self._pull():
                return NEED_DATA

    def _take(self):
        start = self.rpos
        end = self._scanned
        self._need = 0
        self.rpos = end  # consumed before building, so a failing build cannot leave the stream half-read
        self.attributes = None
        self.skipped_type = 0
        return _build(self, start, end)

    # ---- pass 1: scan --------------------------------------------------------------------------------------
    def _len(self, buf, start, p, eol):
        # Parses a length/count from buf[p:eol]: -1, a non-negative int, or -2 for "?" (streamed).
        n = eol - p
        if n == 1 and buf[p] == _QMARK:
            return -2
        if n == 2 and buf[p] == _MINUS and buf[p + 1] == 49:
            return -1
        if n == 0 or n > 18:
            raise self._bad(_E_LENGTH, buf, start, p)
        v = 0
        while p < eol:
            c = buf[p] - 48
            if c < 0 or c > 9:
                raise self._bad(_E_LENGTH, buf, start, p)
            v = v * 10 + c
            p += 1
        return v

    def _scan(self, dest):
        # True when buf[rpos:_scanned] holds a whole reply, or when a gets_into copy has begun. In skip mode (a
        # reply past memory_limit) scanned bytes are discarded as they go, and MemoryFull is raised once the reply
        # has ended. Each element is scanned inline, in this one frame per reply: a call per element would take its
        # frame from the heap on MicroPython (more than 11 words of locals and stack), ~400 bytes per element.
        buf = self.buf
        w = self.wpos
        cnt = self._counts
        kind = self._kind
        while True:
            s = self._scanned
            skip = self._skip
            e = -1  # where the element at s ends (> 0); 0: it opened an aggregate or a skip state (self._scanned then
            # points past its header); -1: incomplete; -2: larger than memory_limit
            if skip:
                self.rpos = s
                n = self._drop
                if n > 0:
                    if w - s < n:
                        self._drop = n - (w - s)
                        self.rpos = self._scanned = w
                        return False
                    e = s + n
                    self._drop = 0
                elif n < 0:
                    q = buf.find(b"\r\n", s, w)
                    if q < 0:
                        # keep a trailing CR: it may be half of the CRLF
                        self.rpos = self._scanned = w - 1 if w > s and buf[w - 1] == _CR else w
                        return False
                    self._drop = 0
                    e = q + 2
                elif self._depth == 0 and s < w and buf[s] != _PIPE:
                    self.skipped_type = buf[s]  # the value after discarded attributes
            if e < 0 and s < w:
                # the element at s; in skip mode bulk payloads and long lines are counted, not buffered
                start = self.rpos
                t = buf[s]
                d = self._depth
                if d and kind[d - 1] == _DOLLAR and t != _SEMI:
                    raise self._bad(_E_CHUNK, buf, start, s)
                q = self._searched
                if q:
                    self._searched = 0
                q = buf.find(b"\r\n", s + (q or 1), w)
                if q < 0:
                    if t == _PLUS or t == _MINUS or t == _COMMA or t == _LPAREN or t == _COLON:
                        if skip and w - s > _MAX_HEADER:
                            self._drop = -1
                            e = 0
                        elif w - s > 2:
                            self._searched = w - s - 1  # a long line arriving in pieces is searched once, not per piece
                    elif w - s > _MAX_HEADER:
                        raise self._bad(_E_LINE, buf, start, s)
                elif t == _PLUS or t == _COLON or t == _MINUS or t == _COMMA or t == _HASH or t == _LPAREN or \
                        t == _UNDER:
                    e = q + 2
                elif t == _DOLLAR or t == _EQUAL or t == _BANG or t == _SEMI:
                    n = _digits(buf, s + 1, q)
                    if n < 0:
                        n = self._len(buf, start, s + 1, q)  # -1 (nil), -2 (streamed), or it raises
                        if t != _DOLLAR:
                            raise self._bad(_E_LENGTH, buf, start, s + 1)
                    if n == -2 and (dest is None or d or skip):
                        if d >= MAX_DEPTH:
                            raise self._bad(_E_NESTING, buf, start, s)
                        cnt[d] = -1
                        kind[d] = _DOLLAR
                        self._depth = d + 1
                        self._scanned = q + 2
                        e = 0
                    elif n == -1:
                        e = q + 2
                    elif t == _SEMI and (not d or kind[d - 1] != _DOLLAR):
                        raise self._bad(_E_CHUNK_AT, buf, start, s)
                    elif t == _SEMI and n == 0:
                        self._depth = d - 1  # ";0" ends the streamed string
                        e = q + 2
                    elif t == _EQUAL and n < 4:
                        raise self._bad(_E_VERBATIM4, buf, start, s)
                    elif skip:
                        self._drop = n + 2
                        self._scanned = q + 2
                        e = 0
                    elif dest is not None and t == _DOLLAR and d == 0:
                        # gets_into: the copy begins (n -2: a streamed string, copied chunk by chunk as it arrives)
                        self.attributes = None
                        if s != start:
                            self._need = 0
                            _build(self, start, s)  # attributes before the value: built (or skipped) first
                        self._into = dest
                        self._ilen = n
                        self._ileft = n + 2
                        self._ipos = 0
                        self.rpos = self._scanned = q + 2
                        if n < 0:  # streamed: chunk headers are read as the copy goes
                            self._searched = -1
                            self._ilen = self._ileft = 0
                        return True
                    else:
                        e = q + 4 + n
                        if e > w:
                            self._need = e - start
                            e = -2 if e - start > self._limit else -1
                        elif buf[e - 2] != _CR or buf[e - 1] != _LF:
                            raise self._bad(_E_CRLF, buf, start, e - 2)
                elif t == _STAR or t == _TILDE or t == _PCT or t == _GT or t == _PIPE:
                    n = _digits(buf, s + 1, q)
                    if n < 0:
                        n = self._len(buf, start, s + 1, q)
                    if n == -1:
                        if t != _STAR:
                            raise self._bad(_E_COUNT, buf, start, s + 1)
                        e = q + 2
                    elif n == -2 and (t == _GT or t == _PIPE):
                        raise self._bad(_E_COUNT, buf, start, s + 1)
                    elif n == 0 and t != _PIPE:
                        e = q + 2
                    else:
                        # an aggregate opens (an empty attribute describes nothing: only its header is passed)
                        if n:
                            if n == -2:
                                n = -1
                            elif t == _PCT or t == _PIPE:
                                n *= 2
                            if d >= MAX_DEPTH:
                                raise self._bad(_E_NESTING, buf, start, s)
                            cnt[d] = n
                            kind[d] = t
                            self._depth = d + 1
                        self._scanned = q + 2
                        e = 0
                elif t == _DOT:
                    if q != s + 1 or not d or cnt[d - 1] >= 0:
                        raise self._bad(_E_AGG_END, buf, start, s)
                    self._depth = d - 1
                    e = q + 2
                else:
                    raise self._bad(_E_TYPE_BYTE, buf, start, s)
            if e < 0:
                if not self._skip and (e == -2 or w - self.rpos >= self._limit):
                    self._skip = True
                    # tells a discarded push from a discarded reply; past leading attributes, the value's type
                    self.skipped_type = kind[0] if self._depth and kind[0] != _PIPE else buf[self.rpos]
                    continue
                return False
            if e == 0:
                continue  # an aggregate was opened (or a skip state began); self._scanned moved past its header
            self._scanned = e
            # an element ended at e: close every aggregate it completes
            while True:
                d = self._depth
                if d == 0:
                    if self._skip:
                        self._skip = False
                        self.rpos = e
                        self._need = 0
                        if self.decode:
                            self._bad_utf8 = False
                        raise MemoryFull("reply larger than memory_limit (%d bytes) was discarded" % self._limit)
                    return True
                d -= 1
                n = cnt[d]
                if n < 0:
                    break  # streamed: ends at its own terminator
                n -= 1
                cnt[d] = n
                if n > 0:
                    break
                self._depth = d
                if kind[d] == _PIPE:
                    break  # an attribute is not an element of its parent: the value it describes follows

    def _copy_into(self):
        # gets_into: move the bulk string's bytes from the receive buffer to the destination as they arrive.
        while True:
            buf = self.buf
            s = self.rpos
            w = self.wpos
            left = self._ileft
            n = self._ilen
            dest = self._into
            fits = n <= len(dest)  # pyright: ignore[reportArgumentType]  (set with _ilen)
            k = left - 2
            if k > w - s:
                k = w - s
            if k > 0:
                if fits:
                    copy(dest, self._ipos, buf, s, k)
                    self._ipos += k
                s += k
                left -= k
            if left == 2 and w - s >= 2:  # the usual case: both bytes are here
                if buf[s] != _CR or buf[s + 1] != _LF:
                    raise self._bad(_E_CRLF, buf, s, s)
                s += 2
                left = 0
            while left and s < w:
                if buf[s] != (_CR if left == 2 else _LF):
                    raise self._bad(_E_CRLF, buf, s, s)
                s += 1
                left -= 1
            self.rpos = self._scanned = s
            self._ileft = left
            if left:
                return NEED_DATA
            if self._searched == 0:
                break
            # a streamed string: the next ";n" chunk header
            if s < w and buf[s] != _SEMI:
                raise self._bad(_E_CHUNK, buf, s, s)
            e = buf.find(b"\r\n", s, w)
            if e < 0:
                if w - s > _MAX_HEADER:
                    raise self._bad(_E_LINE, buf, s, s)
                return NEED_DATA
            k = self._len(buf, s, s + 1, e)
            if k < 0:
                raise self._bad(_E_LENGTH, buf, s, s + 1)
            self.rpos = self._scanned = e + 2
            if k == 0:
                self._searched = 0
                break
            self._ilen += k
            self._ileft = k + 2
        self._ilen = -1
        self._into = None
        if not fits:
            self.skipped_type = _DOLLAR
            if self.decode:
                self._bad_utf8 = False
            raise MemoryFull("value of %d bytes does not fit the %d-byte buffer" % (n, len(dest)))  # pyright: ignore[reportArgumentType]
        self.skipped_type = 0
        if self.decode and self._bad_utf8:
            self._bad_utf8 = False
            self.attributes = None
            return ProtocolError(text("decode"))
        return n


# ---- the fast path: +OK, :n, $n and nil replies read in place between frames ------------------------------------
# The client's per-command read (client.py): plain functions of the Reader `r`, so no method lookup; only when the
# reader is between frames; a frame is consumed as the scanner would (_consume). Everything else (errors,
# aggregates, pushes, frames not yet complete) is left to gets().
SLOW = object()  # fast(): the next frame is not a complete simple reply; gets() takes it
OK = _INTERNED[0]  # +OK as fast() gives it (b"OK"): the client's resolve knows these two objects
OK_STR = _INTERNED_STR[0]


def fast(r, dest):
    # The next frame as a value when it is a complete simple reply; NEED_DATA when nothing is buffered and the
    # reader is idle; SLOW otherwise. dest: the get_into() buffer of the reply expected (None: none)
    p = r.rpos
    if r._scanned != p or r._ilen >= 0 or r._skip or r._pend is not None:
        return SLOW
    if p == r.wpos:
        return NEED_DATA
    e = r.buf.find(b"\r\n", p + 1, r.wpos)
    if e < 0:
        return SLOW
    t = r.buf[p]
    if t == _DOLLAR:
        return _fast_bulk(r, p, e, dest)
    if dest is not None:
        return SLOW  # anything but a string is no answer to get_into(): gets() says so
    if t == _PLUS:
        return _fast_ok(r, p, e)
    if t == _COLON:
        return _fast_int(r, p, e)
    return SLOW


def _digits(buf, p, e):
    # buf[p:e] as a non-negative int of 1 to 18 digits; -1 otherwise (the fast path's, the scan's and the build's
    # lengths and integers; what it refuses, their careful paths take). A small frame: called per element, it must
    # stay off the heap.
    if e <= p or e - p > 18:
        return -1
    v = 0
    while p < e:
        c = buf[p] - 48
        if c < 0 or c > 9:
            return -1
        v = v * 10 + c
        p += 1
    return v


def _simple(buf, p, e):
    # the index in _INTERNED of the simple string buf[p:e], or -1
    i = 0
    while i < 3:  # len(_INTERNED)
        c = _INTERNED[i]
        if e - p == len(c) and buf.startswith(c, p):
            return i
        i += 1
    return -1


def _fast_ok(r, p, e):
    # +OK, and the other simple strings the build pass interns (+PONG, +QUEUED): the same objects
    buf = r.buf
    if e == p + 3 and buf[p + 1] == 79 and buf[p + 2] == 75:
        _consume(r, e + 2)  # (+OK first, without a call: a pipeline of SETs reads little else)
        return OK_STR if r.decode else OK
    p = _simple(buf, p + 1, e)
    if p < 0:
        return SLOW
    _consume(r, e + 2)
    return _INTERNED_STR[p] if r.decode else _INTERNED[p]


def _fast_int(r, p, e):
    buf = r.buf
    neg = buf[p + 1] == _MINUS
    v = _digits(buf, p + 2 if neg else p + 1, e)
    if v < 0:
        return SLOW  # long, malformed or empty: the scanner decides
    _consume(r, e + 2)
    return -v if neg else v


def _fast_bulk(r, p, e, dest):
    n = _digits(r.buf, p + 1, e)
    if n < 0:
        if e == p + 3 and r.buf[p + 1] == _MINUS and r.buf[p + 2] == 49:  # $-1: nil
            _consume(r, e + 2)
            return None
        return SLOW
    p = e + 4 + n  # where the frame ends
    if p > r.wpos or r.buf[p - 2] != _CR or r.buf[p - 1] != _LF:
        return SLOW
    if dest is not None:
        if n > len(dest):
            return SLOW  # the scanner discards it and raises MemoryFull
        copy(dest, 0, r.buf, e + 2, n)
        _consume(r, p)
        return n
    if r.decode:
        return SLOW
    n = bytes(_fast_view(r)[e + 2:p - 2])
    _consume(r, p)
    return n


def _fast_view(r):
    # a memoryview of the receive buffer, made once (a slice of it, then bytes(), copies a value with the fewest
    # allocations); a buffer grown for one large reply is viewed for that reply only
    v = r._view
    if v is None or r.buf is not r._base:
        v = memoryview(r.buf)
        if r.buf is r._base:
            r._view = v
    return v


def _consume(r, end):
    # what the reader does once it has taken a frame; with everything consumed the next receive starts at 0 (no
    # slice, so no allocation), as space() would arrange
    r._need = 0
    r._searched = 0  # the scanner's search hint belongs to the line just taken
    if end == r.wpos and r.buf is r._base:
        r.rpos = r._scanned = r.wpos = 0
    else:
        r.rpos = r._scanned = end
