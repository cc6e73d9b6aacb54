"""h.retry(retry_on=...): the pending one-key reads of a lost connection, re-sent once on the next (docs/SURVIVAL.md).

Loaded by retry.py only when retry_on names commands; every path here is rare (a connection was lost)."""

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import ConnectionError, InvalidFuture, RedisError, TimeoutError
from .client import _GET2, _slot, recycle, read_until
from .encoder import upper

_FREE = const(0)  # Future states (client.py)
_PENDING = const(1)
_INVALID = const(3)

# retry_on may name only these: reads of exactly one key, so a reply slot (its name and first argument) holds the
# whole command and sending it twice changes nothing on the server
_READS = (b"GET", b"HGETALL", b"TTL", b"PTTL", b"TYPE", b"STRLEN", b"LLEN", b"SCARD", b"SMEMBERS", b"HLEN", b"XLEN",
          b"ZCARD")


def names(retry_on):
    # h.retry(retry_on=...): the names, upper-case bytes; ValueError for any that is not in _READS
    if type(retry_on) is str or type(retry_on) is bytes:
        retry_on = (retry_on,)  # one name, not its letters
    out = []
    for a in retry_on:
        n = upper(a)
        if n not in _READS:
            raise ValueError("retry_on: %r cannot be re-sent (only these read-only one-key commands can: %s)"
                             % (a, ", ".join(x.decode() for x in _READS)))
        out.append(n)
    return tuple(out) or None


def park(p, c, err):
    # client._broken: the pending futures that retry_on names are kept pending (returned, so they are not failed)
    # and re-sent by revive(); every other one fails. A timeout is not a lost connection: nothing is kept.
    if isinstance(err, TimeoutError):
        return None
    allowed = p.retry_on
    once = p.once
    p.once = None
    keep = []
    parked = []
    for k in range(c._pending):
        i = _slot(c, k)
        f = c._fut[i]
        nm = c._name[i]
        key = c._key[i]
        if key is None or (once is not None and f in once):
            continue
        if (b"GET" if nm is _GET2 else upper(nm)) in allowed:
            keep.append(f)
            parked.append((f, c._conv[i], c._into[i], nm, key))
    if not keep:
        return None
    p.parked = parked
    return keep


def unpark(p, err):
    # the re-dial failed (or cannot happen): the kept futures fail as the others did
    parked = p.parked
    p.parked = None
    if parked:
        for q in parked:
            f = q[0]
            if f._state == _PENDING and f._client._conn is None:
                f._state = _INVALID
                f._value = InvalidFuture("reply cannot be matched any more, and the read was not re-sent: %s" % err)


def resend(p, c):
    parked = p.parked
    p.parked = None
    p.once = []
    rp = c._retry
    c._set_retry(None)  # no health-check PING in between: the connection is new
    try:
        for q in parked:
            f = q[0]
            if f._state != _PENDING or f._client is not c:
                continue
            g = c._begin(q[1], q[2], 0, False, q[3], q[4])
            g._state = _FREE
            recycle(c, g)
            c._fut[c._last] = f  # the caller's future takes the new slot
            p.once.append(f)
            e = c._encoder
            if q[3] is _GET2:
                e.raw(_GET2)
            else:
                e.begin(2)
                e.arg(q[3])
            e.arg(q[4])
            c._end(f)
    finally:
        c._set_retry(rp)
        p.parked = parked  # those left pending on no connection (a send failed half-way) fail
        unpark(p, ConnectionError("re-sending the reads failed"))


def resume(p, f):
    # Future.wait() of a future kept by park(): re-dial now (paced), which re-sends it, and read its reply.
    # False: not kept here (wait() raises as before).
    parked = p.parked
    if not parked or f._state != _PENDING:
        return False
    for q in parked:
        if q[0] is f:
            break
    else:
        return False
    c = f._client
    try:
        if c._conn is None:
            p.revive(c)
    except (RedisError, OSError):
        pass  # revive() failed the kept futures, f too
    if f._state == _PENDING:
        try:
            read_until(c, f)
        except RedisError:
            if f._state == _PENDING:
                raise
    return True

