# RESP fuzz cases for tests_host/test_fuzz_oracle.py and `make fuzz`: random reply values, random wire forms,
# mutations, and the reader's outcome on a case as comparable text. Plain enough for the MicroPython unix port,
# which replays a sample of the cases through outcome() and must get the same text as CPython.
# pick(n) -> 0..n-1 drives every choice (hypothesis randoms, or random.Random in the fast loop).
from microredis.resp import Reader, MemoryParameters, NEED_DATA, Push
from microredis.errors import ReplyError, ProtocolError, MemoryFull
from roundtrip import _n, pieces, streamed  # tests_device/


class Err:
    # a generated error reply: its message as the reader must return it (str) and on the wire (bytes)
    def __init__(self, text, raw):
        self.text = text
        self.raw = raw


class Set(list):
    pass  # generated RESP3 set: parsed back as a list


class Big(int):
    pass  # an integer sent as a RESP3 big number "("


_WORDS = (b"ERR", b"WRONGTYPE", b"BUSY", b"NOSCRIPT", b"MOVED", b"LOADING")


def gen_value(pick, oracle, depth=0):
    """A reply value. oracle=True: only what hiredis reads the same way (no sets of aggregates as map keys...)."""
    k = pick(16) if depth < 4 else pick(10)
    if k == 0:
        return None
    if k == 1:
        return pick(2) == 1
    if k == 2:
        return pick(2001) - 1000
    if k == 3:
        if oracle:
            return pick(2 ** 64) - 2 ** 63
        return Big(pick(2 ** 200) - 2 ** 199) if pick(2) else pick(2 ** 64) - 2 ** 63
    if k == 4:
        c = pick(6)
        if c == 0:
            return float("inf")
        if c == 1:
            return float("-inf")
        if c == 2:
            return float("nan")
        if c == 3:
            return (pick(2000001) - 1000000) / 64.0
        return (pick(2 ** 53) - 2 ** 52) * 10.0 ** (pick(40) - 20)
    if k == 5:
        return bytes(pick(256) for _ in range(pick(8)))
    if k == 6:
        return bytes(b"ab\r\n\x00\xff"[pick(6)] for _ in range(pick(20)))
    if k == 7:
        w = _WORDS[pick(len(_WORDS))]
        tail = bytes(b"abc \xff\xc3\xa9"[pick(7)] for _ in range(pick(10)))
        raw = w + b" " + tail if pick(4) else w
        try:
            text = raw.decode()
        except UnicodeError:
            text = raw.decode("utf-8", "replace")
        return Err(text, raw)
    if k == 8:
        return b"v" * pick(300)
    if k == 9:
        return b"OK"
    n = pick(5)
    if k <= 11:
        return [gen_value(pick, oracle, depth + 1) for _ in range(n)]
    if k == 12:
        s = Set()
        s.extend(gen_value(pick, oracle, depth + 1) for _ in range(n))
        return s
    if k == 13 and depth == 0:
        p = Push()
        p.extend(gen_value(pick, oracle, depth + 1) for _ in range(n + 1))
        return p
    d = {}
    for _ in range(n):
        c = pick(4 if oracle else 5)
        if c == 4:
            key = tuple(gen_value(pick, oracle, 4) for _ in range(pick(3)))
            key = tuple(x for x in key if not isinstance(x, (list, dict, Err)) and x == x)
        elif c == 3:
            key = pick(100)
        else:
            key = bytes(b"kab\xff"[pick(4)] for _ in range(pick(6)))
        d[key] = gen_value(pick, oracle, depth + 1)
    return d


def _float(v):
    if v != v:
        return b"nan"
    if v in (float("inf"), float("-inf")):
        return b"inf" if v > 0 else b"-inf"
    return repr(v).encode()


