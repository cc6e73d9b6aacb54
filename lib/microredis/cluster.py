"""Cluster: a Client whose every command goes to the primary that owns its key's slot (CRC16, {hash tags}, MOVED/ASK)."""
# Built on the library's extension points only: each node is reached through its own ConnectionHandler (configured
# by replaying the settings given to the Cluster: auth(), timeout(), memory(), ...) and a CoreClient from its
# connect(); the catalogue mixins need only _cmd(), which ClusterClient implements by routing. A routed command's
# future (Routed) wraps the node client's future: when that one answers MOVED or ASK the command is sent again to the
# node named there, and the same Routed then resolves to the reply of that node. The slot map is a sorted table of
# ranges (three small arrays), not a 16384-entry list. Loaded only by mr.Cluster (package-cluster.json).

from array import array

from .errors import ConnectionError, RedisError, ReplyError, TimeoutError, optional, text
from .connection import ConnectionHandler
from .client import CoreClient, Future, ok, _claim, _emit, _SET3
from .encoder import check
from .commands import Catalogue

from .clock import sleep_ms as _sleep_ms  # time.sleep_ms where the port has it, else time.sleep

SLOTS = 16384
MAX_REDIRECTS = 5  # MOVED/ASK/TRYAGAIN followed per command before its error is raised
_REFRESH_MS = 500  # a full re-read of the map after repeated MOVEDs or a lost node, at most this often


def _table():
    # CRC16-XMODEM (poly 0x1021, init 0), one entry per byte value: 512 bytes
    t = array("H", bytes(512))
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t[i] = c & 0xFFFF
    return t


_T = _table()


def crc16(buf, start=0, end=-1):
    """CRC16-XMODEM of buf[start:end] (bytes, bytearray or memoryview; end -1: its end), as Redis Cluster uses."""
    if end < 0:
        end = len(buf)
    t = _T
    c = 0
    while start < end:
        c = ((c << 8) & 0xFFFF) ^ t[((c >> 8) ^ buf[start]) & 0xFF]
        start += 1
    return c


def key_slot(key):
    """The cluster slot (0..16383) of a key: CRC16 of its {hash tag} if it has a non-empty one, else of the key."""
    t = type(key)
    if t is str:
        key = key.encode()
    elif t is int or t is float:
        key = repr(key).encode()
    elif t is not bytes and t is not bytearray and t is not memoryview:
        check(key)  # (TypeError for what cannot be a key)
        key = str(key).encode()  # (an int or str subclass)
    n = len(key)
    s = 0
    while s < n and key[s] != 123:  # {
        s += 1
    if s < n:
        e = s + 1
        while e < n and key[e] != 125:  # }
            e += 1
        if e < n and e > s + 1:
            return crc16(key, s + 1, e) & 0x3FFF
    return crc16(key, 0, n) & 0x3FFF


# Where a command's keys are (the first argument after the name unless listed here: its name, then the code as one
# character, 48 + code; one string costs a board less RAM than a dict of names): 0 none (any node answers), 2 every
# argument, 3 every other one (MSET), 4 the first two, 5 all but the last (a timeout), 6 a count at index 2 and that
# many keys after it (EVAL), 7 the same plus the key at index 1 (ZUNIONSTORE), 8 a count at index 1 and the keys
# after it, 9 after STREAMS (XREAD: half of what follows), 10 the argument at index 2 (OBJECT ENCODING key)
_WHERE = (" "
          "PING0 ECHO0 TIME0 INFO0 DBSIZE0 FLUSHDB0 FLUSHALL0 SCAN0 KEYS0 RANDOMKEY0 PUBLISH0 BGSAVE0 CLUSTER0 "
          "CONFIG0 SCRIPT0 FUNCTION0 CLIENT0 COMMAND0 ACL0 LASTSAVE0 ROLE0 READONLY0 READWRITE0 WAIT0 SAVE0 "
          "PUBSUB0 SELECT0 UNWATCH0 DEBUG0 SLOWLOG0 LATENCY0 MULTI0 EXEC0 DISCARD0 MGET2 DEL2 UNLINK2 EXISTS2 "
          "TOUCH2 WATCH2 SDIFF2 SINTER2 SUNION2 SDIFFSTORE2 SINTERSTORE2 SUNIONSTORE2 PFCOUNT2 PFMERGE2 "
          "RENAME2 RENAMENX2 MSET3 MSETNX3 SMOVE4 LMOVE4 RPOPLPUSH4 BRPOPLPUSH4 BLMOVE4 COPY4 BLPOP5 BRPOP5 "
          "BZPOPMIN5 BZPOPMAX5 EVAL6 EVALSHA6 EVAL_RO6 EVALSHA_RO6 FCALL6 FCALL_RO6 BLMPOP6 BZMPOP6 "
          "ZUNIONSTORE7 ZINTERSTORE7 ZDIFFSTORE7 ZUNION8 ZINTER8 ZDIFF8 SINTERCARD8 LMPOP8 ZMPOP8 XREAD9 "
          "XREADGROUP9 OBJECT: MEMORY: XINFO: XGROUP: ")


def _name(a):
    t = type(a)
    if t is str:
        return a.upper()
    if t is bytes or t is bytearray or t is memoryview:
        return bytes(a).decode().upper()
    return ""


