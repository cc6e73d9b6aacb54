"""Future (the pending reply of one command) and the pipeline() context manager of the core client."""

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import InvalidFuture, RedisError

_FREE = const(0)  # in the pool (or waited: its value was handed over)
_PENDING = const(1)
_DONE = const(2)
_INVALID = const(3)


class Future:
    """The pending reply of one command. ready() never blocks; wait() blocks until the reply, its deadline or an
    error. wait() hands the value over once: the Future is then recycled for a later command, so do not keep it."""

    def __init__(self, client, state=_FREE):
        self._c = client
        self._st = state
        self._v = None

    def ready(self):
        """True once wait() will not block: the reply has arrived or the future has failed (its deadline passed,
        the connection broke), and wait() then raises that error. Never blocks and never raises the future's
        error; only an exception of the client's push_handler comes through."""
        if self._st == _PENDING:
            c = self._c
            try:
                c._poll()
            except RedisError:
                if self._st == _PENDING and c._conn is not None:
                    raise  # not the connection failing: the push_handler's own error
        return self._st != _PENDING

    def wait(self):
        if self._st == _PENDING:
            try:
                self._c._read_until(self)
            except RedisError:
                # Another future's failure broke the connection: this one raises its own error below. When the
                # read itself failed (the network), its exception says more than the futures' copy.
                if self._st == _PENDING or self._v is self._c._dropped:
                    raise
        if self._st != _DONE:
            self._odd()
        v = self._v
        self._v = None
        self._st = _FREE
        self._c._recycle(self)
        if isinstance(v, Exception):
            self._c._seen_error(v)
            raise v
        return v

    def _odd(self):
        if self._st == _FREE:
            raise InvalidFuture("this future was already waited (its value was handed over)")
        raise self._v  # _INVALID: every wait() of a broken future raises its error (it is never recycled)

    def __repr__(self):
        return "<Future %s>" % ("free", "pending", "done", "invalid")[self._st]


class Batch:
    # `with client.pipeline():` - allocated once per client; nesting is counted
    def __init__(self, client):
        self._c = client

    def __enter__(self):
        self._c._batch += 1
        return self._c

    def __exit__(self, a, b, c):
        cl = self._c
        cl._batch -= 1
        if cl._batch == 0 and cl._conn is not None:
            cl.flush()
        return False