def wire(v, pick, oracle):
    """RESP bytes of v in a random wire form. oracle=True: only forms hiredis 3 reads (no streaming, attributes,
    blob errors, big numbers)."""
    pre = b""
    if not oracle and pick(10) == 0:
        pre = b"|1\r\n+ttl\r\n:" + _n(pick(100)) + b"\r\n" if pick(2) else b"|0\r\n"
    if v is None:
        return pre + (b"_\r\n", b"$-1\r\n", b"*-1\r\n")[pick(3)]
    t = type(v)
    if t is bool:
        return pre + (b"#t\r\n" if v else b"#f\r\n")
    if t is Big:
        return pre + b"(" + _n(int(v)) + b"\r\n"
    if t is int:
        return pre + b":" + _n(v) + b"\r\n"
    if t is float:
        return pre + b"," + _float(v) + b"\r\n"
    if t is bytes:
        c = pick(5)
        if c == 0 and b"\r" not in v and b"\n" not in v:
            return pre + b"+" + v + b"\r\n"
        if c == 1:
            return pre + b"=" + _n(len(v) + 4) + b"\r\n" + (b"txt:", b"mkd:")[pick(2)] + v + b"\r\n"
        if c == 2 and not oracle:
            return pre + streamed(v, pick)
        return pre + b"$" + _n(len(v)) + b"\r\n" + v + b"\r\n"
    if t is Err:
        if not oracle and pick(2):
            return pre + b"!" + _n(len(v.raw)) + b"\r\n" + v.raw + b"\r\n"
        return pre + b"-" + v.raw + b"\r\n"
    if t is Push:
        return pre + b">" + _n(len(v)) + b"\r\n" + b"".join(wire(x, pick, oracle) for x in v)
    if t is list or t is tuple or t is Set:
        body = b"".join(wire(x, pick, oracle) for x in v)
        head = b"~" if t is Set else b"*"
        if not oracle and pick(3) == 0:
            return pre + head + b"?\r\n" + body + b".\r\n"
        return pre + head + _n(len(v)) + b"\r\n" + body
    if t is dict:
        body = b"".join(wire(k, pick, oracle) + wire(x, pick, oracle) for k, x in v.items())
        if not oracle and pick(3) == 0:
            return pre + b"%?\r\n" + body + b".\r\n"
        return pre + b"%" + _n(len(v)) + b"\r\n" + body
    raise TypeError(repr(v))


_INSERTS = (b"\r", b"\n", b"*3\r\n", b"$?\r\n", b".\r\n", b";0\r\n", b"|1\r\n", b"%1\r\n", b"?\r\n", b"\x00",
            b"$-1\r\n", b"~?\r\n", b"(\r\n", b":-\r\n", b",\r\n", b"#\r\n")
_LENGTHS = (b"-1", b"-2", b"0", b"1", b"99999999999", b"4294967296", b"9223372036854775808", b"?", b"", b"01",
            b"-0", b"18446744073709551617" * 2)


def replies(pick, oracle, most=3):
    """(values, wire): 1 + pick(most) generated reply values and their bytes, each in a random wire form."""
    vals = [gen_value(pick, oracle) for _ in range(1 + pick(most))]
    return vals, b"".join(wire(v, pick, oracle) for v in vals)


def mutate(w, pick):
    w = bytearray(w)
    for _ in range(1 + pick(3)):
        k = pick(8)
        i = pick(len(w) + 1)
        if k == 0 and w:
            w[i % len(w)] = pick(256)
        elif k == 1:
            w = w[:i]
        elif k == 2:
            w[i:i] = b"\r" if pick(2) else b"\n"
        elif k == 3 and w:
            del w[i % len(w)]
        elif k == 4 and w:
            w[i % len(w)] = b"?@Z~|>!=(;._%#,"[pick(15)]
        elif k == 5:
            # a wrong, huge or negative length/count: rewrite the digits after a type byte
            j = i
            while j < len(w) and w[j] not in b"$*%~>|=!;":
                j += 1
            e = w.find(b"\r\n", j)
            if j < len(w) and e > j:
                w[j + 1:e] = _LENGTHS[pick(len(_LENGTHS))]
        elif k == 6 and w:
            a = pick(len(w))
            b = a + pick(len(w) - a + 1)
            w[i:i] = w[a:b]
        else:
            w[i:i] = _INSERTS[pick(len(_INSERTS))]
    return bytes(w)


def cuts_for(n, pick):
    c = pick(4)
    if c == 0:
        return []
    if c == 1:
        return list(range(1, n))  # byte by byte
    return sorted(pick(n + 1) for _ in range(pick(8)))