def _where(nm):
    # the code of a command name in _WHERE (1 when not listed): the entry " <nm><code>", code a digit or ":"
    i = 0
    n = len(nm)
    while nm:
        i = _WHERE.find(nm, i + 1)
        if i < 0:
            break
        c = ord(_WHERE[i + n])
        if _WHERE[i - 1] == " " and 48 <= c <= 58:
            return c - 48
    return 1


_CODE = {}  # command name (bytes or str) -> its code in _WHERE, for the names routed last


def _same(slot, key, first):
    # the slot shared by every key so far (-1: none yet); ValueError naming hash tags when this key's differs
    s = slot_of(key)
    if slot >= 0 and s != slot:
        raise ValueError(text("CROSSSLOT", first, key))
    return s


def command_slot(args):
    """The slot of a command (a sequence of arguments, its name first): that of its keys, which must all map to one
    slot (ValueError naming hash tags otherwise); -1 for a command without keys (any node answers it)."""
    n = len(args)
    if n < 2:
        return -1
    w = _code(args[0])
    if w == 1:
        return slot_of(args[1])
    if w == 0:
        return -1
    return _keys_slot(args, n, w)


def _code(a):
    # the code of command name a (_WHERE), remembered for bytes and str names
    t = type(a)
    if t is not bytes and t is not str:
        return _where(_name(a))
    w = _CODE.get(a, -1)
    if w < 0:
        w = _where(_name(a))
        if len(_CODE) >= 32:
            _CODE.clear()
        _CODE[a] = w
    return w


def _keys_slot(args, n, w):
    # command_slot() of a command whose keys are not just its first argument
    a = 1
    b = n
    step = 1
    if w == 3:
        step = 2
    elif w == 4:
        b = 3 if n > 3 else n
    elif w == 5:
        b = n - 1
    elif w == 6 or w == 7 or w == 8:
        k = 2 if w != 8 else 1
        if n <= k:
            return -1
        a = k + 1
        b = a + int(args[k])
        if b > n:
            b = n
        if w == 7:
            s = _same(-1, args[1], args[1])
            for i in range(a, b):
                s = _same(s, args[i], args[1])
            return s
    elif w == 9:
        a = 1
        while a < n and _name(args[a]) != "STREAMS":
            a += 1
        a += 1
        b = a + (n - a) // 2
    elif w == 10:
        a = 2
        b = 3 if n > 2 else 2
    s = -1
    first = None
    i = a
    while i < b:
        if first is None:
            first = args[i]
        s = _same(s, args[i], first)
        i += step
    return s


def _has(b, k):
    # k in bytearray b (MicroPython's bytearray has no `in` for an int)
    for x in b:
        if x == k:
            return True
    return False


def _s(v):
    # a name or address from the wire as str ("" for what is none)
    t = type(v)
    return v if t is str else v.decode() if t is bytes else ""


def _get(d, name):
    # a field of a CLUSTER SHARDS map: a dict (RESP3) or a flat [name, value, ...] list (RESP2); None if absent
    if type(d) is dict:
        for k in d:
            if _s(k) == name:
                return d[k]
    elif type(d) is list:
        for i in range(0, len(d) - 1, 2):
            if _s(d[i]) == name:
                return d[i + 1]
    return None


def parse_map(reply, host, tls=False):
    """[(start, end, (host, port)), ...] sorted, from a CLUSTER SHARDS reply (Redis 7+, Valkey: each shard's slot
    ranges and its primary's endpoint, else ip, and port; tls: its tls-port where it has one) or a CLUSTER SLOTS one
    (Redis 6); None unless it covers all 16384 slots exactly once (an empty or partial map is never adopted). host:
    the address asked, for a node that does not know its own ("" or "?")."""
    if type(reply) is not list or not reply:
        return None
    out = []
    for e in reply:
        h = p = None
        if type(e) is list and e and type(e[0]) is int:
            # SLOTS: [start, end, [host, port, id, ...], replicas...]
            sl = e[:2]
            n = e[2] if len(e) > 2 else None
            if type(n) is list and len(n) > 1:
                h = _s(n[0])
                p = n[1]
        else:
            sl = _get(e, "slots")
            ns = _get(e, "nodes")
            for n in ns if type(ns) is list else ():
                if _s(_get(n, "role")) == "master":
                    h = _s(_get(n, "endpoint"))
                    if not h or h == "?":
                        h = _s(_get(n, "ip"))
                    p = (tls and _get(n, "tls-port")) or _get(n, "port") or _get(n, "tls-port")
            if sl == []:
                continue  # a shard without slots
        if type(p) is not int or type(sl) is not list or len(sl) & 1:
            return None  # (slots without a primary: a map being changed)
        if not h or h == "?":
            h = host
        for i in range(0, len(sl), 2):
            if type(sl[i]) is not int or type(sl[i + 1]) is not int:
                return None
            out.append((sl[i], sl[i + 1], (h, p)))
    out.sort()
    nxt = 0
    for lo, hi, _ in out:
        if lo != nxt or hi < lo or hi >= SLOTS:
            return None
        nxt = hi + 1
    return out if nxt == SLOTS else None


