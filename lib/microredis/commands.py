"""The command catalogue: redis-py names, argument shapes and typed replies on top of the core client."""
# Each method validates its options (TypeError/ValueError before anything is sent), builds the argument list and
# returns self._cmd(conv, args) -> Future; _cmd checks the type of every argument before it claims a reply slot.
# Not a hot path (argument lists and converted replies allocate); set/get/get_into/incr/publish live in the core.
# Command names are str constants: qstrs cost less RAM than bytes objects once imported (~5 KB over the catalogue).
# Each group of commands is a mixin that needs only self._cmd(conversion, args) -> Future (conversion: None for the
# reply as read, or a function of the reply); Client puts them on the core client. Sets, sorted sets and streams,
# and the argument and reply helpers, are in sets_streams.py; stream reads and consumer groups in xgroups.py, loaded
# by their first use (StreamGroupCommands).

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .client import CoreClient
from .errors import optional, text  # optional: transaction.py, scripts.py (package-tx.json), named when missing
from .sets_streams import SetCommands, SortedSetCommands, StreamCommands, ok, to_bool, to_dict, to_float
from .sets_streams import _int, _num, _many, _flat, _need

_DAY_MS = const(86400000)  # a blocking timeout longer than this disables the client deadline (ticks_diff range)


# Conversions raise on a reply of any other shape; the client turns that into the future's ProtocolError (the
# reply's slot is already released, so nothing else is affected).

def _true(v):
    # PING / BGSAVE status replies -> True, like redis-py (errors never reach a conversion)
    if type(v) is not bytes and type(v) is not str:
        raise TypeError(text("_true"))
    return True


def _two(v):
    if type(v) is not list or len(v) != 2:
        raise TypeError(text("_two"))
    return v


def _pair(v):
    # BLPOP / BRPOP: [key, value] -> (key, value); nil (timed out) -> None
    if v is None:
        return None
    _two(v)
    return (v[0], v[1])


def _scan(v):
    _two(v)
    if type(v[1]) is not list:
        raise TypeError(text("_scan"))
    return (_digits(v[0]), v[1])


def _time(v):
    _two(v)
    return (_digits(v[0]), _digits(v[1]))


def _digits(x):
    # int() of bytes/str only: int(3.5) or int(True) would hide a reply of the wrong type
    if type(x) is not bytes and type(x) is not str:
        raise TypeError(text("_digits"))
    return int(x)


class StringCommands:
    def mget(self, keys, *args):
        """MGET: a list of values (None for missing keys); keys is a key or a list of keys."""
        return self._cmd(None, ["MGET"] + _many(keys, "keys") + list(args))

    def mset(self, mapping):
        """MSET from a dict {key: value} -> True."""
        return self._cmd(ok, _flat(["MSET"], mapping, "mapping"))

    def incrby(self, key, amount=1):
        return self._cmd(None, ("INCRBY", key, _int(amount, "amount")))

    def incrbyfloat(self, key, amount=1.0):
        return self._cmd(to_float, ("INCRBYFLOAT", key, _num(amount, "amount")))

    def decr(self, key, amount=1):
        return self._cmd(None, ("DECRBY", key, _int(amount, "amount")))

    decrby = decr

    def append(self, key, value):
        return self._cmd(None, ("APPEND", key, value))

    def strlen(self, key):
        return self._cmd(None, ("STRLEN", key))

    def getdel(self, key):
        return self._cmd(None, ("GETDEL", key))

    def getex(self, key, ex=None, px=None, exat=None, pxat=None, persist=False):
        """GETEX: the value, setting (ex/px/exat/pxat) or removing (persist=True) its expiry; at most one option."""
        args = ["GETEX", key]
        for name, v in (("EX", ex), ("PX", px), ("EXAT", exat), ("PXAT", pxat)):
            if v is not None:
                args.append(name)
                args.append(_int(v, "expiry"))
        if persist:
            args.append("PERSIST")
        if len(args) > 4:
            raise ValueError(text("getex"))
        return self._cmd(None, args)

    def getrange(self, key, start, end):
        return self._cmd(None, ("GETRANGE", key, _int(start, "start"), _int(end, "end")))

    def setrange(self, key, offset, value):
        return self._cmd(None, ("SETRANGE", key, _int(offset, "offset"), value))

    def setex(self, key, time, value):
        return self._cmd(ok, ("SETEX", key, _int(time, "time"), value))

    def psetex(self, key, time_ms, value):
        return self._cmd(ok, ("PSETEX", key, _int(time_ms, "time_ms"), value))

    def setnx(self, key, value):
        return self._cmd(to_bool, ("SETNX", key, value))