def render(v, oracle=False):
    """Comparable text of a parsed value (same on CPython and MicroPython). oracle: pushes as lists, as hiredis."""
    t = type(v)
    if v is None:
        return "N"
    if t is bool:
        return "T" if v else "F"
    if t is int:
        return "i" + str(v)
    if t is float:
        if v != v:
            return "nan"
        return "f%.12g" % v
    if t is bytes:
        return "b" + "".join("%02x" % c for c in v)
    if t is str:
        return "s" + "".join("%02x" % c for c in v.encode())
    if isinstance(v, ReplyError):
        # runs of U+FFFD as one: MicroPython replaces each invalid byte, CPython each maximal invalid sequence
        m = v.message
        while "\ufffd\ufffd" in m:
            m = m.replace("\ufffd\ufffd", "\ufffd")
        return "E" + "".join("%02x" % c for c in m.encode())
    if t is ProtocolError:
        return "U"  # decode=True: a value that is not UTF-8, returned for its reply
    if t is Push and not oracle:
        return "P[" + ",".join(render(x, oracle) for x in v) + "]"
    if t is list or t is tuple or t is Push:
        return "[" + ",".join(render(x, oracle) for x in v) + "]"
    if t is dict:
        items = [render(k, oracle) + ":" + render(x, oracle) for k, x in v.items()]
        items.sort()
        return "{" + ",".join(items) + "}"
    raise AssertionError("unexpected value type %r: %r" % (t, v))


def render_gen(v):
    # the text render() gives for the value a generated (unmutated) case must parse to (SPEC "Reply values")
    t = type(v)
    if t is Err:
        return render(ReplyError(v.text))
    if t is Big:
        return render(int(v))
    if t is Set:
        return "[" + ",".join(render_gen(x) for x in v) + "]"
    if t is Push:
        return "P[" + ",".join(render_gen(x) for x in v) + "]"
    if t is list or t is tuple:
        return "[" + ",".join(render_gen(x) for x in v) + "]"
    if t is dict:
        items = [render_gen(k) + ":" + render_gen(x) for k, x in v.items()]
        items.sort()
        return "{" + ",".join(items) + "}"
    return render(v)


def outcome(data, cuts, limit=1 << 20, into=0, decode=False, oracle=False):
    """Feeds data split at cuts into a Reader and returns what came out, as text: rendered replies, "MF<type>"
    for MemoryFull (the reader is in sync after it), "PE" for ProtocolError (the end). Anything else escaping,
    or a buffer past memory_limit, fails. into > 0: gets_into() with a buffer of that size."""
    r = Reader(MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=limit), decode=decode)
    dest = bytearray(into) if into else None
    out = []
    for piece in pieces(data, cuts):
        r.feed(piece)
        for _ in range(len(data) + 4):
            try:
                v = r.gets() if dest is None else r.gets_into(dest)
            except ProtocolError:
                out.append("PE")
                return out
            except MemoryFull:
                if len(r.buf) > limit:
                    raise AssertionError("buffer %d > memory_limit %d" % (len(r.buf), limit))
                out.append("MF%d" % r.skipped_type)
                continue
            if len(r.buf) > limit:
                raise AssertionError("buffer %d > memory_limit %d" % (len(r.buf), limit))
            if v is NEED_DATA:
                break
            if dest is not None and type(v) is int:
                # a copied bulk's length or an integer reply: gets_into() cannot tell them apart, so both show
                # what dest holds (only compared between runtimes, never with hiredis)
                k = v if 0 <= v <= into else 0
                out.append("I%d:%s" % (v, "".join("%02x" % c for c in dest[:k])))
                continue
            out.append(render(v, oracle))
        else:
            raise AssertionError("gets() neither returned NEED_DATA nor consumed input")
    return out


def check_file(path):
    """MicroPython replay: each line is hex(data) cuts limit into decode expected-text; returns the count."""
    import binascii
    n = 0
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 5)
            data = binascii.unhexlify(parts[0])
            cuts = [int(c) for c in parts[1].split(",") if c] if parts[1] != "-" else []
            got = "|".join(outcome(data, cuts, int(parts[2]), int(parts[3]), parts[4] == "1"))
            if got != parts[5]:
                raise AssertionError("case %d: %r cuts %r\n got  %s\n want %s" % (n, data, cuts, got, parts[5]))
            n += 1
    return n