# ---- the routed hot path ---------------------------------------------------------------------------------------
# A routed command costs the plain client's command plus: its key's slot (a dict of the keys routed last: no CRC for
# a key seen before), its node's client (the one of the slot routed last, while the map and the connections are
# unchanged: no lookup), and a pooled Routed. No function of it binds an exception name, has a try with more than
# two locals, or more than 11 words of state: MicroPython would take such a frame from the heap on every call
# (bench/hot/README.md), and a routed command would then cost more transient heap than the plain one
# (bench/hot/cluster.py measures both).
_type = type
_bytes = bytes
_str = str

_SLOT_OF = {}  # key (bytes or str) -> slot, for the keys routed last
_KEEP = 16  # at most this many (then it starts again)


def slot_of(key):
    """key_slot(key), remembered for bytes and str keys (the last 16 or so)."""
    t = _type(key)
    if t is not _bytes and t is not _str:
        return key_slot(key)
    s = _SLOT_OF.get(key, -1)
    if s < 0:
        s = key_slot(key)
        if len(_SLOT_OF) >= _KEEP:
            _SLOT_OF.clear()
        _SLOT_OF[key] = s
    return s


class _Node(CoreClient):
    """A node's client: a CoreClient that keeps the error reply its last wait() raised (`error`), for the Routed
    that waited it (its handler binds no exception name), and the node's number (`node`)."""

    error = None
    node = -1

    def _seen_error(self, v):
        CoreClient._seen_error(self, v)
        self.error = v


_SPENT = Future(None)  # what a waited Routed holds: a free future (ready; a second wait() raises InvalidFuture)
_AGAIN = object()  # _step(): the command was sent again (a redirect); wait for its new future

# Routed._op: which node-client method sends it (the core's hot commands keep their own, allocation-free path)
_CMD = 0
_SET = 1
_GET = 2
_INTO = 3
_INCR = 4
_PUB = 5


class Routed:
    """The future of a command sent through a ClusterClient: ready(), wait() as a Future's. wait() hands the value
    over once (the object is then reused for a later command, so do not keep it)."""

    def __init__(self, cc):
        self._cc = cc
        self._f = _SPENT  # the node client's future of the command as last sent
        self._c = None  # the node client it was sent on
        self._slot = -1
        self._op = 0
        self._a = None
        self._b = None
        self._conv = None  # (_CMD)
        self._extra = 0
        self._n = 0  # redirects followed
        self._t0 = 0  # when the first was (TRYAGAIN's pauses stay inside one command deadline from it)
        self._done = False  # ready() took the outcome (in _value)
        self._value = None

    def ready(self):
        return self._cc._ready(self)

    def wait(self):
        if self._done:
            return _taken(self)
        try:
            v = self._f.wait()
        except ReplyError:
            if _redirected(self):
                return _rewait(self)
            raise
        except RedisError:
            _failed(self)
            raise
        _back(self)
        return v

    def __repr__(self):
        return "<Routed slot %d node %d>" % (self._slot, self._c.node if self._c is not None else -1)


def _sent(cc, f, op, a, b):
    # a Routed (pooled) for future f of the node client last routed to
    n = cc._nfree
    if n:
        n -= 1
        r = cc._free[n]
        cc._nfree = n
    else:
        r = Routed(cc)
    r._f = f
    r._c = cc._nc
    r._slot = cc._s
    r._op = op
    r._a = a
    r._b = b
    return r


def _back(r):
    # a waited Routed goes back to the pool
    r._f = _SPENT
    r._a = None
    r._b = None
    cc = r._cc
    n = cc._nfree
    if n < _POOL:
        cc._free[n] = r
        cc._nfree = n + 1


_POOL = 16


def _node(cc, key):
    # the client of the node that owns key's slot
    t = _type(key)
    s = _SLOT_OF.get(key, -1) if t is _bytes or t is _str else -1
    if s < 0:
        s = slot_of(key)
    if s != cc._s or cc._ver != cc._cl._ver:
        return cc._at(s)
    c = cc._nc
    if c._conn is None:
        return cc._at(s)  # (broken since: dropped, the map read again, dialed again)
    return c


def _cmd_node(cc, args):
    # the client of the node a catalogue command goes to: its keys' slot's owner, else any (the one used last)
    s = command_slot(args)
    if s < 0:
        c = cc._dial(cc._cl._any(), -1)
        cc._s = -1
        cc._nc = c
        return c
    if s != cc._s or cc._ver != cc._cl._ver:
        return cc._at(s)
    c = cc._nc
    if c._conn is None:
        return cc._at(s)
    return c


def _cmd_full(cc, conv, args, into, extra_ms):
    r = _sent(cc, _cmd_node(cc, args)._cmd(conv, args, into, extra_ms), _CMD, args, into)
    r._conv = conv
    r._extra = extra_ms
    return r


def _cmd_sent(cc, f, args, conv):
    r = _sent(cc, f, _CMD, args, None)
    r._conv = conv
    r._extra = 0
    return r


def _set(cc, key, value):
    if _type(value) is not _bytes:
        check(value)
    c = _node(cc, key)
    _claim(c, ok, None, _SET3, key)
    return _sent(cc, _emit(c, value), _SET, key, value)


