"""Future (the pending reply of one command) and the pipeline() context manager of the core client."""

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import InvalidFuture, RedisError, text

_FREE = const(0)  # in the pool (or waited: its value was handed over)
_PENDING = const(1)
_DONE = const(2)
_INVALID = const(3)


_isinstance = isinstance  # (a builtin as a module global: see send.py)
_Exception = Exception

# The client's read loop (client.py sets it when it loads): wait() calls it as a plain function, which on MicroPython
# costs less than a method lookup through the client's classes.
read_until = None


def take_future(c):
    # a recycled future for a new command; a fixed ring, not list.pop(): MicroPython shrinks a list on pop and would
    # re-grow it on append
    n = c._pool_n
    if n == 0:
        return Future(c, _PENDING)  # only until every slot has a recycled future, or for futures never waited
    k = c._pool_head
    f = c._pool[k]
    c._pool[k] = None
    k += 1
    c._pool_head = k - len(c._pool) if k >= len(c._pool) else k
    c._pool_n = n - 1
    f._state = _PENDING
    return f


def recycle(c, f):
    # Waited futures are reissued first-in first-out, so a handle kept after wait() is detected as stale for as long
    # as possible (until frame_capacity more futures have been waited).
    n = c._pool_n
    p = len(c._pool)
    if n < p:
        k = c._pool_head + n
        c._pool[k - p if k >= p else k] = f
        c._pool_n = n + 1


class Future:
    """The pending reply of one command. ready() never blocks; wait() blocks until the reply, its deadline or an
    error. wait() hands the value over once: the Future is then recycled for a later command, so do not keep it."""

    def __init__(self, client, state=_FREE):
        self._client = client
        self._state = state
        self._value = None

    def ready(self):
        """True once wait() will not block: the reply has arrived or the future has failed (its deadline passed,
        the connection broke), and wait() then raises that error. Never blocks and never raises the future's
        error; only an exception of the client's push_handler comes through."""
        if self._state == _PENDING:
            c = self._client
            try:
                c._poll()
            except RedisError:
                if self._state == _PENDING and c._conn is not None:
                    raise  # not the connection failing: the push_handler's own error
        return self._state != _PENDING

    def wait(self):
        if self._state == _PENDING:
            try:
                read_until(self._client, self)
            except RedisError:
                # Another future's failure broke the connection: this one raises its own error below. When the
                # read itself failed (the network), its exception says more than the futures' copy.
                if self._state == _PENDING and self._client._retry is not None and self._client._retry.resume(self):
                    pass  # kept by retry_on (retry.py): re-sent on a new connection, resolved or failed there
                elif self._state == _PENDING or self._value is self._client._dropped:
                    raise
        if self._state != _DONE:
            self._odd()
        v = self._value
        self._value = None
        self._state = _FREE
        recycle(self._client, self)
        if _isinstance(v, _Exception):
            self._client._seen_error(v)
            raise v
        return v

    def _odd(self):
        if self._state == _FREE:
            raise InvalidFuture(text("_odd"))
        raise self._value  # _INVALID: every wait() of a broken future raises its error (it is never recycled)

    def __repr__(self):
        return "<Future %s>" % ("free", "pending", "done", "invalid")[self._state]


class Batch:
    # `with client.pipeline():` - allocated once per client; nesting is counted
    def __init__(self, client):
        self._client = client

    def __enter__(self):
        self._client._batch += 1
        return self._client

    def __exit__(self, a, b, c):
        cl = self._client
        cl._batch -= 1
        if cl._batch == 0 and cl._conn is not None:
            cl.flush()
        return False