class KeyCommands:
    def delete(self, *keys):
        """DEL: the number of keys removed."""
        return self._cmd(None, ("DEL",) + _need(keys))

    def unlink(self, *keys):
        return self._cmd(None, ("UNLINK",) + _need(keys))

    def exists(self, *keys):
        """EXISTS: how many of the keys exist (an int, like redis-py)."""
        return self._cmd(None, ("EXISTS",) + _need(keys))

    def _expire(self, cmd, key, t, nx, xx, gt, lt):
        args = [cmd, key, _int(t, "time")]
        if (nx and (xx or gt or lt)) or (gt and lt):
            raise ValueError(text("_expire"))
        for name, v in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt)):
            if v:
                args.append(name)  # flags need Redis 7
        return self._cmd(to_bool, args)

    def expire(self, key, time, nx=False, xx=False, gt=False, lt=False):
        """EXPIRE in seconds -> True if the timeout was set."""
        return self._expire("EXPIRE", key, time, nx, xx, gt, lt)

    def pexpire(self, key, time, nx=False, xx=False, gt=False, lt=False):
        return self._expire("PEXPIRE", key, time, nx, xx, gt, lt)

    def expireat(self, key, when, nx=False, xx=False, gt=False, lt=False):
        """EXPIREAT a unix time in seconds -> bool."""
        return self._expire("EXPIREAT", key, when, nx, xx, gt, lt)

    def pexpireat(self, key, when, nx=False, xx=False, gt=False, lt=False):
        return self._expire("PEXPIREAT", key, when, nx, xx, gt, lt)

    def ttl(self, key):
        return self._cmd(None, ("TTL", key))

    def pttl(self, key):
        return self._cmd(None, ("PTTL", key))

    def persist(self, key):
        return self._cmd(to_bool, ("PERSIST", key))

    def type(self, key):
        """TYPE: b"string", b"hash", ... or b"none"."""
        return self._cmd(None, ("TYPE", key))

    def rename(self, src, dst):
        return self._cmd(ok, ("RENAME", src, dst))

    def scan(self, cursor=0, match=None, count=None, _type=None):
        """SCAN -> (next cursor as int, [keys]); the iteration is over when the cursor is 0."""
        args = ["SCAN", _int(cursor, "cursor")]
        if match is not None:
            args.append("MATCH")
            args.append(match)
        if count is not None:
            args.append("COUNT")
            args.append(_int(count, "count"))
        if _type is not None:
            args.append("TYPE")
            args.append(_type)
        return self._cmd(_scan, args)

    def scan_iter(self, match=None, count=None, _type=None):
        """Generator over every key SCAN returns (waits for each batch; a key may come more than once)."""
        cursor = None
        while cursor != 0:
            cursor, keys = self.scan(cursor or 0, match, count, _type).wait()
            for k in keys:
                yield k


class HashCommands:
    def hset(self, key, field=None, value=None, mapping=None):
        """HSET field/value and/or a mapping {field: value} -> the number of fields added."""
        args = ["HSET", key]
        if field is not None:
            args.append(field)
            args.append(value)
        if mapping is not None:
            _flat(args, mapping, "mapping")
        if len(args) == 2:
            raise ValueError(text("hset"))
        return self._cmd(None, args)

    def hget(self, key, field):
        return self._cmd(None, ("HGET", key, field))

    def hmget(self, key, fields, *args):
        """HMGET: a list of values (None for missing fields); fields is a field or a list of fields."""
        return self._cmd(None, ["HMGET", key] + _many(fields, "fields") + list(args))

    def hgetall(self, key):
        """HGETALL -> dict (RESP2 and RESP3)."""
        return self._cmd(to_dict, ("HGETALL", key))

    def hdel(self, key, *fields):
        return self._cmd(None, ("HDEL", key) + _need(fields))

    def hincrby(self, key, field, amount=1):
        return self._cmd(None, ("HINCRBY", key, field, _int(amount, "amount")))

    def hincrbyfloat(self, key, field, amount=1.0):
        return self._cmd(to_float, ("HINCRBYFLOAT", key, field, _num(amount, "amount")))

    def hexists(self, key, field):
        return self._cmd(to_bool, ("HEXISTS", key, field))

    def hlen(self, key):
        return self._cmd(None, ("HLEN", key))

    def hkeys(self, key):
        return self._cmd(None, ("HKEYS", key))

    def hvals(self, key):
        return self._cmd(None, ("HVALS", key))