# ---- the rare paths of a routed wait (MicroPython may take their frames from the heap) ------------------------------
def _redirected(r):
    # wait() got an error reply: True if it was MOVED, ASK, ... and the command was sent again; else r is released
    # (its error raised)
    e = r._c.error  # (the reply just raised: _Node keeps it)
    r._c.error = None
    if e is not None and r._cc._redirect(r, e):
        return True
    r._n = 0
    _back(r)
    return False


def _failed(r):
    # wait() raised a RedisError that is no error reply: the node's connection failed (the map is read again from
    # another node), or the Routed was waited already
    if r._f is _SPENT:
        return
    c = r._c
    if c._conn is None:
        r._cc._cl._lost(c.node, _error_of(r._f))
    r._n = 0
    _back(r)


def _error_of(f):
    # a failed future's error (a broken one raises it again on every wait())
    try:
        f.wait()
    except RedisError as e:
        return e
    return ConnectionError("connection lost")


def _rewait(r):
    # the command was sent again: wait until a node answers it, following more redirects
    cc = r._cc
    try:
        v = cc._step(r)
        while v is _AGAIN:
            v = cc._step(r)
    finally:
        r._n = 0
        _back(r)
    return v


def _taken(r):
    # wait() after ready() took the outcome
    v = r._value
    r._value = None
    r._done = False
    r._n = 0
    _back(r)
    if isinstance(v, Exception):
        raise v
    return v


