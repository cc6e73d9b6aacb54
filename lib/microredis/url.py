"""from_url(): a ConnectionHandler from a redis:// or rediss:// URL (loaded only when a URL is used)."""

from .connection import ConnectionHandler, MAX_TIMEOUT_MS


def from_url(url):
    """A handler from redis://[[user]:password@]host[:port][/db][?param=value&...] (rediss:// for TLS).

    Query parameters (like redis-py): protocol=2|3, db=N (takes precedence over /db), timeout=S or
    socket_timeout=S (seconds, a float: the handler's timeout() in ms), client_name=NAME. Any other parameter is
    refused with ValueError naming it. %XX escapes are decoded in the user info and in parameter values (write "@"
    as %40 there). No error message quotes the URL or a password."""
    if type(url) is not str:
        raise TypeError("URL must be a str")
    if url.startswith("redis://"):
        rest = url[8:]
        tls = False
    elif url.startswith("rediss://"):
        rest = url[9:]
        tls = True
    else:
        raise ValueError("URL must start with redis:// or rediss://")
    creds = None
    at = rest.rfind("@")
    if at >= 0:
        # the user info first: a password may hold "/", "?" or ":" that would otherwise be taken for structure
        userinfo = rest[:at]
        rest = rest[at + 1:]
        colon = userinfo.find(":")
        user = _unquote(userinfo[:colon], "user name") if colon >= 0 else ""
        pw = _unquote(userinfo[colon + 1:] if colon >= 0 else userinfo, "password")
        from .credentials import Credentials
        creds = Credentials(user or None, pw)
    proto = 3
    db = None
    tmo = None
    name = None
    q = rest.find("?")
    if q >= 0:
        for kv in rest[q + 1:].split("&"):
            if not kv:
                continue
            eqs = kv.find("=")
            key = kv[:eqs] if eqs >= 0 else kv
            v = _unquote(kv[eqs + 1:], "URL parameter") if eqs >= 0 else ""
            if key == "protocol":
                proto = _digits(v, "protocol")
                if proto != 2 and proto != 3:
                    raise ValueError("protocol must be 2 or 3")
            elif key == "db":
                db = _digits(v, "db")
            elif key == "timeout" or key == "socket_timeout":
                tmo = _seconds(v, key)
            elif key == "client_name":
                name = v
            else:
                raise ValueError("unsupported URL parameter %r: use protocol, db, timeout, socket_timeout or "
                                 "client_name" % key[:32])
        rest = rest[:q]
    sl = rest.find("/")
    if sl >= 0:
        if rest[sl + 1:] and db is None:
            db = _digits(rest[sl + 1:], "database number")
        rest = rest[:sl]
    port = 6379
    if rest.startswith("["):  # IPv6 literal
        end = rest.find("]")
        if end < 0:
            raise ValueError("URL has an unclosed [IPv6] host")
        host = rest[1:end]
        if rest[end + 1:end + 2] == ":":
            port = _digits(rest[end + 2:], "port")
    else:
        colon = rest.rfind(":")
        host = rest
        if colon >= 0:
            host = rest[:colon]
            port = _digits(rest[colon + 1:], "port")
    if not host:
        raise ValueError("URL has no host")
    if port < 1 or port > 65535:
        raise ValueError("port in URL must be 1..65535")
    h = ConnectionHandler((host, port), proto)
    if creds is not None:
        h.auth(creds)
    if db:
        h.select(db)
    if tmo is not None:
        h.timeout(tmo)
    if name:
        h.client_name(name)
    if tls:
        h.tls(True, host)
    return h


def _digits(s, what):
    # Decimal digits only: int() would also take "+5", " 5", "5_0" or "-1". The text is never quoted.
    if not s or len(s) > 9:
        raise ValueError("invalid %s in URL" % what)
    for c in s:
        if c < "0" or c > "9":
            raise ValueError("invalid %s in URL" % what)
    return int(s)


def _seconds(s, what):
    # redis-py's socket_timeout: seconds as a float -> ms for timeout(); 0 means no timeout
    bad = False
    try:
        v = float(s)
    except ValueError:
        bad = True
    if bad or not (v >= 0 and v * 1000 <= MAX_TIMEOUT_MS):  # also refuses nan and inf
        raise ValueError("URL parameter %s must be seconds from 0 to %d" % (what, MAX_TIMEOUT_MS // 1000))
    ms = int(v * 1000)
    if ms == 0 and v > 0:
        ms = 1  # a sub-millisecond timeout is not "no timeout"
    return ms


def _unquote(s, what):
    # %XX escapes in URL user info and parameter values (a password may contain '@' or ':'). Errors name `what`
    # but never quote the text, and are raised outside any except block so no exception chains to one that does.
    if "%" not in s:
        return s  # a lone surrogate in a password is caught by Credentials
    bad = False
    try:
        b = s.encode()
    except UnicodeError:
        bad = True
    if bad:
        raise ValueError("the URL's %s is not valid Unicode text" % what)
    out = bytearray()
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c == 37:
            v = _hex2(b, i + 1, n)
            if v < 0:
                raise ValueError("invalid %%-escape in the URL's %s" % what)
            out.append(v)
            i += 3
        else:
            out.append(c)
            i += 1
    bad = False
    try:
        r = out.decode()
    except UnicodeError:
        bad = True
    if bad:
        raise ValueError("the URL's %s is not UTF-8 after %%-decoding" % what)
    return r


def _hex2(b, i, n):
    # value of the two hex digits at b[i:i+2], or -1
    if i + 2 > n:
        return -1
    v = 0
    for k in range(i, i + 2):
        c = b[k]
        if 48 <= c <= 57:
            d = c - 48
        elif 65 <= c <= 70:
            d = c - 55
        elif 97 <= c <= 102:
            d = c - 87
        else:
            return -1
        v = v * 16 + d
    return v