class ListCommands:
    def lpush(self, key, *values):
        return self._cmd(None, ("LPUSH", key) + _need(values))

    def rpush(self, key, *values):
        return self._cmd(None, ("RPUSH", key) + _need(values))

    def lpop(self, key, count=None):
        """LPOP: a value (or None); with count, a list (or None)."""
        return self._cmd(None, ("LPOP", key) if count is None else ("LPOP", key, _int(count, "count")))

    def rpop(self, key, count=None):
        return self._cmd(None, ("RPOP", key) if count is None else ("RPOP", key, _int(count, "count")))

    def lrange(self, key, start, end):
        return self._cmd(None, ("LRANGE", key, _int(start, "start"), _int(end, "end")))

    def llen(self, key):
        return self._cmd(None, ("LLEN", key))

    def ltrim(self, key, start, end):
        return self._cmd(ok, ("LTRIM", key, _int(start, "start"), _int(end, "end")))

    def lindex(self, key, index):
        return self._cmd(None, ("LINDEX", key, _int(index, "index")))

    def _bpop(self, cmd, keys, timeout):
        # The server blocks up to `timeout` s (0: forever), so this reply's deadline is the client timeout plus
        # the server timeout, or none at all for 0. Replies queued behind it inherit that allowance (client.py).
        _num(timeout, "timeout")
        if not (timeout >= 0) or timeout - timeout != 0:  # negative, nan (compares false) or inf (inf - inf is nan)
            raise ValueError(text("_bpop"))
        ms = int(timeout * 1000)
        return self._cmd(_pair, [cmd] + _many(keys, "keys") + [timeout], None,
                         -1 if ms == 0 or ms > _DAY_MS else ms)

    def blpop(self, keys, timeout=0):
        """BLPOP -> (key, value), or None when `timeout` seconds pass (0: block forever, no client deadline)."""
        return self._bpop("BLPOP", keys, timeout)

    def brpop(self, keys, timeout=0):
        return self._bpop("BRPOP", keys, timeout)


class ServerCommands:
    def ping(self):
        """PING -> True."""
        return self._cmd(_true, ("PING",))

    def echo(self, value):
        return self._cmd(None, ("ECHO", value))

    def select(self, db):
        """SELECT -> True. The handler's cached connection stays on that db for later Clients, but a re-dial goes
        back to the handler's db: handler.select(db) is the persistent way."""
        return self._cmd(ok, ("SELECT", _int(db, "db")))

    def time(self):
        """TIME -> (seconds, microseconds) as ints."""
        return self._cmd(_time, ("TIME",))

    def dbsize(self):
        return self._cmd(None, ("DBSIZE",))

    def bgsave(self, schedule=True):
        """BGSAVE (SCHEDULE: no error while a rewrite runs) -> True."""
        return self._cmd(_true, ("BGSAVE", "SCHEDULE") if schedule else ("BGSAVE",))

    def flushdb(self, asynchronous=False):
        return self._cmd(ok, ("FLUSHDB", "ASYNC") if asynchronous else ("FLUSHDB",))

    def info(self, section=None):
        """INFO -> the raw text (bytes), not parsed (it is large for a board)."""
        return self._cmd(None, ("INFO",) if section is None else ("INFO", section))

    def fcall(self, function, numkeys, *keys_and_args):
        """FCALL (Redis 7 functions): the function's reply; numkeys of keys_and_args are keys, like redis-py."""
        return self._cmd(None, ("FCALL", function, _int(numkeys, "numkeys")) + keys_and_args)

    def fcall_ro(self, function, numkeys, *keys_and_args):
        return self._cmd(None, ("FCALL_RO", function, _int(numkeys, "numkeys")) + keys_and_args)


_xg = None  # xgroups.py, once a method below has loaded it


def _x():
    global _xg
    if _xg is None:
        _xg = optional("xgroups")
    return _xg


