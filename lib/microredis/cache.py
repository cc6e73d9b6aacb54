"""Client-side cache over RESP3 CLIENT TRACKING: Cache(client, slots, size, prefixes=, keys=). Loaded only when used.

Opt-in (README "Client-side cache"): the cache takes over the client's get(), get_into() and hget() for the keys
it tracks (instance attributes shadow the class methods, so clients without a cache never pay for it) and the
client's push_handler for `invalidate` pushes, forwarding every other push to the handler installed before it."""
# Design choices (why):
# - A hit answers from the cache: a real Future taken from the client's pool, already resolved, holding the value
#   object the miss read (bytes, or str with decode_responses), so a hit allocates nothing. get_into() copies
#   that value into the caller's buffer. Before answering, the hit reads what has already arrived on the socket
#   (non-blocking): an invalidation that reached the device is applied before a value is served (Redis sends the
#   invalidation of the connection's own write after the write's reply, so without this set() then get() of a
#   cached key could see the old value).
# - A miss is sent by the class method, then the reply slot's conversion is pointed at _reply, which fills a
#   slot when the reply is read (waited or not). Pending fills sit in a small ring, each with the value the
#   client's resolved-slot counter will have when its reply resolves: an error reply (never converted) or a
#   lost connection leaves records that the next fill recognises as older and drops.
# - An invalidation that arrives while a fill of the same key is in flight kills that fill, so a value read
#   around a concurrent write is never kept.
# - A new connection (h.retry()'s in-place re-dial, or any other reason the client's _conn changes) is noticed
#   by the next get()/hget(): the cache is flushed and CLIENT TRACKING is sent again before anything is served
#   or filled on it. No hook in retry.py is needed for that.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import ConnectionError, RedisError
from .encoder import check
from .resp import NEED_DATA
from .client import _GET2, _INCR2, _PUBLISH3, _SET3, take_future

_DONE = const(2)  # client.py's Future state
_SEQ = const(0x3FFF)  # client._resolved_count wraps at 2**14
_HALF = const(0x2000)

_bytes = bytes
_type = type
_len = len
_bytearray = bytearray
_memoryview = memoryview


def _names(xs, what):
    # bytes (str encoded once, here) of a prefix or key list
    if xs is None:
        return None
    if _type(xs) is _bytes or _type(xs) is str:
        xs = (xs,)
    out = []
    for x in xs:
        if _type(x) is str:
            x = x.encode()
        elif _type(x) is _bytearray or _type(x) is _memoryview:
            x = _bytes(x)
        if _type(x) is not _bytes or not x:
            raise TypeError("%s must be non-empty bytes or str" % what)
        out.append(x)
    return out


def _buffer(b):
    t = _type(b)
    if t is _bytearray:
        return True
    if t is _memoryview:
        check(b)  # 1-D, contiguous, byte-sized: what the core's get_into() accepts
        return _writable(b)
    return False


def _writable(b):
    # as the core's get_into() requires (a cached None wrote nothing, so a read-only view passed); a function of its
    # own: a try makes MicroPython take the frame from the heap, and bytearray hits must not pay for that
    try:
        b[0:0] = b""
    except (TypeError, ValueError):
        return False  # the core's get_into() says why
    return True


def _arrived(c):
    # True if bytes are buffered or arrive now (one non-blocking receive; a lost connection raises)
    if c._conn is None:
        return False
    r = c._reader
    if r.rpos != r.wpos:
        return True
    return c._recv(0)


def _drain(c):
    # Reads every frame that has arrived, until the socket has nothing more (client._read_one(0) stops once a
    # reply resolves, or once the buffer is empty at a frame boundary while a reply is pending, which left pushes
    # behind in the socket when a receive ended exactly between two of them). Never sends: inside a pipeline()
    # block the batch stays queued (_read_one would flush it).
    c._handler_raised = False
    n = 64  # receives at most (a flood of pushes must not hold a hit forever)
    try:
        while c._conn is not None:
            v = c._parse()
            if v is NEED_DATA:
                n -= 1
                if not n or not c._recv(0):
                    return
                continue
            c._dispatch(v)  # (inside pipeline() a full send buffer may have sent part of the batch already)
    except BaseException as e:
        if c._handler_raised:
            c._handler_raised = False  # the push_handler's own exception: its frame was consumed
        elif c._conn is not None:
            c._lost(e)
        raise


