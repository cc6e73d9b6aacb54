"""Link: what the Outbox and the Inbox share: their handler, a client of their own, the clock, the backoff, blocked."""
# Both talk to one stream through a CoreClient of their own (or the application's, client=), never raise for network
# trouble (last_error), stop on an authentication or permission failure until resume() (blocked), and pace their
# re-dials and retries with the Backoff. What each does with its session (the Outbox learns the stream's top, the
# Inbox reads its pending entries first) is its own. Given a Cluster (cluster.py) for a handler, they take its
# handler_for(stream): the handler of whichever primary owns the stream's slot, told of each failure (failed(e)), so a
# MOVED or a lost node leads the next dial to the new owner, a new connection and so a new session there.

from .errors import RedisError, AuthenticationError, NoPermissionError
from .backoff import Backoff


def parse_id(v):
    # a stream entry ID, b"ms-seq" (str with decode_responses), as (ms, seq)
    if type(v) is str:
        v = v.encode()
    d = v.find(b"-")
    if d < 0:
        return int(v), 0
    return int(v[:d]), int(v[d + 1:])


class Link(Backoff):
    """The handler, a client of its own (_c; _cx: the connection its session is on), the clock, last_error and
    blocked of an Outbox or an Inbox; a Backoff whose first retry is immediate."""

    def __init__(self, handler, stream):
        Backoff.__init__(self, 1)
        f = getattr(handler, "handler_for", None)  # a Cluster: its handler of the stream's slot owner
        if f is not None:
            handler = f(stream)
        self._h = handler
        self.last_error = None
        self.blocked = False  # an AuthenticationError/NoPermissionError stops it until resume()
        self._c = None
        self._cx = None
        clock = getattr(handler, "_clock", None)  # (the time module on MicroPython)
        if clock is None:
            from .clock import default_clock
            clock = default_clock()
        self._clock = clock

    def resume(self):
        """After fixing credentials or ACLs: let it try again."""
        self.blocked = False
        self.note_success()

    def _trouble(self, e):
        # an error of a dial or a command: an authentication or permission failure blocks, network and server
        # trouble counts for the backoff; anything else is raised
        if isinstance(e, (AuthenticationError, NoPermissionError)):
            self._stop(e)
        elif isinstance(e, (RedisError, OSError)):
            self._failed(e, self._clock)
        else:
            raise e

    def _stop(self, e):
        self.last_error = e
        self.blocked = True
        self._c = None
        return None

    def _failed(self, e, clock):
        self.last_error = e
        self._c = None
        self.note_failure(clock)
        f = getattr(self._h, "failed", None)  # a cluster's handler learns where the stream went (cluster.py)
        if f is not None:
            f(e)
