"""The core client's error paths, loaded on the first error (client.py stays small in RAM): error-message
text, frames consumed but not built, the commands command() refuses, the reader's malformed-reply text
(Reader._bad), MemoryParameters' repr, the handshake's error texts. Nothing a working subscriber needs."""

from .errors import AuthenticationError, ConnectionError, NoPermissionError, ProtocolError, RedisError, reply_error, \
    text



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


def failed(v, nm, key, e):
    # the error a future gets: v an error reply of the slot (nm, key), or a reply whose conversion raised e, or
    # (nm and e None) a reply to get_into() that was not a string: get_into() gives a length (what was copied) or
    # None, any other reply was copied nowhere
    if nm is None and e is None:
        return ProtocolError("unexpected reply to GET (get_into): %s, not a string" % short(v))
    if e is None:
        return ProtocolError("%s (reply to %s)" % (v, about(nm, key)))
    return ProtocolError("unexpected reply to %s: %s (%s)" % (about(nm, key), short(v), e))


def unbuilt(c, e, p):
    # A frame was consumed but could not be built (e.g. not UTF-8 with decode_responses): the error is the
    # reply of the oldest slot, unless the frame was a push, which is dropped like an oversized one (None: the
    # caller reads on; resp.py's NEED_DATA is not imported here, which would be an import cycle resp -> rare -> resp)
    t = c._reader.buf[p]
    if t == 62 or (c._resp2_subscribed and t == 42):
        push_dropped(c)
        return None
    return e


def push_dropped(c):
    s = c._sub
    if s is not None:
        s.dropped += 1


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
    b"SYNC": "a replication stream: use send_raw()", b"PSYNC": "a replication stream: use send_raw()",
}


def refuse(name):
    # name: command()'s name in upper case, one that client._refuse() screened
    why = _REFUSED.get(name)
    if why is None:
        name = b"CLIENT REPLY"
        why = "every command must get its reply"
    raise ValueError("%s cannot go through command(): %s" % (name.decode(), why))


# Reader._bad(what, ...)'s texts, by the number resp.py gives (their _E_ constants name them; the
# nesting and type byte texts are made below)
_BAD = (
    None,
    "invalid length",  # _E_LENGTH
    "invalid count",  # _E_COUNT
    "line too long or missing CRLF",  # _E_LINE
    "bulk string not followed by CRLF",  # _E_CRLF
    "streamed string chunk expected",  # _E_CHUNK
    "unexpected streamed string chunk",  # _E_CHUNK_AT
    "verbatim string shorter than its format",  # _E_VERBATIM4
    "unexpected end of streamed aggregate",  # _E_AGG_END
    None,  # _E_TYPE_BYTE
    None,  # _E_NESTING
    "invalid integer",  # _E_INTEGER
    "verbatim string without format",  # _E_VERBATIM
    "invalid null",  # _E_NULL
    "invalid boolean",  # _E_BOOLEAN
    "invalid double",  # _E_DOUBLE
    "streamed map ended after a key",  # _E_MAP_END
    "map key is a map",  # _E_MAP_KEY
    "trailing data inside reply",  # _E_TRAILING
    "reply ended early",  # _E_EARLY
)


def bad(r, what, buf, start, p):
    # Reader._bad(): where in the reply the problem is, and the received bytes around it
    if r.decode:
        r._bad_utf8 = False
    lo = p - 8 if p - 8 > start else start
    hi = p + 16 if p + 16 < r.wpos else r.wpos
    if what == 9:  # _E_TYPE_BYTE
        what = "unknown type byte %r" % chr(buf[p])
    elif what == 10:  # _E_NESTING
        what = "nesting deeper than %d" % len(r._counts)  # (the reader's stack: MAX_DEPTH levels)
    else:
        what = _BAD[what]
    return ProtocolError("%s at byte %d of the reply (near %r)" % (what, p - start, bytes(buf[lo:hi])))


def params_repr(m):
    return "MemoryParameters(buffer_size=%d, frame_capacity=%d, memory_limit=%r)" % (
        m.buffer_size, m.frame_capacity, m.memory_limit)


