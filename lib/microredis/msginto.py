"""Subscription.receive_into()'s zero-copy message reads: a pub/sub message frame copied into the caller's buffers
without building it (loaded by the first receive_into(), so a subscriber that uses receive() never pays for it)."""

from .errors import MemoryFull, ProtocolError
from .resp import NEED_DATA, copy


def next_msg(c, ms, dest, chan):
    # receive_into(): like CoreClient._next(), but a pub/sub message is copied into dest/chan (its length returned)
    v = _parse_msg(c, dest, chan)
    if v is NEED_DATA and c._recv(ms):
        v = _parse_msg(c, dest, chan)
    return v


def _parse_msg(c, dest, chan):
    while True:  # as CoreClient._parse(): a frame dropped on the way does not end the look
        p = c._reader.rpos
        v = _get_msg(c, dest, chan)
        if v is not NEED_DATA or c._reader.rpos == p:
            return v


def _get_msg(c, dest, chan):
    r = c._reader
    p = r.rpos
    try:
        v = gets_msg_into(r, dest, chan, c._sub._KINDS)
    except MemoryFull:
        raise  # a message that does not fit: discarded, the reader is in step
    except ProtocolError as e:
        from .rare import in_step, unbuilt
        if r.rpos != p and in_step(e):
            e = unbuilt(c, e, p)
            return NEED_DATA if e is None else e
        c._broken(e, None)
        raise
    except BaseException as e:
        c._lost(e)  # ^C half-way through a message leaves the stream mid-frame
        raise
    if type(v) is ProtocolError:
        from .rare import unbuilt
        v = unbuilt(c, v, p)
        return NEED_DATA if v is None else v
    return v


def gets_msg_into(r, dest, chan, kinds):
    # Reader r's gets(), except that a complete pub/sub message frame (message, pmessage, smessage) is not built: its
    # payload is copied into dest, its channel into chan, and the payload length returned (r.msg_kind and r.msg_clen
    # tell the kind and the channel length). A payload longer than dest is discarded and raises MemoryFull.
    if r._ilen >= 0:
        return r._get(None)
    while not r._scan(None):
        if not r._pull():
            return NEED_DATA
    n = _msg(r, dest, chan, kinds)
    return r._take() if n < 0 else n


def _bulk_at(r, buf, p, end):
    # payload start of the bulk string at p, its length left in r._bulk_len (a tuple return would allocate);
    # -1 if p is not a plain bulk string
    if p >= end or buf[p] != 36 or buf[p + 1] == 45 or buf[p + 1] == 63:
        return -1
    eol = buf.find(b"\r\n", p + 1, end)
    r._bulk_len = r._len(buf, p, p + 1, eol)
    return eol + 2


def _msg(r, dest, chan, kinds):
    buf = r.buf
    p = r.rpos
    end = r._scanned
    t = buf[p]
    if t != 62 and t != 42:  # > or *
        return -1
    if (buf[p + 1] != 51 and buf[p + 1] != 52) or buf[p + 2] != 13:  # 3 or 4 elements
        return -1
    n = buf[p + 1] - 48
    q = _bulk_at(r, buf, p + 4, end)
    if q < 0:
        return -1
    k = r._bulk_len
    kind = None
    for m in kinds:
        if k == len(m) and buf.startswith(m, q):
            kind = m
    if kind is None or (n == 4) != (kind is kinds[1]):
        return -1
    q += k + 2
    if n == 4:  # pmessage: skip the pattern
        q = _bulk_at(r, buf, q, end)
        if q < 0:
            return -1
        q += r._bulk_len + 2
    q = _bulk_at(r, buf, q, end)
    if q < 0 or r._bulk_len > len(chan):
        return -1  # built instead: the subscription then allocates a Message
    cl = r._bulk_len
    c0 = q
    q = _bulk_at(r, buf, q + cl + 2, end)
    if q < 0:
        return -1
    k = r._bulk_len
    r.rpos = end
    if k > len(dest):
        r.skipped_type = t
        raise MemoryFull("message of %d bytes does not fit the %d-byte buffer" % (k, len(dest)))
    copy(chan, 0, buf, c0, cl)
    copy(dest, 0, buf, q, k)
    r.msg_kind = kind
    r.msg_clen = cl
    r.skipped_type = 0
    return k