class ClusterClient(Catalogue):
    """The command catalogue of Client, each command sent to the primary that owns its key's slot."""

    def __init__(self, cluster):
        self._cl = cluster
        self._batch = 0  # open pipeline() blocks
        self._piped = []  # node clients whose pipeline() block this client opened (the current batch)
        self._free = [None] * _POOL  # waited Routed futures, reused
        self._nfree = 0
        self._pipe = _Batch(self)
        self._ssub = None  # the sharded subscription (cluster_pubsub.py), made by the first ssubscribe()
        # the slot routed last, its node's client, and the cluster's _ver then (the map and connections as they were)
        self._s = -1
        self._nc = None
        self._ver = -1

    # ---- the catalogue's one entry, and the core's hot commands ----------------------------------------------
    def _cmd(self, conv, args, into=None, extra_ms=0):
        # (the node client checks every argument before anything is sent; a key that cannot be one fails here)
        if into is None and extra_ms == 0:
            return _cmd_sent(self, _cmd_node(self, args)._cmd(conv, args), args, conv)
        return _cmd_full(self, conv, args, into, extra_ms)  # (a frame of its own: this one stays small)

    def set(self, key, value, ex=None, px=None, nx=False, xx=False, keepttl=False, get=False, exat=None, pxat=None):
        if ex is None and px is None and exat is None and pxat is None and not (nx or xx or keepttl or get):
            return _set(self, key, value)
        return self._set_opts(key, value, ex, px, nx, xx, keepttl, get, exat, pxat)

    def _set_opts(self, key, value, ex, px, nx, xx, keepttl, get, exat, pxat):
        # (a method of its own: set()'s frame stays the plain client's size)
        from .setopts import set_args
        return self._cmd(None if get else ok, set_args(key, value, ex, px, nx, xx, keepttl, get, exat, pxat))

    def get(self, key):
        c = _node(self, key)
        return _sent(self, c.get(key), _GET, key, None)

    def get_into(self, key, buffer):
        """GET whose value is copied into `buffer`; wait() gives the length, or None for a missing key."""
        c = _node(self, key)
        return _sent(self, c.get_into(key, buffer), _INTO, key, buffer)

    def incr(self, key):
        c = _node(self, key)
        return _sent(self, c.incr(key), _INCR, key, None)

    def publish(self, channel, message):
        check(channel)
        check(message)
        return self._route(_PUB, -1, None, channel, message, 0)

    def command(self, *args):
        """Any command, routed by its keys (the first argument after the name, or as the command is known to take
        them); returns a future of the raw reply."""
        if not args:
            raise ValueError(text("command"))
        from .client import _refuse
        _refuse(args)
        return self._cmd(None, args)

    # ---- pub/sub: classic on any node, sharded on the channel's slot owner --------------------------------------
    def subscribe(self, *channels):
        return self._cl._client(self._cl._any()).subscribe(*channels)

    def psubscribe(self, *patterns):
        return self._cl._client(self._cl._any()).psubscribe(*patterns)

    def ssubscribe(self, *channels):
        """Sharded channels, all in one slot (one {hash tag}): this client's ShardedSubscription
        (cluster_pubsub.py) on the connection of the slot's owner, followed when the slot moves."""
        s = self._ssub
        if s is None or not s.active:
            slot = -1
            for ch in channels:
                slot = _same(slot, ch, channels[0])  # (ValueError before anything is made)
            if slot < 0:
                raise ValueError(text("_need"))
            s = self._ssub = optional("cluster_pubsub").ShardedSubscription(self._cl, slot, self._cl._clock)
        return s.ssubscribe(*channels)

    # ---- batching ----------------------------------------------------------------------------------------------
    def pipeline(self):
        """`with client.pipeline():` each node's commands of the block go out in one write at its end."""
        return self._pipe

    def flush(self):
        for c in self._cl._open():
            c.flush()

    def close(self):
        """Reads what is pending on every node and closes the connections (cl.connect() opens them again)."""
        self._cl.close()

    def __enter__(self):
        return self

    def __exit__(self, a, b, c):
        self.close()
        return False

    # ---- routing ------------------------------------------------------------------------------------------------
    def _at(self, slot):
        # the client of the node that owns slot, dialed if need be (one that cannot be: the map is read again from
        # another node, and the owner it names is dialed), kept as the one routed last
        cl = self._cl
        node = cl._owner(slot)
        c = cl._connected(node)
        if c is None:
            c = self._dial(node, slot)
        elif self._batch and c not in self._piped:
            c.pipeline().__enter__()
            self._piped.append(c)
        self._s = slot
        self._nc = c
        self._ver = cl._ver
        return c

    def _dial(self, node, slot):
        # node's client, connected (dialed) and in this client's pipeline() block if one is open. A node that cannot
        # be dialed (nothing was sent): the map is read again from another node and the slot's owner there is dialed.
        cl = self._cl
        try:
            return self._node_client(node)
        except (ConnectionError, TimeoutError) as e:  # (a node that accepts and never answers: the handshake's)
            cl._lost(node, e)
            node2 = cl._owner(slot) if slot >= 0 else cl._any()
            if node2 == node:
                raise
            return self._node_client(node2)

    def _route(self, op, slot, conv, a, b, extra):
        # a command without keys (any node: the one used last) or sent the general way
        cl = self._cl
        node = cl._owner(slot) if slot >= 0 else cl._any()
        c = self._dial(node, slot)
        try:
            f = self._emit(c, op, conv, a, b, extra, False)
        except (ConnectionError, TimeoutError) as e:
            cl._lost(c.node, e)
            raise
        r = _sent(self, f, op, a, b)
        r._c = c
        r._slot = slot
        r._conv = conv
        r._extra = extra
        return r

    def _send(self, r, node, asking):
        # sends r's command again to node (ASKING first when asked to; dialing it). A send that fails is not
        # repeated (the node may have taken the command): its error is raised, after the map was read again for
        # the next commands.
        c = self._dial(node, r._slot)
        if c.node != node:
            asking = False  # (another node: the one the map names now)
        try:
            r._f = self._emit(c, r._op, r._conv, r._a, r._b, r._extra, asking)
        except (ConnectionError, TimeoutError) as e:
            self._cl._lost(c.node, e)
            raise
        r._c = c

    def _node_client(self, node):
        c = self._cl._client(node)
        if self._batch and c not in self._piped:
            c.pipeline().__enter__()
            self._piped.append(c)
        return c

    def _emit(self, c, op, conv, a, b, extra, asking):
        if asking:
            # ASKING holds for the next command of this connection only: both go out in one write
            with c.pipeline():
                fa = c._cmd(None, (b"ASKING",))
                f = self._emit(c, op, conv, a, b, extra, False)
            fa.wait()
            return f
        if op == _SET:
            return c.set(a, b)
        if op == _GET:
            return c.get(a)
        if op == _INCR:
            return c.incr(a)
        if op == _INTO:
            return c.get_into(a, b)
        if op == _PUB:
            return c.publish(a, b)
        return c._cmd(conv, a, b, extra)

    def _step(self, r):
        # waits r's node future once: its value, or _AGAIN when a redirect sent the command again; raises its error
        f = r._f
        try:
            return f.wait()
        except ReplyError as e:
            r._c.error = None
            if self._redirect(r, e):
                return _AGAIN
            raise
        except (ConnectionError, TimeoutError) as e:
            if r._c._conn is None:
                self._cl._lost(r._c.node, e)
            raise

    def _ready(self, r):
        if r._done or r._f is _SPENT:
            return True  # (waited already: wait() says so)
        while r._f.ready():
            try:
                v = self._step(r)
            except RedisError as e:
                v = e
            if v is not _AGAIN:
                r._value = v
                r._done = True
                return True
        return False

    def _redirect(self, r, e):
        # True if the error reply e moved r's command elsewhere (sent again there)
        code = e.code
        cl = self._cl
        if code != "MOVED" and code != "ASK" and code != "TRYAGAIN" and code != "CLUSTERDOWN" and code != "LOADING":
            return False
        if r._n >= MAX_REDIRECTS:
            return False
        if r._n == 0:
            r._t0 = cl._clock.ticks_ms()
        r._n += 1
        if code == "MOVED" or code == "ASK":
            node = cl._moved_to(e, r._c.node)
            if node < 0:
                return False
            self._send(r, node, code == "ASK")
            return True
        # TRYAGAIN (keys of a multi-key command split by a migration), CLUSTERDOWN, LOADING: a pause, doubling,
        # inside one command deadline from the first redirect
        ms = 10 << r._n
        left = cl._left(r._t0)
        if left >= 0 and left < ms:
            return False
        _sleep_ms(ms)
        if code == "CLUSTERDOWN":
            cl._stale()
        self._send(r, cl._owner(r._slot) if r._slot >= 0 else r._c.node, False)
        return True


