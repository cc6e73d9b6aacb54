"""ConnectionHandler: configuration, dialing and handshake, and the cached socket that Clients share."""
# The handler owns the live connection (transport, reader, encoder and their buffers, allocated once per dial).
# connect() hands out a Client on it; a later connect() reuses it unless it broke (timeout, reset, protocol error),
# in which case it dials again. Nothing is retried behind the caller's back; with h.retry() (retry.py) a Client that
# lost its connection re-dials on its next command, paced, but what was pending on the lost connection still fails.
# Credentials (credentials.py) and from_url (url.py) load only where used, so a board pays RAM only for what it
# configures.

import gc

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import ConnectionError, RedisError, ReplyError, optional, text
from .resp import Reader, MemoryParameters
from .encoder import Encoder, check

# Longest timeout(): a deadline is kept as ticks_diff(now, sent) against timeout + a blocking command's allowance
# (at most a day, commands.py), and ticks_diff is only right below half the tick period: 2**28 ms on CircuitPython
# (ticks wrap at 2**29), 2**29 on MicroPython boards. 2**27 ms (about 37 hours) plus a day stays below both.
MAX_TIMEOUT_MS = 1 << 27
_HANDSHAKE_MEMORY = const(4096)  # the HELLO reply is about 100-200 bytes; a tiny memory_limit must not refuse it


class _Conn:
    # One dialed socket with its reader, encoder and buffers, shared by the Clients the handler hands out.
    def __init__(self, transport, params, decode):
        self.transport = transport
        self.reader = Reader(params, decode=decode)
        self.encoder = Encoder(bytearray(params.buffer_size), transport)
        self.protocol = 2
        self.server = None  # with resp3, the HELLO reply's proto and version (a dict)
        self.ok = True
        self.client = None

    def fail(self):
        self.ok = False
        self.transport.close()


