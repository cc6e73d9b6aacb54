"""Reconnect, resubscribe and health check for a ConnectionHandler (h.retry(), h.health_check(); docs/SURVIVAL.md).

Loaded only when a handler opts in, so a board that does not pays no RAM for it."""
# One Policy per handler. The handler gives each Client it hands out a reference (client._retry); the client calls
# before(client) at the start of every command (client.py _begin). That call is the whole steady-state cost: two
# attribute tests and, with a health check, ticks arithmetic (no allocation). Everything else here is a rare path.
#
# A lost connection is never hidden: the futures pending on it fail as before (their replies cannot be matched),
# and nothing already sent is re-sent, except the one-key reads the application named in retry_on (retryon.py):
# those stay pending and go out once more on the new connection. Only the *next* command (or receive()) of the
# client re-dials, in place: the same Client object is bound to the new connection, keeping its push_handler and
# its Subscription, which subscribes again to what it had.
#
# A subscription is never left silently dead by an ACL change: names the server refuses (NOPERM) are kept as
# refused (pubsub.py's refused_* sets) and asked for again on the same backoff schedule as the dials (its own
# count), before the client's next command and inside receive(), until the server accepts them (noperm.py, loaded
# on the first refusal; here only its hooks).

from .errors import AuthenticationError, ConnectionError, NoPermissionError, ProtocolError, TimeoutError, RedisError
from .clock import sleep_ms
from .backoff import Backoff



def _keepalive(h, conn):
    # TCP keepalive where the stack names the option (its number differs between stacks, so none is guessed). Its
    # timing is the stack's (hours by default on Linux): the health check is the bound microredis controls.
    st = h._stack
    so = getattr(st, "SO_KEEPALIVE", None)
    s = getattr(conn.transport, "_sock", None)
    if so is not None and s is not None:
        try:
            s.setsockopt(st.SOL_SOCKET, so, 1)
        except Exception:
            pass  # e.g. a TLS socket without setsockopt


def _policy(h):
    p = getattr(h, "_retry", None)
    if p is None:
        p = h._retry = Policy(h)
        conn = h._conn
        if conn is not None:
            _keepalive(h, conn)
            if conn.client is not None:
                p.attach(conn.client, conn, True)  # the Client already handed out takes part too
    return p


def setup(h, backoff_ms=500, max_backoff_ms=30000, jitter=True, on_reconnect=None, retry_on=None):
    # h.retry(...)
    names = None
    if retry_on is not None:
        from .retryon import names
        names = names(retry_on)
    for v in (backoff_ms, max_backoff_ms):
        if type(v) is not int or v < 0:
            raise ValueError("backoff_ms and max_backoff_ms must be ints >= 0")
    if on_reconnect is not None and not callable(on_reconnect):
        raise TypeError("on_reconnect must be callable (it is called with the handler)")
    p = _policy(h)
    p.retry = True
    for b in (p, p.refusals):  # re-dials and refused subscription names: the same schedule, counted apart
        b.backoff_ms = backoff_ms
        b.max_backoff_ms = max_backoff_ms
        b.jitter = jitter
        b.note_success()
    p.on_reconnect = on_reconnect  # pyright: ignore[reportAttributeAccessIssue]
    p.retry_on = names  # pyright: ignore[reportAttributeAccessIssue]
    p.stopped = None
    h.retry_policy = p
    return h


def health(h, interval_ms):
    # h.health_check(ms)
    if type(interval_ms) is not int or interval_ms < 0:
        raise ValueError("health_check interval must be an int >= 0 (ms; 0: off)")
    _policy(h).hc = interval_ms
    return h