class _Batch:
    # `with cc.pipeline():` opens a pipeline() block on each node client the block sends to, and ends them all
    def __init__(self, cc):
        self._cc = cc

    def __enter__(self):
        cc = self._cc
        cc._batch += 1
        cc._s = -1  # (the next command of each node goes the way that opens its block)
        return cc

    def __exit__(self, a, b, c):
        cc = self._cc
        cc._batch -= 1
        if cc._batch == 0:
            piped = cc._piped
            cc._piped = []
            for n in piped:
                n.pipeline().__exit__(None, None, None)
        return False


class SlotHandler:
    """cl.handler_for(key): a ConnectionHandler as the Outbox and the Inbox use one, for the primary that owns key's
    slot now. connect() gives the Cluster's client of that node (its one connection there); failed(e) tells the
    Cluster what an error of that connection says: MOVED patches the map (the next connect() reaches the new owner,
    a new connection: a new session), a lost node has the map read again from another node."""

    def __init__(self, cluster, key):
        self._cl = cluster
        self._slot = key_slot(key)
        self._node = -1  # the node connect() gave last
        self._clock = cluster._start(None, None)

    @property
    def retry_policy(self):
        # (the Outbox's hook) the nodes' handlers re-dial by themselves: cl.retry() was set
        return True if self._cl._retrying else None

    def connect(self, stack=None, clock=None, client=None):
        """The slot owner's CoreClient (the map read first when there is none; ConnectionError if none is whole)."""
        cl = self._cl
        cl._start(stack, clock)
        if not len(cl._lo):
            cl.refresh()
        k = self._node = cl._owner(self._slot)
        return cl._client(k)

    def disconnect(self):
        if self._node >= 0:
            self._cl._drop(self._node)

    def failed(self, e):
        """An error of a command or a dial on the node connect() gave: MOVED patches the map; CLUSTERDOWN, a lost
        or silent node have it read again (at most every 500 ms). ASK and TRYAGAIN change nothing (a migration
        under way: the Outbox waits its backoff)."""
        k = self._node
        if k < 0:
            return
        cl = self._cl
        try:
            if isinstance(e, ReplyError):
                if e.code == "MOVED":
                    cl._moved_to(e, k)
                elif e.code == "CLUSTERDOWN":
                    cl._stale()
            elif isinstance(e, (ConnectionError, TimeoutError, OSError)):
                cl._lost(k, e)
        except RedisError:
            pass  # (no whole map anywhere: the next dial tries again)

    def __repr__(self):
        return "<SlotHandler slot %d>" % self._slot