class ConnectionHandler:
    # h.retry() / h.health_check() (retry.py, loaded only then): class attributes until used, so a handler that
    # does not opt in carries nothing
    # (retry.py sets h.retry_policy, the Outbox's hook, once retry() was called, and h.reconnects, h.last_error)

    def __init__(self, address, protocol=3):
        if type(address) is not tuple or len(address) != 2:
            raise TypeError(text("address"))
        host, port = address
        if type(host) is not str or not host:
            raise TypeError(text("host"))
        if type(port) is not int:
            raise TypeError(text("port"))
        if port < 1 or port > 65535:
            raise ValueError(text("port"))
        if protocol != 2 and protocol != 3:
            raise ValueError(text("protocol"))
        self.address = address
        self.protocol = protocol
        self._creds = None
        self._timeout_ms = 5000
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
        if credentials is not None:
            from .credentials import Credentials  # loaded only by a board that authenticates
            if not isinstance(credentials, Credentials):
                raise TypeError(text("auth"))
        self._creds = credentials
        return self

    def timeout(self, ms):
        """Deadline in ms for each reply, counted from when its command is sent (also bounds dialing); 0: none.
        At most MAX_TIMEOUT_MS (2**27 ms, about 37 hours), so tick arithmetic stays exact where ticks wrap."""
        if type(ms) is not int:
            raise TypeError(text("timeout"))
        if ms < 0 or ms > MAX_TIMEOUT_MS:
            raise ValueError(text("timeout_ms", MAX_TIMEOUT_MS))
        self._timeout_ms = ms
        return self

    def use_ping(self, on=True):
        self._ping = on
        return self

    def memory(self, params):
        if not isinstance(params, MemoryParameters):
            raise TypeError(text("memory"))
        self._params = params
        return self

    def select(self, db):
        if type(db) is not int or db < 0:
            raise ValueError(text("db"))
        self._db = db
        return self

    def client_name(self, name):
        if name is not None:
            check(name)
        self._name = name
        return self

    def tls(self, context=True, server_hostname=None):
        """TLS (rediss://): context True for the platform default, or an SSLContext."""
        from .tlsctx import check  # the TLS set-up loads only where TLS is configured
        check(context, server_hostname)
        self._tls = context
        self._sni = server_hostname
        return self

    def decode_responses(self, on=True):
        self._decode = on
        return self

    def retry(self, *a, **kw):
        """retry(backoff_ms=500, max_backoff_ms=30000, jitter=True, on_reconnect=None, retry_on=None): a Client
        that lost its connection re-dials on its next command, failing fast between attempts; the pending one-key
        reads named in retry_on are re-sent once (docs/SURVIVAL.md; retry.py, in package-survival.json)."""
        return optional("retry").setup(self, *a, **kw)

    def health_check(self, interval_ms):
        """PING before a command on a connection idle longer than interval_ms (docs/SURVIVAL.md; retry.py)."""
        return optional("retry").health(self, interval_ms)

    def __repr__(self):
        return "ConnectionHandler(%r, resp%d%s)" % (self.address, self.protocol, ", auth" if self._creds else "")

    # ---- connecting ------------------------------------------------------------------------------------------
    def connect(self, stack=None, clock=None, client=None):
        """A Client on the cached socket, dialing (with the handshake) when there is none or it broke."""
        if clock is not None and not (hasattr(clock, "ticks_ms") and hasattr(clock, "ticks_diff")):
            raise TypeError(text("clock"))
        if stack is not None and not hasattr(stack, "socket"):
            raise TypeError(text("stack"))
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
        rp = getattr(self, "_retry", None)  # retry.py's Policy, once h.retry()/h.health_check() was called
        fresh = conn is None
        if fresh:
            conn = self._dial(clock, client) if rp is None else rp.dial(clock, client)  # client None: CoreClient
        if client is None:
            # the catalogue is imported only after a successful dial: a failed one on a small heap never pays for it
            if fresh:
                # A collection before the largest import of all lets it fill the holes that the dial and earlier
                # imports left (the smallest heap that connects a full Client: 117 -> 103 KiB, bench/ram/README.md).
                # Not before the dial too: that took the core's to 73 KiB, but 16 pipelined SETs then ran 5% slower
                # (measured, bench/hot; the connection's objects land elsewhere in the heap).
                gc.collect()
            from .commands import Client
            c = Client(conn, self._timeout_ms, clock)
        elif fresh:
            c = conn.client  # the client that made the handshake (no second set of reply slots)
        else:
            c = client(conn, self._timeout_ms, clock)
        conn.client = c  # pyright: ignore[reportAttributeAccessIssue]  (_Conn starts it as None)
        if rp is not None:
            rp.attach(c, conn, fresh)
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
        c = CoreClient(conn, self._timeout_ms or 1000, clock)
        try:
            ok = c.command(b"PING").wait()
        except RedisError:
            return False
        return (ok == b"PONG") if type(ok) is bytes else (ok == "PONG")

    def _dial(self, clock, client=None):
        # Dials and handshakes with a `client` (CoreClient by default), which is left in conn.client.
        from .net import open_transport, default_stack
        if client is None:
            from .client import CoreClient as client
        stack = self._stack
        if stack is None:
            stack = self._stack = default_stack()
        host, port = self.address
        t = open_transport(stack, host, port, self._timeout_ms, tls=self._tls, server_hostname=self._sni)
        conn = _Conn(t, self._params, self._decode)
        r = conn.reader
        lim = r._limit
        if lim < _HANDSHAKE_MEMORY:
            # Exempt the handshake from a small memory_limit (the HELLO reply would never fit); the buffer grown for
            # it is given back by Reader.space() once the reply is consumed.
            r._limit = _HANDSHAKE_MEMORY
        t.last_words = r.buf  # until something is read: a refusal on accept a reset hides is found there (rare.py)
        try:
            c = client(conn, self._timeout_ms, clock)
            self._handshake(c, conn)
            conn.client = c  # pyright: ignore[reportAttributeAccessIssue]
        except BaseException:
            t.close()
            raise
        finally:
            r._limit = lim
        self._conn = conn
        return conn

    def _handshake(self, c, conn):
        # All handshake commands go out in one write; the replies are then checked in order.
        cr = self._creds
        if cr is None and self.protocol == 2 and not self._db and self._name is None:
            return  # nothing to send: a refusal comes with the first commands (the transport's last_words stay)
        with c.pipeline():
            fa = None
            if cr is not None:
                fa = c.command(b"AUTH", cr.password) if cr.username is None else \
                    c.command(b"AUTH", cr.username, cr.password)
            fh = c._cmd(None, (b"HELLO", b"3")) if self.protocol == 3 else None  # command() refuses HELLO
            fs = c.command(b"SELECT", self._db) if self._db else None
            fn = c.command(b"CLIENT", b"SETNAME", self._name) if self._name is not None else None
        if fa is not None:
            _ok(fa, "AUTH", False)
        if fh is not None:
            v = _ok(fh, "HELLO", self._fallback)
            if not isinstance(v, ReplyError):  # (an error reply here: fallback=True, so RESP2 it is)
                if type(v) is not dict:
                    _bad("HELLO 3")
                conn.protocol = 3
                # Only its proto and version are kept: the whole map (id, mode, role, modules...) is about 0.9 KB.
                conn.server = d = {}
                for k in ("proto", "version") if self._decode else (b"proto", b"version"):
                    if k in v:
                        d[k] = v[k]  # pyright: ignore[reportCallIssue, reportArgumentType]  (v: the HELLO map)
        if fs is not None:
            _ok(fs, "SELECT", False)
        if fn is not None:
            _ok(fn, "CLIENT SETNAME", False)
        if conn.reader.pending():
            _bad(None)
        conn.transport.last_words = None  # read: a later failure is an outage, not a refusal


def _ok(f, what, fallback):
    # A handshake command's reply: +OK, but for HELLO, whose reply is returned. An error reply raises what connect()
    # should (rare.py words it), except HELLO unknown to the server with fallback=True: its error is returned.
    try:
        v = f.wait()
    except ReplyError as e:
        from .rare import handshake_error
        v = handshake_error(e, what, fallback)
        if v is None:
            return e  # (HELLO unknown, fallback=True: RESP2)
        raise v
    if what != "HELLO" and not ((v == b"OK") if type(v) is bytes else (v == "OK")):
        _bad(what)  # the replies are out of step
    return v


def _bad(what):
    # a handshake reply of the wrong shape, or (None) data after the handshake
    from .rare import handshake_error
    raise handshake_error(None, what, False)