class Cache:
    """Cache(client, slots=8, size=64, prefixes=None, keys=None, noloop=False).

    prefixes: tracked with `CLIENT TRACKING ON BCAST PREFIX p ...` (the server invalidates every key under them);
    keys: named keys, tracked in the default mode (the server invalidates the keys this connection has read).
    Both may be given (then the default mode: the server remembers what was read). Counters: hits, misses,
    invalidations (keys named by invalidate pushes; a flush counts one), flushes, evictions, too_large."""

    def __init__(self, client, slots=8, size=64, prefixes=None, keys=None, noloop=False):
        if _type(slots) is not int or slots < 1:
            raise ValueError("slots must be an int >= 1")
        if _type(size) is not int or size < 0:
            raise ValueError("size must be an int >= 0 (bytes of the longest value cached)")
        pre = _names(prefixes, "prefixes")
        ks = _names(keys, "keys")
        if not pre and not ks:
            raise ValueError("name what to cache: prefixes=(b'cfg:dev1:',) and/or keys=(b'k1', ...)")
        self._prefixes = tuple(pre) if pre else ()
        self._keys = set(ks) if ks else None
        self._bcast = not ks
        self._noloop = bool(noloop)
        self._size = size
        self.hits = 0  # (wraps at 2**30, so that counting never allocates a long int)
        self.misses = 0
        self.invalidations = 0
        self.flushes = 0
        self.evictions = 0
        self.too_large = 0
        # the slots: key (bytes), field (bytes for hget, None for get), value (bytes/str/None); key None: free
        self._key = [None] * slots
        self._field = [None] * slots
        self._value = [None] * slots
        self._victim = 0  # the next slot to evict when all are taken (round robin)
        self._cap = 0  # of the ring of fills in flight (_attach)
        # Each bound once and kept as an instance attribute (it shadows the method): a miss's reply slot gets this
        # very object as its conversion, and the client's push_handler is this very object, so close() and get()
        # recognise them with `is` and nothing is allocated per call.
        self._reply = self._reply
        self._push = self._push
        self._client = None
        self._conn = None  # the connection CLIENT TRACKING was sent on
        self._attach(client)

    def _attach(self, client):
        conn = client._conn
        if conn is None:
            raise ConnectionError("client is closed: the cache needs a connected client")
        if conn.protocol != 3:
            raise ValueError("the client-side cache needs RESP3 (invalidations are push frames): use "
                             "ConnectionHandler.resp3(address), without fallback to RESP2")
        if getattr(client, "_cache", None) is not None:
            raise ValueError("this client already has a Cache: close() it first")
        self._client = client
        self._decode = conn.reader.decode
        cap = client._cap
        if cap != self._cap:
            # Fills in flight: a ring as long as the client's ring of reply slots (no more replies can be pending),
            # kept as the client keeps its own (_head, _pending, _cap, _into). _due: the value the client's
            # _resolved_count will have when the fill's reply resolves.
            self._cap = cap
            self._due = [0] * cap
            self._fill_key = [None] * cap  # None: the fill was killed by an invalidation
            self._fill_field = [None] * cap
            self._into = [None] * cap  # get_into()'s buffer, where the value will be
        self._head = 0
        self._pending = 0
        cls = _type(client)  # a miss goes to the client class's own methods
        self._own_get = cls.get
        self._own_get_into = cls.get_into
        # the core client has no hget(); a Client's loads with its group (hasattr asks the instance, which loads it)
        self._own_hget = getattr(cls, "hget", None) if hasattr(client, "hget") else None
        self._prev = client.push_handler  # the handler installed before the cache: every other push goes to it
        self._track(True)
        client._cache = self
        client.push_handler = self._push
        client.get = self.get
        client.get_into = self.get_into
        if self._own_hget is not None:
            client.hget = self.hget

    def bind(self, client):
        """Move the cache to another Client of a RESP3 handler (e.g. the one a later h.connect() handed out):
        it is emptied and tracking starts on that client's connection; the slots are reused."""
        self.close()
        self._attach(client)

    # ---- reads -------------------------------------------------------------------------------------------------
    # Split into small methods: on MicroPython a frame with more than about 11 words of locals and stack, or a
    # try with a bound exception, is taken from the heap on every call (freed again, but heap traffic).
    def get(self, key):
        if self._client._conn is not self._conn or self._client.push_handler is not self._push:
            self._renew()
        if _type(key) is str:
            key = key.encode()  # (allocates: bytes keys make allocation-free hits)
        if _type(key) is not _bytes or not self._wants(key):
            return self._own_get(self._client, key)
        self._poll()
        i = self._find(key, None)
        if i >= 0 and self._quiet(key):
            self.hits = (self.hits + 1) & 0x3FFFFFFF
            return self._hit(self._value[i])
        self.misses += 1
        return self._expect(self._own_get(self._client, key), key, None, None)

    def get_into(self, key, buffer):
        if self._client._conn is not self._conn or self._client.push_handler is not self._push:
            self._renew()
        if _type(key) is not _bytes or self._decode or not self._wants(key) or not _buffer(buffer):
            return self._own_get_into(self._client, key, buffer)  # (it raises for a bad buffer)
        self._poll()
        i = self._find(key, None)
        if i >= 0 and self._quiet(key):
            i = self._copy(self._value[i], buffer)
            if i is not None:
                return i
        return self._miss_into(key, buffer)

    def _miss_into(self, key, buffer):
        self.misses += 1
        return self._expect(self._own_get_into(self._client, key, buffer), key, None, buffer)

    def _copy(self, v, buffer):
        # a get_into() hit; None when the value is too long for buffer (the server's reply then raises MemoryFull,
        # as without a cache)
        if v is not None:
            if _len(v) > _len(buffer):
                return None
            buffer[0:_len(v)] = v
            v = _len(v)
        self.hits = (self.hits + 1) & 0x3FFFFFFF
        return self._hit(v)

    def hget(self, key, field):
        if self._client._conn is not self._conn or self._client.push_handler is not self._push:
            self._renew()
        if _type(key) is str:
            key = key.encode()
        if _type(field) is str:
            field = field.encode()
        if _type(key) is not _bytes or _type(field) is not _bytes or not self._wants(key):
            return self._own_hget(self._client, key, field)
        self._poll()
        i = self._find(key, field)
        if i >= 0 and self._quiet(key):
            self.hits = (self.hits + 1) & 0x3FFFFFFF
            return self._hit(self._value[i])
        self.misses += 1
        return self._expect(self._own_hget(self._client, key, field), key, field, None)

    def _wants(self, key):
        if self._keys is not None and key in self._keys:
            return True
        for p in self._prefixes:
            if key.startswith(p):
                return True
        return False

    def _find(self, key, field):
        kk = self._key
        ff = self._field
        for i in range(_len(kk)):
            if kk[i] == key and ff[i] == field:
                return i
        return -1

    def _quiet(self, key):
        # True when no command still pending may change key. A hit must not overtake this client's own write: a SET
        # sent before it, whose reply (and invalidation) has not arrived yet, would otherwise be answered with the
        # old value. GET, HGET, PUBLISH and the hot SET/INCR of another bytes key are safe; behind anything else
        # the hit is a miss, pipelined behind the write, so the server answers in order.
        c = self._client
        n = c._pending
        i = c._head
        while n:
            nm = c._name[i]
            if nm is not _GET2 and nm is not _PUBLISH3:
                if nm is _SET3 or nm is _INCR2:
                    nm = c._key[i]
                    if _type(nm) is not _bytes or nm == key:
                        return False
                elif _type(nm) is not str or nm != "HGET":
                    return False
            n -= 1
            i += 1
            if i == c._cap:
                i = 0
        return True

    def _hit(self, v):
        # a future of the client's pool, resolved already: wait() hands v over and recycles it, as for a reply
        f = take_future(self._client)
        f._value = v
        f._state = _DONE
        return f

    def _poll(self):
        # what has arrived (pushes: invalidations) is read before a value is served; never blocks (and never
        # sends: inside a pipeline() block the batch stays queued). Two locals and no bound exception name: the
        # frame stays off the heap.
        c = self._client
        try:
            if _arrived(c):
                _drain(c)
        except RedisError:
            if c._conn is not None:
                raise  # a push_handler's own error (after its frame was consumed)
        if c._conn is not self._conn:
            self.flush()  # the read found the connection lost

    # ---- fills -------------------------------------------------------------------------------------------------
    def _expect(self, f, key, field, into):
        # the command just sent (slot c._last, future f) fills a slot when its reply is read; returns f
        c = self._client
        if c._conn is not self._conn or self._conn is None:
            return f  # sent on a connection without tracking (a re-dial inside the send): not cached
        c._conv[c._last] = self._reply
        cap = self._cap
        if self._pending == cap:  # only stale records can fill the ring (at most cap replies are pending)
            self._pop()
        i = self._head + self._pending
        if i >= cap:
            i -= cap
        self._due[i] = (c._resolved_count + c._pending) & _SEQ
        self._fill_key[i] = key
        self._fill_field[i] = field
        self._into[i] = into
        self._pending += 1
        return f

    def _pop(self):
        h = self._head
        self._fill_key[h] = None
        self._fill_field[h] = None
        self._into[h] = None
        self._head = 0 if h + 1 == self._cap else h + 1
        self._pending -= 1

    def _reply(self, v):
        # the conversion of a miss's reply (client._resolve_slow, after the slot was released): fill, return v
        c = self._client
        if c._conn is not self._conn:
            return v
        rc = c._resolved_count
        while self._pending:
            h = self._head
            late = (rc - self._due[h]) & _SEQ  # > 0: an older record, its reply never converted (an error reply)
            if late >= _HALF:
                return v  # a later command's: this reply has no record (sent before a flush)
            key = self._fill_key[h]
            field = self._fill_field[h]
            into = self._into[h]
            self._pop()
            if late == 0:
                if key is not None:
                    self._fill(key, field, into, v)
                return v
        return v

    def _fill(self, key, field, into, v):
        if into is not None and v is not None:
            if _type(v) is not int:
                return
            if v > self._size:
                self.too_large += 1
                return
            try:
                v = _bytes(into[:v])  # get_into(): the value is in the caller's buffer
            except MemoryError:
                return
        elif v is not None and _type(v) is not _bytes and _type(v) is not str:
            return
        if v is not None and _len(v) > self._size:
            self.too_large += 1
            return
        i = self._find(key, field)
        if i < 0:
            i = self._find(None, None)
            if i < 0:
                i = self._victim
                self._victim = 0 if i + 1 == _len(self._key) else i + 1
                self.evictions += 1
        self._key[i] = key
        self._field[i] = field
        self._value[i] = v  # pyright: ignore[reportCallIssue, reportArgumentType]  (a slot list made of None)

    # ---- invalidation ------------------------------------------------------------------------------------------
    def _push(self, v):
        # the client's push_handler: invalidate pushes are ours, everything else goes to the previous handler
        k = v[0] if _len(v) else None
        if _len(v) == 2 and ((k == b"invalidate") if _type(k) is _bytes else (k == "invalidate")):
            self._invalidate(v[1])
            return
        if self._prev is not None:
            self._prev(v)

    def _invalidate(self, keys):
        if keys is None:  # FLUSHALL/FLUSHDB, or the server's tracking table evicted keys: everything goes
            self.invalidations += 1
            self.flush()
            return
        if _type(keys) is not list:
            return
        for key in keys:
            if _type(key) is str:
                key = key.encode()
            if _type(key) is not _bytes:
                continue
            self.invalidations += 1
            self.invalidate(key)

    def invalidate(self, key):
        """Drop key (its get() value and every hget() field of it) from the cache, and any fill of it in flight."""
        if _type(key) is str:
            key = key.encode()
        kk = self._key
        for i in range(_len(kk)):
            if kk[i] == key:
                kk[i] = None
                self._field[i] = None
                self._value[i] = None
        fk = self._fill_key
        for i in range(self._cap):
            if fk[i] == key:
                fk[i] = None  # in flight: its reply may predate the write, so it is not kept

    def flush(self):
        """Empty the cache (every slot, and every fill in flight)."""
        self.flushes += 1
        for i in range(_len(self._key)):
            self._key[i] = None
            self._field[i] = None
            self._value[i] = None
        for i in range(self._cap):
            self._fill_key[i] = None

    def _renew(self):
        # The client changed under the cache: a push_handler set after the cache was made (it is kept, behind the
        # cache, and the cache is flushed: invalidations may have gone to it), or a new connection.
        c = self._client
        if c.push_handler is not self._push:
            self._prev = c.push_handler
            c.push_handler = self._push
            self.flush()
        if c._conn is not self._conn:
            self._track(False)

    # ---- tracking ----------------------------------------------------------------------------------------------
    def _track(self, first):
        # (Re)start tracking on the client's connection, with an empty cache. Called when the connection changed
        # (a re-dial): the new connection has no tracking, and invalidations sent to the old one are lost.
        c = self._client
        if not first:
            self.flush()
        self._conn = None
        self._head = 0
        self._pending = 0
        conn = c._conn
        if conn is None:
            return  # the miss goes to the class method, which re-dials (h.retry()) or says the client is closed
        args = [b"CLIENT", b"TRACKING", b"ON"]
        if self._bcast:
            args.append(b"BCAST")
            for p in self._prefixes:
                args.append(b"PREFIX")
                args.append(p)
        if self._noloop:
            args.append(b"NOLOOP")
        with c.pipeline():
            off = c.command(b"CLIENT", b"TRACKING", b"OFF")  # a connection may carry an earlier cache's mode
            on = c.command(*args)
        off.wait()
        on.wait()
        if c._conn is conn:
            self._conn = conn

    def close(self):
        """Give the client its own get()/get_into()/hget() and push_handler back, and stop tracking."""
        c = self._client
        for name in ("get", "get_into", "hget"):
            try:
                delattr(c, name)
            except AttributeError:
                pass
        if c.push_handler is self._push:
            c.push_handler = self._prev
        c._cache = None
        for i in range(c._cap):  # fills in flight are dropped, and the client keeps no reference to the cache
            if c._conv[i] is self._reply:
                c._conv[i] = None
        conn = self._conn
        self._conn = None
        self.flush()
        if conn is not None and c._conn is conn:
            c.command(b"CLIENT", b"TRACKING", b"OFF").wait()