class Cluster:
    """Cluster([(host, port), ...], protocol=3, max_connections=4): the startup nodes (any one that answers is
    enough) and the ConnectionHandler settings for every node (auth(), timeout(), memory(), tls(), retry(),
    health_check(), client_name(), decode_responses(), use_ping(): chainable). connect() -> ClusterClient."""

    def __init__(self, startup_nodes, protocol=3, max_connections=4):
        startup = list(startup_nodes)
        if not startup:
            raise ValueError(text("startup_nodes"))
        if type(max_connections) is not int or max_connections < 1:
            raise ValueError(text("max_connections"))
        for a in startup:
            ConnectionHandler(a, protocol)  # (TypeError/ValueError for a bad address, before anything is dialed)
        self.protocol = protocol
        self.max_connections = max_connections
        self._startup = startup
        self._settings = []  # (method name, arguments, keywords): replayed on each node's handler
        self._check = ConnectionHandler(startup[0], protocol)  # settings are tried here first: errors come at once
        self._timeout_ms = 5000
        self._addrs = []  # every address met (startup nodes, map entries, redirects): index = node number
        self._handlers = []  # per node: its ConnectionHandler, made on first use
        self._clients = []  # per node: its CoreClient while connected
        self._used = []  # per node: when it was last used (a count), to close the least recent past the cap
        self._pins = bytearray()  # per node: sharded subscriptions on its connection
        self._uses = 0
        self._lo = array("H")  # the slot map: ranges _lo[k].._hi[k] owned by node _own[k], sorted
        self._hi = array("H")
        self._own = bytearray()
        self._last = -1  # the node used last: keyless commands go there (no connection more)
        self._bad = -1  # the node that failed last: asked for the map last
        self._shards = True  # the map from CLUSTER SHARDS (False: CLUSTER SLOTS, the server had no SHARDS)
        self._tls = False
        self._retrying = False  # retry() was set (a ShardedSubscription then rides through a lost node: _rides())
        self._hc = 0  # health_check()'s interval (a ShardedSubscription PINGs a quiet node after it: _hc_ms())
        self._ver = 0  # changes with the map and the connections (a ClusterClient's kept node client is then stale)
        self._moves = 0  # MOVEDs since the map was last read whole
        self._read_at = None  # when it was
        self._stack = None
        self._clock = None
        self.redirects = 0  # MOVED and ASK followed
        self.refreshes = 0  # slot maps read
        self.last_error = None  # why the last node that failed did
        for a in startup:
            self._index(a)

    # ---- the handler's settings, chainable ----------------------------------------------------------------------
    def _set(self, name, a, kw):
        getattr(self._check, name)(*a, **kw)
        self._settings.append((name, a, kw))
        for h in self._handlers:
            if h is not None:
                getattr(h, name)(*a, **kw)
        return self

    def auth(self, credentials):
        return self._set("auth", (credentials,), {})

    def timeout(self, ms):
        self._set("timeout", (ms,), {})
        self._timeout_ms = ms
        return self

    def memory(self, params):
        return self._set("memory", (params,), {})

    def tls(self, context=True, server_hostname=None):
        self._set("tls", (context, server_hostname), {})
        self._tls = bool(context)
        return self

    def retry(self, *a, **kw):
        self._set("retry", a, kw)
        self._retrying = True
        return self

    def health_check(self, interval_ms):
        self._set("health_check", (interval_ms,), {})
        self._hc = interval_ms
        return self

    def client_name(self, name):
        return self._set("client_name", (name,), {})

    def decode_responses(self, on=True):
        return self._set("decode_responses", (on,), {})

    def use_ping(self, on=True):
        return self._set("use_ping", (on,), {})

    # ---- connecting -------------------------------------------------------------------------------------------
    def connect(self, stack=None, clock=None):
        """A ClusterClient; reads the slot map first (ConnectionError if no node gives a whole one)."""
        self._start(stack, clock)
        if not len(self._lo):
            self.refresh()
        return ClusterClient(self)

    def handler_for(self, key):
        """What an Outbox or an Inbox takes for a handler (mr.Outbox(cl, stream) asks for it): the handler of
        whichever primary owns key's slot (SlotHandler)."""
        return SlotHandler(self, key)

    def _start(self, stack, clock):
        # the stack and clock every node's connection uses (the default clock unless given); returns the clock
        if clock is None:
            clock = self._clock
            if clock is None:
                from .clock import default_clock
                clock = default_clock()
        self._clock = clock
        if stack is not None:
            self._stack = stack
        return clock

    def close(self):
        for i in range(len(self._clients)):
            self._drop(i)

    @property
    def nodes(self):
        """The primaries of the current map: [(host, port), ...]."""
        out = []
        for k in self._own:
            a = self._addrs[k]
            if a not in out:
                out.append(a)
        return out

    def slot_owner(self, slot):
        """(host, port) of the primary that owns slot in the current map."""
        return self._addrs[self._owner(slot)]

    def ranges(self):
        """The map as [(start, end, (host, port)), ...]."""
        return [(self._lo[k], self._hi[k], self._addrs[self._own[k]]) for k in range(len(self._own))]

    def refresh(self, avoid=-1):
        """Reads the slot map (CLUSTER SHARDS, or CLUSTER SLOTS where the server has no SHARDS: Redis 6) from the
        first node that gives a whole one: the map's primaries first, then the startup nodes, `avoid` (a node
        number; default the node that failed last) at the end. ConnectionError when none does."""
        if avoid < 0:
            avoid = self._bad
        order = []
        for k in self._own:
            if k not in order and k != avoid:
                order.append(k)
        for a in self._startup:
            k = self._index(a)
            if k not in order and k != avoid:
                order.append(k)
        if avoid >= 0:
            order.append(avoid)
        for k in order:
            host = self._addrs[k][0]
            try:
                c = self._client(k)
                m = None
                if self._shards:
                    try:
                        m = parse_map(c._cmd(None, (b"CLUSTER", b"SHARDS")).wait(), host, self._tls)
                    except ReplyError:
                        self._shards = False  # Redis 6: CLUSTER SLOTS from now on
                if not self._shards:
                    m = parse_map(c._cmd(None, (b"CLUSTER", b"SLOTS")).wait(), host)
            except ReplyError as e:
                self.last_error = e  # e.g. a server without cluster support
                continue
            except RedisError as e:
                self.last_error = e
                self._lost(k, e, False)
                continue
            if m is None:
                self.last_error = ConnectionError(text("partial", self._addrs[k][0], self._addrs[k][1]))
                continue
            self._adopt(m)
            return
        raise ConnectionError(text("refresh", len(order), self.last_error))

    def _adopt(self, m):
        self._build([(a, b, self._index(addr)) for a, b, addr in m])
        own = self._own
        self._moves = 0
        self._read_at = self._clock.ticks_ms()
        self.refreshes += 1
        # connections to nodes that own no slot (startup nodes that are replicas, former primaries) are closed
        for k in range(len(self._clients)):
            if self._clients[k] is not None and not _has(own, k) and not self._pins[k]:
                self._drop(k)

    def _index(self, addr):
        # the node number of an address (added when new)
        try:
            return self._addrs.index(addr)
        except ValueError:
            pass
        if len(self._addrs) >= 255:
            raise ConnectionError(text("nodes"))
        self._addrs.append(addr)
        self._handlers.append(None)
        self._clients.append(None)
        self._used.append(0)
        self._pins.append(0)
        return len(self._addrs) - 1

    def _owner(self, slot):
        # the node number owning slot (binary search over the ranges)
        lo = self._lo
        a = 0
        b = len(lo)
        while b - a > 1:
            m = (a + b) >> 1
            if lo[m] <= slot:
                a = m
            else:
                b = m
        return self._own[a]

    def _any(self):
        # a node for a command without keys: the one used last, else the owner of slot 0
        k = self._last
        if k >= 0 and self._clients[k] is not None:
            return k
        for k in range(len(self._clients)):
            if self._clients[k] is not None and _has(self._own, k):
                return k
        return self._own[0]

    def _open(self):
        return [c for c in self._clients if c is not None]

    def _connected(self, k):
        # node k's client if it is connected (counted as used), else None
        c = self._clients[k]
        if c is None or c._conn is None:
            return None
        self._uses += 1
        self._used[k] = self._uses
        self._last = k
        return c

    def _client(self, k):
        # node k's CoreClient, connected on first use; past max_connections the least recently used one is closed
        self._uses += 1
        self._used[k] = self._uses
        self._last = k
        c = self._clients[k]
        if c is not None:
            if c._conn is not None or c._retry is not None:
                return c  # (with retry() a broken one re-dials by itself)
            self._drop(k)  # broken: dialed again
        n = 0
        old = -1
        for i in range(len(self._clients)):
            if self._clients[i] is not None:
                n += 1
                # the least recently used, one without a sharded subscription before one with
                if old < 0 or (self._pins[i] > 0) < (self._pins[old] > 0) or \
                        ((self._pins[i] > 0) == (self._pins[old] > 0) and self._used[i] < self._used[old]):
                    old = i
        if n >= self.max_connections:
            self._drop(old)
        h = self._handlers[k]
        if h is None:
            h = ConnectionHandler(self._addrs[k], self.protocol)
            for name, a, kw in self._settings:
                getattr(h, name)(*a, **kw)
            self._handlers[k] = h
        c = h.connect(self._stack, self._clock, _Node)
        c.node = k
        self._clients[k] = c
        self._ver += 1
        return c

    def _drop(self, k):
        # closes node k's connection (its pending replies are read first if it still works)
        c = self._clients[k]
        self._clients[k] = None
        self._ver += 1
        if c is not None:
            try:
                c.close()
            except RedisError:
                pass
            self._handlers[k].disconnect()

    def _lost(self, k, e, again=True):
        # node k failed (a dial, a send or a read): its connection goes, and the map is read again from another
        # node (at most every _REFRESH_MS), so a promoted replica is found
        self.last_error = e
        self._bad = k
        self._drop(k)
        if again and self._due():
            try:
                self.refresh(k)
            except ConnectionError:
                pass  # the map stays as it was; the command's own error tells the caller

    def _stale(self):
        if self._due():
            try:
                self.refresh()
            except ConnectionError:
                pass

    def _due(self):
        t = self._read_at
        return t is None or self._clock.ticks_diff(self._clock.ticks_ms(), t) >= _REFRESH_MS

    def _left(self, t0):
        # ms left of a command's deadline counted from t0 (-1: no deadline)
        if not self._timeout_ms:
            return -1
        x = self._timeout_ms - self._clock.ticks_diff(self._clock.ticks_ms(), t0)
        return x if x > 0 else 0

    def _moved_to(self, e, k):
        # the node a MOVED or ASK reply e (from node k) names, -1 for another reply; MOVED patches the map
        p = e.message.split(" ")
        if (e.code != "MOVED" and e.code != "ASK") or len(p) != 3:
            return -1
        addr = p[2]
        i = addr.rfind(":")
        host = addr[:i]
        if not host:
            host = self._addrs[k][0]  # a node that does not know its own address
        node = self._index((host, int(addr[i + 1:])))
        self.redirects += 1
        if e.code == "MOVED":
            self._moved(int(p[1]), node)
        return node

    def _address(self, k):
        # (cluster_pubsub.py) node k's (host, port)
        return self._addrs[k]

    def _rides(self):
        # (cluster_pubsub.py) retry() was set
        return self._retrying

    def _hc_ms(self):
        # (cluster_pubsub.py) health_check()'s interval, 0 without
        return self._hc

    def _pin(self, k, d):
        # (cluster_pubsub.py) a sharded subscription is on node k's connection (d 1) or left it (d -1): that
        # connection is closed last when the cap needs room
        self._pins[k] += d

    def _moved(self, slot, k):
        # MOVED slot -> node k: that slot's entry is patched; after repeated MOVEDs the whole map is read again
        self._moves += 1
        if self._moves > 2 and self._due():
            try:
                self.refresh()
                return
            except ConnectionError:
                pass
        a = 0
        while self._hi[a] < slot:
            a += 1
        if self._own[a] == k:
            return
        lo = list(self._lo)
        hi = list(self._hi)
        own = list(self._own)
        s, e, o = lo[a], hi[a], own[a]
        new = []
        if s < slot:
            new.append((s, slot - 1, o))
        new.append((slot, slot, k))
        if slot < e:
            new.append((slot + 1, e, o))
        rows = [(lo[i], hi[i], own[i]) for i in range(a)] + new + \
            [(lo[i], hi[i], own[i]) for i in range(a + 1, len(lo))]
        self._build(rows)

    def _build(self, rows):
        # the map from sorted [(start, end, node), ...]: adjacent ranges of one node become one entry
        lo = array("H")
        hi = array("H")
        own = bytearray()
        n = 0
        for s, e, o in rows:
            if n and own[n - 1] == o and hi[n - 1] + 1 == s:
                hi[n - 1] = e
            else:
                lo.append(s)
                hi.append(e)
                own.append(o)
                n += 1
        self._lo = lo
        self._hi = hi
        self._own = own
        self._ver += 1

    def __repr__(self):
        return "Cluster(%r, %d ranges, %d nodes)" % (self._startup, len(self._own), len(self.nodes))