class Policy(Backoff):
    # the Backoff (backoff.py, shared with the Outbox) paces the dials: fails, fail_at, delay, wait_ms()
    def __init__(self, handler):
        Backoff.__init__(self, 0)  # a failed dial waits backoff_ms (the first re-dial after a loss is immediate)
        self.h = handler
        handler.retry_policy = None  # self once h.retry() was called (the Outbox's hook: the handler paces dials)
        handler.reconnects = 0  # successful dials after the handler's first
        handler.last_error = None  # the last connection error seen
        self.retry = False  # h.retry() called: lost connections are re-dialled
        self.on_reconnect = None
        self.retry_on = None  # h.retry(retry_on=...): upper-case names of the reads re-sent after a re-dial
        self.parked = None  # [(future, conv, into, name, key)] pending reads of the lost connection, to re-send
        self.once = None  # the futures re-sent last time: not re-sent twice
        self.hc = 0  # h.health_check(ms): PING before a command on a connection idle longer than this; 0: off
        self.client = None  # the Client last handed out or revived: the only one allowed to re-dial
        self.conn = None  # the connection it was given
        self.stopped = None  # the AuthenticationError that stopped re-dialling
        self._creds = None  # the credentials that failed: a new h.auth() resumes
        self.owed = None  # the Subscription with names the server refused (NOPERM), asked for again on a backoff
        self.refusals = Backoff(0)  # its refused attempts in a row and the pause until the next (noperm.py)
        self._dialed = handler._conn is not None  # reconnects counts the dials after the handler's first

    # ---- dialing, paced --------------------------------------------------------------------------------------
    def dial(self, clock, client=None):
        """One dial (with the handshake) if one is due; else ConnectionError at once, saying when the next is."""
        h = self.h
        if self.stopped is not None:
            if h._creds is self._creds:
                raise AuthenticationError("%s (re-dialling stopped: fix the credentials with h.auth(...) or call "
                                          "h.retry(...) again)" % self.stopped.message)
            self.stopped = None  # new credentials: try again
            self.fails = 0
        if self.retry and self.fails:
            wait = self.wait_ms(clock)
            if wait > 0:
                raise ConnectionError("not connected (last error: %s); next attempt in %d ms"
                                      % (h.last_error, wait))
        old = h._conn
        if old is not None:
            h._conn = None
            old.transport.close()
        try:
            conn = h._dial(clock, client)
        except AuthenticationError as e:
            h.last_error = e
            self.stopped = e
            self._creds = h._creds
            raise
        except (RedisError, OSError) as e:
            d = self._failed(e, clock)
            if not self.retry:
                raise
            raise ConnectionError("%s failed: %s; next attempt in %d ms" %
                                  ("re-dial" if self._dialed else "dial", e, d))
        self.fails = 0
        _keepalive(h, conn)
        if self._dialed:
            h.reconnects += 1
        self._dialed = True
        return conn

    def _failed(self, e, clock):
        self.h.last_error = e
        return self.note_failure(clock)

    def attach(self, c, conn, fresh):
        # connect() handed out c: it may re-dial, and its idle time starts now (a reused connection may have sat
        # idle for long: the first command proves it)
        c._set_retry(self)
        self.client = c
        self.conn = conn
        clock = c._clock
        c._touch(clock.ticks_ms() if fresh or not self.hc else self._long_ago(clock))

    def _long_ago(self, clock):
        t = clock.ticks_ms()
        if hasattr(clock, "ticks_add"):
            return clock.ticks_add(t, -(self.hc + 1))
        return t - self.hc - 1

    # ---- the per-command hook --------------------------------------------------------------------------------
    def before(self, c):
        # client.py _begin, before a reply slot is claimed: nothing of the command is written yet
        if c._conn is None:
            self.revive(c)
        elif self.hc and not c._pending and self._idle(c):
            if self.owed is None or not self._owed(c):
                self._check(c)
        elif self.owed is not None and not c._pending:
            self._owed(c)  # (not with replies pending: a transaction's MULTI may be among them)

    def _owed(self, c):
        # refused subscription names: asked for again if it is time (True: done, which proved the socket too)
        from .noperm import owed
        return owed(self, c)

    def _idle(self, c):
        # no command sent for longer than the interval (the last resolved slot holds when the last one went out)
        return c._idle_ms() > self.hc

    def _check(self, c):
        # idle too long: a PING proves the socket before the command is written (so it is never lost half-sent)
        c._set_retry(None)  # the PING's own _begin must not check again
        try:
            f = c._begin(None, None, 0, True, b"PING", None)
            e = c._encoder
            e.begin(1)
            e.arg(b"PING")
            c._end(f)
            f.wait()
        except (ConnectionError, TimeoutError, OSError) as err:
            self.h.last_error = err
            if c._conn is not None:
                c._lost(err)
        except RedisError:
            pass  # an error reply (NOAUTH after a server restart would have come as a lost connection): alive
        finally:
            c._set_retry(self)
        if c._conn is None:
            if not self.retry:
                raise ConnectionError("health check failed (%s): the command was not sent; connect() again"
                                      % self.h.last_error)
            self.revive(c)

    # ---- re-dialling a client --------------------------------------------------------------------------------
    def revive(self, c):
        """c lost its connection: dial again (paced) and bind c to the new one; its Subscription subscribes again."""
        if not self._mine(c):
            # closed by the application, or replaced by a later connect(): only the newest client re-dials
            m = "client is closed: h.connect() gives a connected one (one closed or replaced by a later connect() " \
                "does not re-dial)"
            self._unpark(ConnectionError(m))
            raise ConnectionError(m)
        h = self.h
        try:
            new = self.dial(c._clock)
        except BaseException as e:
            self._unpark(e)
            raise
        # the same Client, on the new connection; what the application set on it is kept
        sub = c._sub
        c._rebind(new, h._timeout_ms)
        new.client = c
        self.conn = new
        c._touch(c._clock.ticks_ms())
        if self.parked:
            from .retryon import resend
            resend(self, c)  # before the subscription: RESP2 subscribed mode would refuse them
        if sub is not None and sub.active:
            c._subscribed(sub, False)
            try:
                self._resubscribe(sub)
            except (ConnectionError, TimeoutError, ProtocolError) as e:
                # a dial that proved nothing (RESP2 without a handshake) counts as a failed attempt: paced
                self._failed(e, c._clock)
                raise
        cb = self.on_reconnect
        if cb is not None:
            cb(h)

    # ---- retry_on (retryon.py, loaded only when names are given) ----------------------------------------------
    def park(self, c, err):
        # client._broken: the futures kept pending (not failed), or None
        if self.retry_on is None or self.client is not c or not self.retry:
            return None
        from .retryon import park
        return park(self, c, err)

    def _unpark(self, err):
        if self.parked:
            from .retryon import unpark
            unpark(self, err)

    def resume(self, f):
        # Future.wait() of a pending future whose read failed: False unless park() kept it
        if not self.parked:
            return False
        from .retryon import resume
        return resume(self, f)

    def _mine(self, c):
        # c lost its connection (rather than being closed, or replaced by a later connect()): it may re-dial
        conn = self.conn
        return self.retry and self.client is c and conn is not None and conn.client is c

    def _resubscribe(self, sub):
        # every channel, pattern and shard channel the server had confirmed, and those it had refused; the sets are
        # kept as they are until answered again, so a failure here leaves them for the next re-dial. A refusal
        # (NOPERM: the ACL changed meanwhile) does not fail the re-dial: refused names are kept and asked for again
        c = sub._c
        sub._bind()
        for i in range(3):  # (the command puts a RESP2 connection in subscribed mode)
            s = sub._sets(i)
            r = (sub.refused_channels, sub.refused_patterns, sub.refused_shard_channels)[i]
            if s or r:
                names = tuple(s) + tuple(r) if r else tuple(s)
                try:
                    sub._run(sub._act(i, names, True))
                    r.clear()  # all confirmed
                except NoPermissionError as err:
                    if c._conn is None:
                        raise
                    from .noperm import refused
                    refused(self, sub, i, names, err)
        if self.owed is sub and not sub._owes():
            self.owed = None
        sub.gaps += 1
        cb = sub.on_gap
        if cb is not None:
            cb(sub)

    # ---- names the server refused (NOPERM): noperm.py, loaded on the first refusal ------------------------------
    def rwait_ms(self, clock):
        """ms until refused subscription names are asked for again (0: now, or none are refused)."""
        if self.owed is None:
            return 0
        return self.refusals.wait_ms(clock)

    # ---- Subscription.receive()/receive_into() ---------------------------------------------------------------
    def receive(self, sub, timeout_ms, buf):
        # As Subscription.receive: a message, or None after timeout_ms. With retry(), a lost connection is
        # re-dialled within the call (paced by the backoff) instead of raising; only an authentication failure, a
        # closed subscription or a failure that is not the connection's comes out. With health_check(), a
        # subscription that heard nothing (and sent nothing) for the interval sends a PING, so a half-open socket
        # is found while waiting too.
        if not self.retry and not self.hc:
            return sub._receive(timeout_ms) if buf is None else sub._receive_into(buf, timeout_ms)
        c = sub._c
        clock = c._clock
        start = clock.ticks_ms()
        hc = self.hc
        while True:
            if self.owed is sub and c._conn is not None and not c._pending:
                try:
                    self._owed(c)  # names the server refused: asked for again when due
                except (ConnectionError, TimeoutError):
                    if not self.retry or c._conn is not None or not sub.active:
                        raise
            if c._conn is None and sub.active and self.retry:
                try:
                    self.revive(c)
                except AuthenticationError:
                    raise
                except (ConnectionError, TimeoutError, OSError):
                    if c._conn is not None or not self._mine(c):
                        raise  # not a lost connection: closed by the application
                    if timeout_ms <= 0:
                        return None
                    left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
                    if left <= 0:
                        return None
                    sleep_ms(max(1, min(left, self.wait_ms(clock))))
                    continue
            ms = 0
            if timeout_ms > 0:
                ms = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
                if ms <= 0:
                    return None
                if hc and ms > hc:
                    ms = hc  # wake up to check the socket
                if self.owed is sub:
                    w = self.rwait_ms(clock)
                    if w < ms:
                        ms = w if w > 0 else 1  # wake up to ask for the refused names again
            try:
                m = sub._receive(ms) if buf is None else sub._receive_into(buf, ms)
                if m is not None:
                    return m
                if hc and c._conn is not None and not c._pending and self._idle(c):
                    self._check(c)
            except (ConnectionError, TimeoutError):
                if not self.retry or c._conn is not None or not sub.active:
                    raise
                # lost while waiting (h.last_error says why): re-dialled on the next turn, at once the first time
            if timeout_ms <= 0 and c._conn is not None:
                return None
