"""ConnectionHandler: configuration, dialing and handshake, and the cached socket that Clients share."""
# The handler owns the live connection (transport, reader, encoder and their buffers, allocated once per dial).
# connect() hands out a Client on it; a later connect() reuses it unless it broke (timeout, reset, protocol error),
# in which case it dials again. Nothing is retried behind the caller's back.

from .errors import AuthenticationError, ConnectionError, RedisError, ReplyError
from .resp import Reader, MemoryParameters
from .encoder import Encoder, check


class Credentials:
    """Password-only (`AUTH pw`) or ACL (`AUTH user pw`) credentials. The password never appears in a repr."""

    def __init__(self, username, password):
        check(password)
        if username is not None:
            check(username)
        self.username = username
        self.password = password

    @staticmethod
    def password_only(password):
        return Credentials(None, password)

    @staticmethod
    def acl(username, password):
        return Credentials(username, password)

    def __repr__(self):
        return "Credentials(username=%r, password=<hidden>)" % (self.username,)


class _Conn:
    # One dialed socket with its reader, encoder and buffers, shared by the Clients the handler hands out.
    def __init__(self, transport, params, decode):
        self.transport = transport
        self.reader = Reader(params, decode=decode)
        self.encoder = Encoder(bytearray(params.buffer_size), transport)
        self.protocol = 2
        self.server = None  # the HELLO reply (a dict) with resp3
        self.ok = True
        self.client = None

    def fail(self):
        self.ok = False
        self.transport.close()

    def release(self, client):
        if self.client is client:
            self.client = None


class ConnectionHandler:
    def __init__(self, address, protocol=3):
        if type(address) is not tuple or len(address) != 2:
            raise TypeError("address must be a (host, port) tuple")
        self.address = address
        self.protocol = protocol
        self._creds = None
        self._tmo = 5000
        self._ping = False
        self._params = MemoryParameters()
        self._db = 0
        self._name = None
        self._fallback = False
        self._tls = None
        self._sni = None
        self._decode = False
        self._conn = None
        self._stack = None
        self._clock = None

    @staticmethod
    def resp2(address):
        return ConnectionHandler(address, 2)

    @staticmethod
    def resp3(address, fallback=False):
        """RESP3 via HELLO 3. fallback=True: a server without HELLO is used with RESP2 instead of failing."""
        h = ConnectionHandler(address, 3)
        h._fallback = fallback
        return h

    # ---- configuration (each returns the handler, so calls chain) ----------------------------------------
    def auth(self, credentials):
        if credentials is not None and not isinstance(credentials, Credentials):
            raise TypeError("auth() takes Credentials.password_only(...) or Credentials.acl(...)")
        self._creds = credentials
        return self

    def timeout(self, ms):
        """Deadline in ms for each reply, counted from when its command is sent (also bounds dialing); 0: none."""
        if type(ms) is not int or ms < 0:
            raise ValueError("timeout must be an int >= 0 (ms)")
        self._tmo = ms
        return self

    def use_ping(self, on=True):
        self._ping = on
        return self

    def memory(self, params):
        if not isinstance(params, MemoryParameters):
            raise TypeError("memory() takes a MemoryParameters")
        self._params = params
        return self

    def select(self, db):
        if type(db) is not int or db < 0:
            raise ValueError("db must be an int >= 0")
        self._db = db
        return self

    def client_name(self, name):
        if name is not None:
            check(name)
        self._name = name
        return self

    def tls(self, context=True, server_hostname=None):
        """TLS (rediss://): context True for the platform default, or an SSLContext."""
        self._tls = context
        self._sni = server_hostname
        return self

    def decode_responses(self, on=True):
        self._decode = on
        return self

    def __repr__(self):
        return "ConnectionHandler(%r, resp%d%s)" % (self.address, self.protocol, ", auth" if self._creds else "")

    # ---- connecting ------------------------------------------------------------------------------------------
    def connect(self, stack=None, clock=None, client=None):
        """A Client on the cached socket, dialing (with the handshake) when there is none or it broke."""
        if clock is None:
            clock = self._clock
            if clock is None:
                from .clock import default_clock
                clock = self._clock = default_clock()
        if stack is not None:
            self._stack = stack
        conn = self._conn
        if conn is not None and conn.client is not None:
            try:
                conn.client.close()  # drains its replies so the socket is clean
            except Exception:
                conn.ok = False  # draining failed: whatever state the socket is in, it is dialed again below
            conn = self._conn
        if conn is not None and (not conn.ok or (self._ping and not self._alive(conn, clock))):
            self.disconnect()
            conn = None
        if conn is None:
            conn = self._dial(clock)
        if client is None:
            from .commands import Client
            client = Client
        c = client(conn, self._tmo, clock)
        conn.client = c
        return c

    def disconnect(self):
        conn = self._conn
        self._conn = None
        if conn is not None:
            if conn.client is not None:
                conn.client._broken(ConnectionError("disconnected"), None)
            conn.transport.close()

    def _alive(self, conn, clock):
        from .client import CoreClient
        c = CoreClient(conn, self._tmo or 1000, clock)
        try:
            ok = c.command(b"PING").wait()
        except RedisError:
            return False
        return (ok == b"PONG") if type(ok) is bytes else (ok == "PONG")

    def _dial(self, clock):
        from .net import open_transport, default_stack
        from .client import CoreClient
        stack = self._stack
        if stack is None:
            stack = self._stack = default_stack()
        host, port = self.address
        t = open_transport(stack, host, port, self._tmo, tls=self._tls, server_hostname=self._sni)
        conn = _Conn(t, self._params, self._decode)
        try:
            self._handshake(CoreClient(conn, self._tmo, clock), conn)
        except BaseException:
            t.close()
            raise
        self._conn = conn
        return conn

    def _handshake(self, c, conn):
        # All handshake commands go out in one write; the replies are then checked in order.
        cr = self._creds
        with c.pipeline():
            fa = None
            if cr is not None:
                fa = c.command(b"AUTH", cr.password) if cr.username is None else \
                    c.command(b"AUTH", cr.username, cr.password)
            fh = c._cmd(0, (b"HELLO", b"3")) if self.protocol == 3 else None  # command() refuses HELLO
            fs = c.command(b"SELECT", self._db) if self._db else None
            fn = c.command(b"CLIENT", b"SETNAME", self._name) if self._name is not None else None
        if fa is not None:
            try:
                fa.wait()
            except ReplyError as e:
                # the message is the server's (it never contains the password)
                raise AuthenticationError(e.message if isinstance(e, AuthenticationError) else
                                          "authentication failed: " + e.message)
        if fh is not None:
            try:
                conn.server = fh.wait()
                conn.protocol = 3
            except ReplyError as e:
                if e.code == "NOAUTH" or e.code == "WRONGPASS":
                    raise AuthenticationError(e.message)
                if not self._fallback:
                    raise ConnectionError("server does not support RESP3 (HELLO 3 failed: %s); use "
                                          "ConnectionHandler.resp2() or resp3(address, fallback=True)" % e.message)
        for f in (fs, fn):
            if f is not None:
                try:
                    f.wait()
                except ReplyError as e:
                    if e.code == "NOAUTH":
                        raise AuthenticationError(e.message)
                    raise
        c._conn = None  # the handshake client is done; its slots are not reused


