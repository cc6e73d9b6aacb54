"""Subscription names the server refuses (NOPERM) under h.retry(): kept as refused, asked for again on the backoff.

Loaded (by retry.py or pubsub.py) only once a subscribe-family command is refused (docs/SURVIVAL.md, "Permissions
change under a subscription")."""
# An ACL change (ACL SETUSER ... resetchannels) makes Redis drop a client subscribed to a channel its user may no
# longer access (measured on 6.2.14 and 7.0.15); the re-dial's re-subscription is then refused, and so can be a
# subscribe call on a live connection. Redis refuses a whole command when one of its names is not allowed, so the
# names of a refused command are asked for once more one per command, all written at once (one round trip): the
# allowed ones are confirmed, the others go to the subscription's refused_* sets. Those are asked for again (one
# round trip per attempt, again one name per command) on the policy's backoff schedule with its own count (p.refusals, a Backoff):
# before the client's next command with nothing pending (retry.py before()) and inside receive()/receive_into(). So
# the subscription's sets say what the server has, and it is never subscribed to nothing without trying again.

from .errors import ConnectionError, ProtocolError, RedisError, TimeoutError


def _key(n):
    # a name as the server will confirm it (bytes), to keep it in a set: the encoder's forms of str, int and float
    t = type(n)
    if t is bytes:
        return n
    if t is str:
        return n.encode()
    if t is float:
        return repr(n).encode()
    if t is int:
        return str(n).encode()
    return bytes(n)  # bytearray, memoryview


def _refs(sub, i):
    return (sub.refused_channels, sub.refused_patterns, sub.refused_shard_channels)[i]


def refused(p, sub, i, names, err):
    # the server refused a subscribe command (err) for names: which ones it refuses is asked name by name; those
    # are kept and asked for again on the backoff schedule
    bad = _each(sub, i, names) if len(names) > 1 else names
    if not bad:
        sub.last_error = err  # (allowed again meanwhile)
        return
    s = sub._sets(i)
    r = _refs(sub, i)
    for n in bad:
        k = _key(n)
        s.discard(k)
        r.add(k)
    if len(names) == 1:
        sub.last_error = err  # (else _confirmed kept the last refusal of the names asked one by one)
    if sub._r2 and sub.active:
        # RESP2: the client stays in subscribed mode (only the subscribe family and PING go out), whatever the
        # server's mode, so asking again later cannot change what the application's commands may do
        sub._c._subscribed(sub, True)
    if p.owed is not sub:
        p.owed = sub
        p.refusals.note_success()
    p.refusals.note_failure(sub._c._clock)


def unwanted(sub, i, names):
    # sub.unsubscribe(...) (punsubscribe, sunsubscribe): refused names among them are no longer asked for
    r = _refs(sub, i)
    if names:
        for n in names:
            r.discard(_key(n))
    else:
        r.clear()


def owed(p, c):
    # before a command with nothing pending, or a turn of receive(): ask again for the refused names if it is time;
    # False when nothing was done (the health check's turn)
    sub = p.owed
    if sub._c is not c:
        return False  # another client's (the handler hands out one at a time: this one is closed or replaced)
    if sub is not c._sub or not sub.active or not sub._owes():
        p.owed = None  # closed, or every refused name unsubscribed
        return False
    if c._raw_replies or p.refusals.wait_ms(c._clock):
        return False  # (replies to send_raw() are read first)
    try:
        _again(p, sub)  # (its round trip proves the socket: no health check needed)
    except (ConnectionError, TimeoutError, OSError) as err:
        p.h.last_error = err
        if c._conn is not None:
            raise
        if not p._mine(c):
            raise ConnectionError("client is closed")
        p.revive(c)  # lost meanwhile: the re-dial asks for everything
    return True


def _again(p, sub):
    # one attempt: every refused name, one SUBSCRIBE each, all written at once (one round trip)
    back = 0
    for i in range(3):
        r = _refs(sub, i)
        if r:
            names = tuple(r)
            bad = _each(sub, i, names)
            for x in names:
                if bad is None or x not in bad:
                    r.discard(x)
                    back += 1
    if sub._owes():
        p.refusals.note_failure(sub._c._clock)
    else:
        p.owed = None
    if back:
        # messages flow again on names that were refused: those published meanwhile were lost, so it is a gap
        sub.gaps += 1
        cb = sub.on_gap
        if cb is not None:
            cb(sub)


def _each(sub, i, names):
    # one SUBSCRIBE (PSUBSCRIBE, SSUBSCRIBE) per name, written at once; the refused names (a list) or None. On a live
    # connection, right after a subscribe-family command or with nothing pending; the names were checked before
    c = sub._c
    c.flush()
    if sub._r2:
        c._subscribed(sub, True)  # (as Subscription._send: the answers are pub/sub arrays)
    e = c._encoder
    try:
        for n in names:
            e.begin(2)
            e.arg(sub._CONFIRM[i])  # b"subscribe", b"psubscribe", b"ssubscribe": Redis reads names in any case
            e.arg(n)
        e.flush()
    except BaseException as err:
        # whatever was written, the connection goes: the re-dial subscribes to everything again
        c._broken(err if isinstance(err, RedisError) else ProtocolError("a command failed half-sent: %r" % err), None)
        raise err
    return sub._run(sub._confirmed(names))
