# Shared by the round-trip tests: RESP3 serialisers for test values (canonical, and with random wire variants).
# Plain MicroPython; also CPython, where hypothesis drives it.
from microredis.resp import Push
from microredis.errors import ReplyError


def _n(x):
    return str(x).encode()


def streamed(v, pick):
    """bytes v as a RESP3 streamed string: $? then ;<n> chunks of sizes chosen by pick(n) -> 0..n-1, then ;0."""
    out = [b"$?\r\n"]
    i = 0
    while i < len(v):
        j = i + 1 + pick(len(v) - i)
        out.append(b";" + _n(j - i) + b"\r\n" + v[i:j] + b"\r\n")
        i = j
    out.append(b";0\r\n")
    return b"".join(out)


def pieces(wire, cuts):
    """wire split at the sorted positions in cuts (a position before the previous one is skipped)."""
    out = []
    last = 0
    for c in list(cuts) + [len(wire)]:
        if c >= last:
            out.append(wire[last:c])
            last = c
    return out


def dump(v):
    """Canonical RESP3 bytes of a parsed value (no streaming, no attributes)."""
    t = type(v)
    if v is None:
        return b"_\r\n"
    if t is bool:
        return b"#t\r\n" if v else b"#f\r\n"
    if t is int:
        return b":" + _n(v) + b"\r\n"
    if t is float:
        if v != v:
            return b",nan\r\n"
        return b"," + repr(v).encode() + b"\r\n"
    if t is bytes:
        return b"$" + _n(len(v)) + b"\r\n" + v + b"\r\n"
    if isinstance(v, ReplyError):
        return b"-" + v.message.encode() + b"\r\n"
    if t is Push:
        return b">" + _n(len(v)) + b"\r\n" + b"".join(dump(x) for x in v)
    if t is list or t is tuple:
        return b"*" + _n(len(v)) + b"\r\n" + b"".join(dump(x) for x in v)
    if t is dict:
        out = [b"%" + _n(len(v)) + b"\r\n"]
        for k in sorted(v, key=dump):
            out.append(dump(k))
            out.append(dump(v[k]))
        return b"".join(out)
    raise TypeError(repr(v))


def dump_variant(v, pick):
    """RESP3 bytes of v in a wire form chosen by pick(n) -> 0..n-1: streamed strings/aggregates, verbatim,
    blob errors, big numbers, nil variants, sets, attributes."""
    t = type(v)
    pre = b""
    if pick(8) == 0:
        pre = b"|1\r\n+meta\r\n" + dump(pick(100)) if pick(2) else b"|0\r\n"
    if v is None:
        return pre + (b"_\r\n", b"$-1\r\n", b"*-1\r\n")[pick(3)]
    if t is int and not isinstance(v, bool):
        return pre + (b":" if pick(2) else b"(") + _n(v) + b"\r\n"
    if t is bytes:
        k = pick(4)
        if k == 0 and b"\r" not in v and b"\n" not in v:
            return pre + b"+" + v + b"\r\n"
        if k == 1:
            return pre + b"=" + _n(len(v) + 4) + b"\r\ntxt:" + v + b"\r\n"
        if k == 2:
            return pre + streamed(v, pick)
        return pre + dump(v)
    if isinstance(v, ReplyError):
        m = v.message.encode()
        if pick(2):
            return pre + b"!" + _n(len(m)) + b"\r\n" + m + b"\r\n"
        return pre + b"-" + m + b"\r\n"
    if t is list:
        k = pick(3)
        body = b"".join(dump_variant(x, pick) for x in v)
        if k == 0:
            return pre + b"*?\r\n" + body + b".\r\n"
        return pre + (b"*", b"~", b"*")[k] + _n(len(v)) + b"\r\n" + body
    if t is Push:
        return pre + b">" + _n(len(v)) + b"\r\n" + b"".join(dump_variant(x, pick) for x in v)
    if t is dict:
        body = b"".join(dump_variant(k, pick) + dump_variant(v[k], pick) for k in v)
        if pick(2):
            return pre + b"%?\r\n" + body + b".\r\n"
        return pre + b"%" + _n(len(v)) + b"\r\n" + body
    return pre + dump(v)


def parse_chunks(reader, wire, cuts):
    """Feed wire split at the sorted positions in cuts; return the replies parsed."""
    from microredis.resp import NEED_DATA
    out = []
    for piece in pieces(wire, cuts):
        reader.feed(piece)
        while True:
            v = reader.gets()
            if v is NEED_DATA:
                break
            out.append(v)
    return out


def check_file(path):
    """Replays cases written by the CPython hypothesis test: each line is hex(wire) hex(canonical) cuts."""
    import binascii
    from microredis.resp import Reader, MemoryParameters
    n = 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            wire = binascii.unhexlify(parts[0])
            want = binascii.unhexlify(parts[1])
            cuts = [int(c) for c in parts[2].split(",") if c] if len(parts) > 2 else []
            r = Reader(MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=1 << 20))
            got = parse_chunks(r, wire, cuts)
            if len(got) != 1 or dump(got[0]) != want:
                raise AssertionError("case %d: %r parsed as %r" % (n, wire, got))
            n += 1
    return n