def from_url(url):
    """A handler from redis://[[user]:password@]host[:port][/db][?protocol=2|3] (rediss:// for TLS). No error
    message quotes the URL, since it may hold a password."""
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
        user = _unquote(userinfo[:colon]) if colon >= 0 else ""
        pw = _unquote(userinfo[colon + 1:]) if colon >= 0 else _unquote(userinfo)
        creds = Credentials(user or None, pw)
    proto = 3
    q = rest.find("?")
    if q >= 0:
        for kv in rest[q + 1:].split("&"):
            if kv.startswith("protocol="):
                proto = _num(kv[9:], "protocol")
                if proto not in (2, 3):
                    raise ValueError("protocol must be 2 or 3")
        rest = rest[:q]
    db = 0
    sl = rest.find("/")
    if sl >= 0:
        if rest[sl + 1:]:
            db = _num(rest[sl + 1:], "database number")
        rest = rest[:sl]
    port = 6379
    if rest.startswith("["):  # IPv6 literal
        end = rest.find("]")
        if end < 0:
            raise ValueError("URL has an unclosed [IPv6] host")
        host = rest[1:end]
        if rest[end + 1:end + 2] == ":":
            port = _num(rest[end + 2:], "port")
    else:
        colon = rest.rfind(":")
        host = rest
        if colon >= 0:
            host = rest[:colon]
            port = _num(rest[colon + 1:], "port")
    if not host:
        raise ValueError("URL has no host")
    h = ConnectionHandler((host, port), proto)
    if creds is not None:
        h.auth(creds)
    if db:
        h.select(db)
    if tls:
        h.tls(True, host)
    return h


def _num(s, what):
    try:
        return int(s)
    except ValueError:
        raise ValueError("invalid %s in URL" % what)


def _unquote(s):
    # %XX escapes in URL user info (a password may contain '@' or ':')
    if "%" not in s:
        return s
    out = bytearray()
    i = 0
    b = s.encode()
    while i < len(b):
        if b[i] == 37:
            try:
                out.append(int(b[i + 1:i + 3], 16))
            except ValueError:
                raise ValueError("invalid %-escape in the URL's user info")
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()
