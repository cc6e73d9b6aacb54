"""The command catalogue: Client, whose redis-py-named commands load by group on first use (strings.py ... streams.py)."""
# Each group of commands (strings, keys, hashes, lists, server, sets, sorted sets, streams) is a module of its own
# with a mixin that needs only self._cmd(conv, args) -> Future (conv: None for the reply as read, or a function of
# the reply). Catalogue, the base of every catalogue user (Client, a transaction, the cluster client), holds none of
# them: the first call of a method loads its group and makes every method of the group Catalogue's, so later calls
# find them as any method. A board pays RAM only for the groups it calls (set/get/incr/publish are the core's, and
# need none). Not a hot path: argument lists and converted replies allocate.

from sys import implementation as _implementation

from .client import CoreClient
from .errors import optional  # (an ImportError that names the package file to install)
from .client import ok

# (group module, its mixin classes, the names of their methods between spaces: bytes, so that no name is interned
# before its group loads)
_GROUPS = (
    ("strings", ("StringCommands",),
     b" mget mset incrby incrbyfloat decr decrby append strlen getdel getex getrange setrange setex psetex setnx "),
    ("keyspace", ("KeyCommands",),
     b" delete unlink exists _expire expire pexpire expireat pexpireat ttl pttl persist type rename scan scan_iter "),
    ("hashes", ("HashCommands",),
     b" hset hget hmget hgetall hdel hincrby hincrbyfloat hexists hlen hkeys hvals "),
    ("lists", ("ListCommands",),
     b" lpush rpush lpop rpop lrange llen ltrim lindex _bpop blpop brpop "),
    ("server", ("ServerCommands",),
     b" ping echo select time dbsize bgsave flushdb info fcall fcall_ro "),
    ("sets", ("SetCommands",),
     b" sadd srem smembers sismember scard "),
    ("zsets", ("SortedSetCommands",),
     b" zadd zrange zrem zscore zincrby zcard "),
    ("streams", ("StreamCommands", "StreamGroupCommands"),
     b" xadd xrange xrevrange xlen xtrim xread xreadgroup xack xdel xpending xpending_range xclaim xautoclaim"
     b" xgroup_create xgroup_destroy xgroup_createconsumer xgroup_delconsumer xgroup_setid xinfo_stream xinfo_groups"
     b" xinfo_consumers "),
)


def _group(name):
    # the group whose method `name` is, or None
    k = (" " + name + " ").encode()
    for g in _GROUPS:
        if k in g[2]:
            return g
    return None


class Catalogue:
    def __getattr__(self, name):
        # (only a name the instance and its classes lack gets here: a catalogue method not loaded yet)
        g = _group(name)
        if g is None:
            raise AttributeError(name)
        _load(g)
        if getattr(Catalogue, name, None) is None:
            raise AttributeError(name)  # (a name in the table that its group lacks: never a second load)
        return getattr(self, name)


def _load(g):
    # the group's module, whose methods become Catalogue's
    m = optional(g[0])
    for n in g[2].split():
        n = n.decode()
        for c in g[1]:
            f = getattr(getattr(m, c), n, None)
            if f is not None:
                setattr(Catalogue, n, f)
                break


if _implementation.name not in ("micropython", "circuitpython"):
    # CPython and the like: every group now, and no __getattr__. A class with one makes CPython take its slow
    # path for every attribute of every instance (slot_tp_getattr_hook: SET 8 %, 16 pipelined SETs 19 % slower
    # in bench/cp_bench.py), and RAM is no concern there; MicroPython asks __getattr__ only on a miss.
    for _g in _GROUPS:
        _load(_g)
    del Catalogue.__getattr__


def __getattr__(name):
    # the mixin classes by name (commands.StringCommands ...), from their group modules
    for g in _GROUPS:
        if name in g[1]:
            return getattr(optional(g[0]), name)
    raise AttributeError(name)


# What a transaction (transaction.py) can queue: the catalogue. It is passed to transaction.py, which cannot import
# this module (that would be an import cycle: this one loads it).
_CATALOGUE = (Catalogue,)


class MultiCommands:
    # transactions and scripts; their code loads with the first use (transaction.py, scripts.py)
    def transaction(self):
        """`with client.transaction() as t:` t.set(...), t.hgetall(...) ... queue commands and return results with
        ready()/wait(); MULTI, the commands and EXEC go out in one write when the block ends (README
        "Transactions")."""
        try:
            from .transaction import begin  # (optional() builds the module's name and a heap frame every time)
        except ImportError:
            begin = optional("transaction").begin  # raises the ImportError that names the package file to install
        return begin(self, _CATALOGUE)

    _watching = None  # the connection the last watch() went to (a transaction on another one is a WatchError)

    def watch(self, *keys):
        """WATCH -> True. It applies to the connection: the next EXEC on it (the next transaction) aborts with
        WatchError if a key changed; EXEC and unwatch() end it."""
        from .cmdargs import _need
        f = self._cmd(ok, ("WATCH",) + _need(keys))
        self._watching = self._conn
        return f

    def unwatch(self):
        self._watching = None
        return self._cmd(ok, ("UNWATCH",))

    def _watch_ended(self):
        # (transaction.py) EXEC ends the watch, whatever it answers
        self._watching = None

    def register_script(self, script):
        """A Script (scripts.py): script.run(keys, args) sends EVALSHA, and EVAL when the server lacks it."""
        return optional("scripts").Script(self, script)


class Client(CoreClient, Catalogue, MultiCommands):
    """The core client with the redis-py-named command catalogue."""
# pyright: reportAttributeAccessIssue=false
# (the mixins call self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