class StreamGroupCommands:
    # stream reads and consumer groups: each method passes its arguments on to xgroups.py (loaded by the first
    # call), which checks them and builds the command. Replies have redis-py's RESP2 shapes on RESP2 and RESP3.
    def xread(self, streams, count=None, block=None):
        """XREAD {stream: last ID seen} -> [[stream, [(id, {field: value}), ...]], ...], [] when nothing came
        within `block` ms (None: do not block; 0: block for ever, no client deadline; else the client deadline
        grows by `block`, as blpop's does)."""
        return _x().xread(self, streams, count, block)

    def xreadgroup(self, groupname, consumername, streams, count=None, block=None, noack=False):
        """XREADGROUP GROUP groupname consumername: as xread; the ID ">" asks for entries never delivered to the
        group, "0" for this consumer's pending ones (an entry deleted since: (id, {}))."""
        return _x().xreadgroup(self, groupname, consumername, streams, count, block, noack)

    def xack(self, name, groupname, *ids):
        """XACK -> how many of the IDs were pending and are acknowledged now."""
        return _x().xack(self, name, groupname, ids)

    def xdel(self, name, *ids):
        """XDEL -> how many entries were deleted."""
        return _x().xdel(self, name, ids)

    def xpending(self, name, groupname):
        """XPENDING summary -> {"pending": n, "min": id, "max": id, "consumers": [{"name": c, "pending": n}]}."""
        return _x().xpending(self, name, groupname)

    def xpending_range(self, name, groupname, min, max, count, consumername=None, idle=None):
        """XPENDING with a range -> [{"message_id", "consumer", "time_since_delivered", "times_delivered"}]."""
        return _x().xpending_range(self, name, groupname, min, max, count, consumername, idle)

    def xclaim(self, name, groupname, consumername, min_idle_time, message_ids, idle=None, time=None,
               retrycount=None, force=False, justid=False):
        """XCLAIM -> [(id, {field: value})] ((None, None) for an entry deleted, Redis 6), or [id] with justid."""
        return _x().xclaim(self, name, groupname, consumername, min_idle_time, message_ids, idle, time, retrycount,
                           force, justid)

    def xautoclaim(self, name, groupname, consumername, min_idle_time, start_id="0-0", count=None, justid=False):
        """XAUTOCLAIM -> [next start ID, [(id, {field: value})]] (Redis 7: and the IDs of deleted entries), or the
        claimed IDs with justid."""
        return _x().xautoclaim(self, name, groupname, consumername, min_idle_time, start_id, count, justid)

    def xgroup_create(self, name, groupname, id="$", mkstream=False, entries_read=None):
        """XGROUP CREATE -> True; mkstream=True creates the stream too; entries_read needs Redis 7."""
        return _x().xgroup_create(self, name, groupname, id, mkstream, entries_read)

    def xgroup_destroy(self, name, groupname):
        """XGROUP DESTROY -> True if the group existed."""
        return _x().xgroup_destroy(self, name, groupname)

    def xgroup_createconsumer(self, name, groupname, consumername):
        """XGROUP CREATECONSUMER -> 1 if created, 0 if it existed."""
        return _x().xgroup_createconsumer(self, name, groupname, consumername)

    def xgroup_delconsumer(self, name, groupname, consumername):
        """XGROUP DELCONSUMER -> how many entries the consumer had pending."""
        return _x().xgroup_delconsumer(self, name, groupname, consumername)

    def xgroup_setid(self, name, groupname, id, entries_read=None):
        """XGROUP SETID -> True."""
        return _x().xgroup_setid(self, name, groupname, id, entries_read)

    def xinfo_stream(self, name, full=False):
        """XINFO STREAM -> a dict with str keys; first-entry/last-entry as (id, {field: value})."""
        return _x().xinfo_stream(self, name, full)

    def xinfo_groups(self, name):
        """XINFO GROUPS -> [dict with str keys]."""
        return _x().xinfo_groups(self, name)

    def xinfo_consumers(self, name, groupname):
        """XINFO CONSUMERS -> [dict with str keys]."""
        return _x().xinfo_consumers(self, name, groupname)


# What a transaction (transaction.py) can queue: every mixin of the catalogue. It is passed to transaction.py, which
# cannot import this module (that would be an import cycle: this one loads it).
_CATALOGUE = (StringCommands, KeyCommands, HashCommands, ListCommands, ServerCommands, SetCommands, SortedSetCommands,
              StreamCommands, StreamGroupCommands)


class MultiCommands:
    # transactions and scripts; their code loads with the first use (transaction.py, scripts.py)
    def transaction(self):
        """`with client.transaction() as t:` t.set(...), t.hgetall(...) ... queue commands and return results with
        ready()/wait(); MULTI, the commands and EXEC go out in one write when the block ends (README
        "Transactions")."""
        return optional("transaction").begin(self, _CATALOGUE)

    _watching = None  # the connection the last watch() went to (a transaction on another one is a WatchError)

    def watch(self, *keys):
        """WATCH -> True. It applies to the connection: the next EXEC on it (the next transaction) aborts with
        WatchError if a key changed; EXEC and unwatch() end it."""
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


class Client(CoreClient, StringCommands, KeyCommands, HashCommands, ListCommands, ServerCommands, SetCommands,
             SortedSetCommands, StreamCommands, StreamGroupCommands, MultiCommands):
    """The core client with the redis-py-named command catalogue."""
# pyright: reportAttributeAccessIssue=false
# (the mixins call self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