def handshake_error(e, what, fallback):
    # connection.py: the error connect() raises for an error reply e to the handshake command `what`, named by its
    # cause and its fix (texts.py, keyed by the server's error code); None for a HELLO the server does not know when
    # fallback=True (RESP2 is used then); e itself for another error of the server's. e None: a reply of the wrong
    # shape (what None: data after the handshake)
    if e is None:
        if what is None:
            # a reply nobody asked for would be taken for the first command's, and every later one would be one off
            return ProtocolError("the server sent data after the handshake that no command asked for")
        if what == "HELLO 3":
            return ProtocolError("unexpected reply to HELLO 3 (a map was expected): the server is not speaking "
                                 "Redis's protocol, or its replies are out of step")
        return ProtocolError("unexpected reply to %s during the handshake (OK was expected)" % what)
    code = e.code
    m = e.message
    if code == "DENIED":
        # sent on accept, before any command is read: it is the reply to whichever command went first (the
        # server then closes the connection)
        if len(m) > 60:
            m = m[:57] + "..."  # (Redis explains it in about 1,100 characters)
        return ConnectionError(text("DENIED", m))
    if code == "NOAUTH":
        return _coded(AuthenticationError(text("NOAUTH", m)), code)
    if code == "WRONGPASS":
        return _coded(AuthenticationError(text("WRONGPASS", m)), code)
    if code == "NOPERM" and what in _NOPERM:
        acl, instead = _NOPERM[what]
        return _coded(NoPermissionError(text("NOPERM", what, acl, instead, m)), code)
    if what == "AUTH":
        # the message is the server's (it never contains the password)
        return _coded(AuthenticationError("authentication failed: " + m), code)
    if what == "HELLO":
        lm = m.lower()  # "ERR unknown command 'HELLO'" (Redis < 6), NOPROTO, a proxy's "unsupported command"
        if code == "NOPROTO" or "unknown" in lm or "unsupported" in lm:
            return None if fallback else ConnectionError(text("HELLO", m))
    return e  # the server's own error (e.g. ERR max number of clients reached), as it sent it


# a handshake command a user may lack the permission for: the ACL rule that grants it, and the way around it
_NOPERM = {
    "HELLO": ("hello", "use ConnectionHandler.resp2(address)"),
    "SELECT": ("select", "drop h.select() and use database 0"),
    "CLIENT SETNAME": ("client|setname", "drop h.client_name()"),
}


def _coded(err, code):
    err.code = code  # the server's code, not the first word of the sentence
    return err


def refused(c):
    # refusal() below, a read or a send that failed before anything was read: the server's refusal line when it
    # was received but lost, else None. MicroPython's readinto() reads until the buffer is full, and a reset met
    # on the way (the server closed the socket without reading what was sent, as on a refusal sent on accept:
    # protected mode, max clients) raises and drops the count of what it had read: the line is in the buffer all
    # the same (a failed send reads it there too: transport.py last_words). The buffer is the connection's own,
    # zero-filled, and nothing was consumed from it yet (no reply resolved), so what is there came from this server.
    r = c._reader
    buf = r.buf
    if c._resolved_count or r.rpos or buf[0] != 45:  # 45: "-", an error line
        return None
    i = buf.find(b"\r\n")
    if i < 0:
        i = buf.find(b"\0")  # (a line longer than the buffer is cut)
        if i < 0:
            i = len(buf)
    if i < 2:
        return None
    try:
        m = bytes(buf[1:i]).decode()
    except Exception:  # (MicroPython's UnicodeError)
        return None
    return handshake_error(reply_error(m), "", False)


def refusal(c, v):
    # CoreClient._refusal: nothing read yet on this connection (its handshake; or its first client after a dial that
    # sent nothing), and a read or a send failed (v None) or v is the first reply. A refusal on accept (the server
    # sends it unasked, then closes), found where a reset left it or as v, breaks the connection and is raised or
    # returned (DENIED with the fix's text). After the dial only DENIED counts (a second client on a cached
    # connection may find another's error reply in the buffer), and h.retry() paces the next dial.
    dial = c._conn.client is None  # (set once the handshake is through)
    if v is None:
        e = refused(c)
        if e is None or not (dial or isinstance(e, ConnectionError)):  # (DENIED: a ConnectionError, no reply)
            return None
    elif getattr(v, "code", None) == "DENIED":
        e = handshake_error(v, "", False)
    else:
        return v
    c._broken(e, None)
    rp = c._retry
    if not dial and rp is not None and rp.retry:
        rp.note_failure(c._clock)
    if v is None:
        raise e
    return e
