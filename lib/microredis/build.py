"""Second pass of the RESP reader: turns one complete, already scanned reply into Python values."""
# Kept apart from resp.py only for size: plain functions of the Reader `r` (resp.py), whose state they read (buf,
# decode, want_attributes, attributes, _bad_utf8, the _containers/_bkey and _counts/_kind stacks, _len(), _bad()).
# The scan has validated structure and lengths, so this pass walks the reply once, with an explicit stack (no
# recursion), and checks the contents of each value.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import MemoryFull, ProtocolError, reply_error, text

_PLUS = const(43)  # +
_MINUS = const(45)  # -
_COLON = const(58)  # :
_DOLLAR = const(36)  # $
_UNDER = const(95)  # _
_COMMA = const(44)  # ,
_HASH = const(35)  # #
_BANG = const(33)  # !
_EQUAL = const(61)  # =
_LPAREN = const(40)  # (
_PCT = const(37)  # %
_PIPE = const(124)  # |
_GT = const(62)  # >
_SEMI = const(59)  # ;
_DOT = const(46)  # .
_QMARK = const(63)  # ?

# Reader._bad()'s problems found while building (resp.py has 1-10; rare.py words them)
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
    neg = False
    if p < eol and buf[p] == _MINUS:
        neg = True
        p += 1
    elif p < eol and buf[p] == _PLUS:
        p += 1
    if p >= eol:
        raise r._bad(_E_INTEGER, buf, start, p)
    v = 0
    n = eol - p
    if n <= 18:
        while p < eol:
            c = buf[p] - 48
            if c < 0 or c > 9:
                raise r._bad(_E_INTEGER, buf, start, p)
            v = v * 10 + c
            p += 1
    else:
        from .bigint import big  # more than 18 digits (RESP3 big numbers): loaded only then
        v = big(r, buf, start, p, eol)
    return -v if neg else v


def _str(r, buf, a, b):
    v = bytes(buf[a:b])
    if r.decode:
        try:
            return v.decode()
        except UnicodeError:
            r._bad_utf8 = True  # the whole reply becomes a returned ProtocolError once built
    return v


def _simple(r, buf, p, eol):
    n = eol - p
    for i in range(3):  # len(_INTERNED)
        c = _INTERNED[i]
        if n == len(c) and buf.startswith(c, p):
            return _INTERNED_STR[i] if r.decode else c
    return _str(r, buf, p, eol)


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
    buf = r.buf
    t = buf[p]
    # the most common replies, alone at the top: no stacks, no second search for the end of the line
    if t == _COLON:
        return _int(r, buf, p, p + 1, end - 2)
    if t == _PLUS and end - p == 5 and buf[p + 1] == 79 and buf[p + 2] == 75:
        return "OK" if r.decode else b"OK"
    start = p
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
        if t == _PLUS:
            v = None if sk else _simple(r, buf, p + 1, eol)
        elif t == _COLON or t == _LPAREN:
            v = _int(r, buf, start, p + 1, eol)
        elif t == _DOLLAR or t == _EQUAL or t == _BANG or t == _SEMI:
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
                n = r._len(buf, start, p + 1, eol)
                q = eol + 4 + n
                if t == _DOLLAR:
                    v = None if sk else _str(r, buf, eol + 2, eol + 2 + n)
                elif t == _SEMI:
                    if n:
                        if not sk:
                            bc[depth - 1].extend(memoryview(buf)[eol + 2:eol + 2 + n])
                        p = q
                        continue
                    q = eol + 2  # ";0" ends the stream and carries no payload
                    depth -= 1
                    v = _close(r, depth)
                elif t == _EQUAL:
                    if buf[eol + 5] != _COLON:
                        raise r._bad(_E_VERBATIM, buf, start, eol + 2)
                    v = None if sk else _str(r, buf, eol + 6, eol + 2 + n)
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
            v = bytes(buf[p + 1:eol]).lower()  # inf, nan in any case, as hiredis reads them
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
            n = r._len(buf, start, p + 1, eol)
            if n == -1:
                v = None
            else:
                # c None: skipped (an attribute nobody asked for, or inside one). k NEED_DATA: part of a map key
                # (a list level's unused key slot marks it; it becomes a tuple so the key is hashable; a map
                # there cannot be)
                k = _NOKEY
                if sk or (t == _PIPE and not r.want_attributes):
                    c = None
                elif t == _PIPE:
                    c = {}
                elif depth and (bkey[depth - 1] is NEED_DATA or (bkey[depth - 1] is _NOKEY and (
                        bk[depth - 1] == _PCT or bk[depth - 1] == _PIPE))):
                    if t == _PCT:
                        raise r._bad(_E_MAP_KEY, buf, start, p)
                    c = []
                    k = NEED_DATA
                elif t == _PCT:
                    c = {}
                elif t == _GT:
                    c = Push()
                else:
                    c = []
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
            d = depth - 1
            c = bc[d]
            k = bk[d]
            if k == _PCT or k == _PIPE:
                if bkey[d] is _NOKEY:
                    bkey[d] = v
                else:
                    if c is not None:
                        c[bkey[d]] = v
                    bkey[d] = _NOKEY
            elif c is not None:
                c.append(v)
            n = bn[d]
            if n < 0:
                break
            n -= 1
            bn[d] = n
            if n:
                break
            depth = d
            v = _close(r, d)
            sk = d and bc[d - 1] is None
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
