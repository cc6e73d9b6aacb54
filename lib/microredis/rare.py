"""The core client's rare paths, loaded on first use (client.py and send.py stay small in RAM): error-message
text, RESP2 subscribed-mode frames, frames consumed but not built, pub/sub message reads (receive_into), set() with
options, the commands command() refuses."""

from .errors import MemoryFull, ProtocolError, RedisError
from .resp import NEED_DATA, Push

# RESP2 subscribed mode: arrays starting with these are pub/sub frames, not replies (str with decode_responses)
_PUBSUB2 = (b"message", b"pmessage", b"smessage", b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe",
            b"punsubscribe", b"sunsubscribe")
_PUBSUB2S = tuple(x.decode() for x in _PUBSUB2)


def in_step(e):
    # a ProtocolError raised by a reader that had consumed the frame (older readers raise on text that is not
    # UTF-8; newer ones return the error)
    return "UTF-8" in str(e)


def short(v):
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def about(nm, key):
    # "GET b'key'" for error messages; never the argument of AUTH
    try:
        if type(nm) is not str:
            nm = bytes(nm)
            if nm[:1] == b"*":  # a hot command's constant prefix: *2 $3 GET
                nm = nm.split(b"\r\n")[2]
            nm = nm.decode()
        if key is None or nm.upper() in ("AUTH", "HELLO"):
            return nm
        if type(key) is not str and type(key) is not int and type(key) is not float:
            key = bytes(key[:40])
        return "%s %s" % (nm, short(key))
    except Exception:
        return "a command"


def not_into(v):
    # get_into() gives a length (what was copied) or None; any other reply was copied nowhere
    return ProtocolError("unexpected reply to GET (get_into): %s, not a string" % short(v))


def failed(v, nm, key, e):
    # the error a future gets: v an error reply of the slot (nm, key), or a reply whose conversion raised e
    if e is None:
        return ProtocolError("%s (reply to %s)" % (v, about(nm, key)))
    return ProtocolError("unexpected reply to %s: %s (%s)" % (about(nm, key), short(v), e))


def oob(c, v):
    # an out-of-band frame (RESP3 push, RESP2 subscribed-mode message or confirmation) goes to c._push
    if type(v) is Push or (type(v) is list and v and
                           (v[0] in _PUBSUB2 if type(v[0]) is bytes else v[0] in _PUBSUB2S)):
        c._push(v)
        return True
    return False


def unbuilt(c, e, p):
    # A frame was consumed but could not be built (e.g. not UTF-8 with decode_responses): the error is the
    # reply of the oldest slot, unless the frame was a push, which is dropped like an oversized one
    t = c._reader.buf[p]
    if t == 62 or (c._resp2_subscribed and t == 42):
        push_dropped(c)
        return NEED_DATA
    return e


def push_dropped(c):
    s = c._sub
    if s is not None:
        s.dropped += 1


def next_msg(c, ms, dest, chan):
    # receive_into(): like CoreClient._next(), but a pub/sub message is copied into dest/chan (its length returned)
    v = _get_msg(c, dest, chan)
    if v is NEED_DATA and c._recv(ms):
        v = _get_msg(c, dest, chan)
    return v


def _get_msg(c, dest, chan):
    r = c._reader
    p = r._r
    try:
        v = r.gets_msg_into(dest, chan)
    except MemoryFull:
        raise  # a message that does not fit: discarded, the reader is in step
    except ProtocolError as e:
        if r._r != p and in_step(e):
            return unbuilt(c, e, p)
        c._broken(e, None)
        raise
    except BaseException as e:
        c._lost(e)  # ^C half-way through a message leaves the stream mid-frame
        raise
    if type(v) is ProtocolError:
        return unbuilt(c, v, p)
    return v


def set_args(key, value, ex, px, nx, xx, keepttl, get, exat, pxat):
    # the arguments of Sender.set() with options
    args = [b"SET", key, value]
    for name, v in ((b"EX", ex), (b"PX", px), (b"EXAT", exat), (b"PXAT", pxat)):
        if v is not None:
            if type(v) is not int or v <= 0:
                raise ValueError("%s must be a positive int" % name.decode())
            args.append(name)
            args.append(v)
    if nx and xx:
        raise ValueError("nx and xx are mutually exclusive")
    for name, v in ((b"NX", nx), (b"XX", xx), (b"KEEPTTL", keepttl), (b"GET", get)):
        if v:
            args.append(name)
    return args


def raw_unread(n):
    # a reply to send_raw() would be taken for this command's
    if n > 0:
        raise RedisError("replies to send_raw() are unread: read them with read_raw() first")
    raise RedisError("this connection carried raw traffic of unknown length: connect() again (it re-dials)")


_REFUSED = {
    b"SUBSCRIBE": "use client.subscribe()", b"PSUBSCRIBE": "use client.psubscribe()",
    b"SSUBSCRIBE": "use client.ssubscribe()", b"UNSUBSCRIBE": "use the Subscription",
    b"PUNSUBSCRIBE": "use the Subscription", b"SUNSUBSCRIBE": "use the Subscription",
    b"MONITOR": "use client.send_raw() and read_raw()", b"RESET": "use handler.disconnect()",
    b"HELLO": "use ConnectionHandler.resp2() or resp3()", b"QUIT": "use client.close() and handler.disconnect()",
}


def refuse(name, sub):
    # name, sub: command()'s first two arguments in upper case (send._refuse())
    why = _REFUSED.get(name)
    if why is None and name == b"CLIENT" and sub == b"REPLY":
        name = b"CLIENT REPLY"
        why = "every command must get its reply"
    if why is not None:
        raise ValueError("%s cannot go through command(): %s" % (name.decode(), why))
