"""Sentinel: a ConnectionHandler whose every dial asks the sentinels where the master is now (see docs/SURVIVAL.md)."""
# Only the dial changes: the sentinels are asked (SENTINEL get-master-addr-by-name; the first that answers wins and
# is asked first next time; one that fails is skipped), the master is dialed with the handler's own settings, and
# ROLE proves it is a master. So after a failover the handler's next re-dial (a broken connection, or a later
# connect() after disconnect()) reaches the new master; nothing else in the client knows about Sentinel.

from .errors import ConnectionError, NoPermissionError, RedisError
from .connection import ConnectionHandler
from .credentials import Credentials
from .client import CoreClient


def _s(v):
    return v.decode() if type(v) is not str else v


class Sentinel:
    """Sentinel([(host, port), ...], "mymaster", sentinel_auth=None, timeout_ms=1000).handler() -> handler."""

    def __init__(self, sentinels, service_name, sentinel_auth=None, timeout_ms=1000):
        sentinels = list(sentinels)
        if not sentinels:
            raise ValueError("Sentinel needs at least one (host, port) sentinel address")
        for a in sentinels:
            if type(a) is not tuple or len(a) != 2:
                raise TypeError("each sentinel address must be a (host, port) tuple")
        if sentinel_auth is not None and not isinstance(sentinel_auth, Credentials):
            raise TypeError("sentinel_auth takes Credentials.password_only(...) or Credentials.acl(...)")
        self.sentinels = sentinels
        self.service_name = service_name
        self._auth = sentinel_auth
        self._timeout_ms = timeout_ms
        self.last_error = None  # why the last sentinel that failed did (a ConnectionError, a ReplyError, ...)

    def handler(self, protocol=3, fallback=False):
        """A ConnectionHandler for the master (configure it as usual: .auth(), .timeout(), ...)."""
        return SentinelHandler(self, protocol, fallback)

    def master_address(self, stack=None, clock=None):
        """(host, port) of the master as the first sentinel that answers sees it; ConnectionError if none does."""
        n = len(self.sentinels)
        for i in range(n):
            addr = self.sentinels[i]
            sh = ConnectionHandler.resp2(addr).timeout(self._timeout_ms).auth(self._auth)
            r = None
            try:
                c = sh.connect(stack, clock, CoreClient)
                r = c.command(b"SENTINEL", b"get-master-addr-by-name", self.service_name).wait()
                c.close()
                if r is None:
                    self.last_error = ConnectionError("sentinel %s:%s does not know master %r"
                                                      % (addr[0], addr[1], _s(self.service_name)))
            except RedisError as e:
                self.last_error = e
            except OSError as e:
                self.last_error = ConnectionError("sentinel %s:%s: %r" % (addr[0], addr[1], e))
            finally:
                sh.disconnect()
            if type(r) is list and len(r) == 2:
                if i:  # the sentinel that answered is asked first next time
                    self.sentinels.pop(i)
                    self.sentinels.insert(0, addr)
                return (_s(r[0]), int(r[1]))
        raise ConnectionError("no sentinel gave the address of master %r (%d asked; last: %s)"
                              % (_s(self.service_name), n, self.last_error))

    def __repr__(self):
        return "Sentinel(%r, %r%s)" % (self.sentinels, self.service_name, ", auth" if self._auth else "")


class SentinelHandler(ConnectionHandler):
    def __init__(self, sentinel, protocol=3, fallback=False):
        ConnectionHandler.__init__(self, sentinel.sentinels[0], protocol)
        self._fallback = fallback  # resp3(fallback=True)'s setting, which the constructor does not take
        self.sentinel = sentinel
        self.address = None  # pyright: ignore[reportAttributeAccessIssue]  the master's, once a dial has found it

    def _dial(self, *args):
        # *args: whatever ConnectionHandler._dial takes (the clock first), passed on unchanged (a rare path)
        clock = args[0] if args else self._clock
        s = self.sentinel
        s.last_error = None
        self.address = s.master_address(self._stack, clock)
        conn = ConnectionHandler._dial(self, *args)
        c = CoreClient(conn, self._timeout_ms, clock)
        try:
            role = c.command(b"ROLE").wait()
        except NoPermissionError:
            role = None  # ROLE refused by the ACL: the sentinels' word is all there is
        except RedisError:
            self.disconnect()
            raise
        finally:
            c.close()  # (nothing is pending: the connection is the handler's, not closed)
        if role is not None and (type(role) is not list or not role or _s(role[0]) != "master"):
            self.disconnect()
            raise ConnectionError("%s:%s is not the master of %r (ROLE %s): the sentinels have not switched yet; "
                                  "connect() again later" % (self.address[0], self.address[1],
                                                             _s(s.service_name), _s(role[0]) if role else role))
        return conn

    def __repr__(self):
        return "SentinelHandler(%r, master=%r, resp%d%s)" % (self.sentinel.service_name, self.address,
                                                             self.protocol, ", auth" if self._creds else "")
