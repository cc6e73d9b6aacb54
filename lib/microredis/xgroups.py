"""Stream reads and consumer groups (XREAD, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XDEL, XGROUP, XINFO),
loaded by the first of these commands."""
# commands.StreamGroupCommands holds the methods (their redis-py signatures and defaults) and passes every argument
# on, positionally, to the function of the same name here, so a Client that never reads a stream this way keeps
# this code and its names off the heap. Same rules as the rest of the catalogue: options are checked here, before
# anything is sent (TypeError/ValueError), argument types by the core's _cmd; the reply conversions raise on a reply
# of another shape (the future's ProtocolError). Replies have redis-py's RESP2 shapes on RESP2 and RESP3 alike.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import text
from .client import ok
from .cmdargs import to_bool, to_dict, _int, _need, _list, _entries

_DAY_MS = const(86400000)  # as commands._DAY_MS: a longer BLOCK disables the client deadline (ticks_diff range)


def _count(args, count):
    if count is not None:
        if _int(count, "count") < 1:
            raise ValueError(text("_count"))
        args.append("COUNT")
        args.append(count)


def _block(args, block):
    # BLOCK ms -> the reply's deadline allowance (commands.ListCommands._bpop): the server holds the reply up to
    # `block` ms (0: for ever, so no client deadline at all)
    if block is None:
        return 0
    if _int(block, "block") < 0:
        raise ValueError(text("block"))
    args.append("BLOCK")
    args.append(block)
    return -1 if block == 0 or block > _DAY_MS else block


def _streams(args, streams):
    # STREAMS k1 k2 ... id1 id2 ... from a non-empty dict {stream: last ID seen}
    if not hasattr(streams, "items"):
        raise TypeError(text("dict", "streams"))
    if not streams:
        raise ValueError(text("_many", "streams"))
    args.append("STREAMS")
    for k in streams:
        args.append(k)
    for k in streams:
        args.append(streams[k])
    return args


def _nonneg(v, name):
    # an int >= 0 (a time in ms, a count)
    if _int(v, name) < 0:
        raise ValueError(text("_nonneg", name))
    return v


def _opt(args, word, v, name):
    if v is not None:
        args.append(word)
        args.append(_nonneg(v, name))


def xread(c, streams, count, block):
    args = ["XREAD"]
    _count(args, count)
    x = _block(args, block)
    return c._cmd(_xread, _streams(args, streams), None, x)


def xreadgroup(c, groupname, consumername, streams, count, block, noack):
    args = ["XREADGROUP", "GROUP", groupname, consumername]
    _count(args, count)
    x = _block(args, block)
    if noack:
        args.append("NOACK")
    return c._cmd(_xread, _streams(args, streams), None, x)


def xack(c, name, groupname, ids):
    return c._cmd(None, ("XACK", name, groupname) + _need(ids))


def xdel(c, name, ids):
    return c._cmd(None, ("XDEL", name) + _need(ids))


def xpending(c, name, groupname):
    return c._cmd(_summary, ("XPENDING", name, groupname))


def xpending_range(c, name, groupname, min, max, count, consumername, idle):
    if min is None or max is None or count is None:
        raise ValueError(text("xpending_range"))
    args = ["XPENDING", name, groupname]
    _opt(args, "IDLE", idle, "idle")
    args.append(min)
    args.append(max)
    args.append(_nonneg(count, "count"))
    if consumername is not None:
        args.append(consumername)
    return c._cmd(_detail, args)


def xclaim(c, name, groupname, consumername, min_idle_time, message_ids, idle, time, retrycount, force, justid):
    args = ["XCLAIM", name, groupname, consumername, _nonneg(min_idle_time, "min_idle_time")]
    if type(message_ids) is not list and type(message_ids) is not tuple:
        raise TypeError(text("message_ids"))
    if not message_ids:
        raise ValueError(text("_many", "message_ids"))
    for i in message_ids:
        args.append(i)
    _opt(args, "IDLE", idle, "idle")
    _opt(args, "TIME", time, "time")
    _opt(args, "RETRYCOUNT", retrycount, "retrycount")
    if force:
        args.append("FORCE")
    if justid:
        args.append("JUSTID")
    return c._cmd(None if justid else _entries, args)


def xautoclaim(c, name, groupname, consumername, min_idle_time, start_id, count, justid):
    args = ["XAUTOCLAIM", name, groupname, consumername, _nonneg(min_idle_time, "min_idle_time"), start_id]
    _count(args, count)
    if justid:
        args.append("JUSTID")
    return c._cmd(_claimed_ids if justid else _claimed, args)


def xgroup_create(c, name, groupname, id, mkstream, entries_read):
    args = ["XGROUP", "CREATE", name, groupname, id]
    if mkstream:
        args.append("MKSTREAM")
    return c._cmd(ok, _read(args, entries_read))


def xgroup_setid(c, name, groupname, id, entries_read):
    return c._cmd(ok, _read(["XGROUP", "SETID", name, groupname, id], entries_read))


def _read(args, entries_read):
    # ENTRIESREAD (Redis 7): how many entries the group has read, for its lag
    if entries_read is not None:
        args.append("ENTRIESREAD")
        args.append(_int(entries_read, "entries_read"))
    return args


def xgroup_destroy(c, name, groupname):
    return c._cmd(to_bool, ("XGROUP", "DESTROY", name, groupname))


def xgroup_createconsumer(c, name, groupname, consumername):
    return c._cmd(None, ("XGROUP", "CREATECONSUMER", name, groupname, consumername))


def xgroup_delconsumer(c, name, groupname, consumername):
    return c._cmd(None, ("XGROUP", "DELCONSUMER", name, groupname, consumername))


def xinfo_stream(c, name, full):
    return c._cmd(_full if full else _stream, ("XINFO", "STREAM", name, "FULL") if full else ("XINFO", "STREAM", name))


def xinfo_groups(c, name):
    return c._cmd(_infos, ("XINFO", "GROUPS", name))


def xinfo_consumers(c, name, groupname):
    return c._cmd(_infos, ("XINFO", "CONSUMERS", name, groupname))


# ---- reply conversions ----------------------------------------------------------------------------------------

def _xread(v):
    # RESP2 [[stream, entries], ...] (converted in place), RESP3 {stream: entries}, nil (nothing before BLOCK ran
    # out) -> [[stream, [(id, {field: value}), ...]], ...] or [], like redis-py on RESP2. (RESP3 on MicroPython:
    # the streams in the order of its dict, which is not the server's.)
    if v is None:
        return []
    if type(v) is dict:
        out = []
        for k in v:
            out.append([k, _entries(v[k])])
        return out
    for s in _list(v):
        if type(s) is not list or len(s) != 2:
            raise TypeError(text("_two"))
        s[1] = _entries(s[1])
    return v


def _summary(v):
    # XPENDING: [count, min ID, max ID, [[consumer, count as a string], ...] or nil] -> redis-py's dict
    if len(_list(v)) != 4:
        raise TypeError(text("_summary"))
    cs = []
    for p in v[3] or ():
        if type(p) is not list or len(p) != 2:
            raise TypeError(text("_two"))
        n = p[1]
        if type(n) is not bytes and type(n) is not str:
            raise TypeError(text("_digits"))
        cs.append({"name": p[0], "pending": int(n)})
    return {"pending": v[0], "min": v[1], "max": v[2], "consumers": cs}


def _detail(v):
    # XPENDING with a range: [[id, consumer, ms since delivered, times delivered], ...] -> redis-py's dicts
    out = []
    for p in _list(v):
        if type(p) is not list or len(p) != 4:
            raise TypeError(text("_detail"))
        out.append({"message_id": p[0], "consumer": p[1], "time_since_delivered": p[2], "times_delivered": p[3]})
    return out


def _claimed(v):
    # XAUTOCLAIM: [next start ID, entries] (Redis 7: and the IDs of deleted entries) -> the same list, its entries
    # as (id, {field: value})
    if len(_list(v)) < 2:
        raise TypeError(text("_claimed"))
    v[1] = _entries(v[1])
    return v


def _claimed_ids(v):
    # XAUTOCLAIM JUSTID -> the claimed IDs only, like redis-py
    if len(_list(v)) < 2:
        raise TypeError(text("_claimed"))
    return _list(v[1])


def _info(v):
    # one XINFO record (RESP2 flat list, RESP3 map) -> {str: value}, the keys decoded like redis-py's
    d = to_dict(v)
    out = {}
    for k in d:
        out[k if type(k) is str else k.decode()] = d[k]
    return out


def _infos(v):
    out = []
    for x in _list(v):
        out.append(_info(x))
    return out


def _stream(v):
    # XINFO STREAM: first-entry and last-entry as (id, {field: value}) (None in an empty stream)
    d = _info(v)
    for k in ("first-entry", "last-entry"):
        e = d.get(k)
        if e is not None:
            if type(e) is not list or len(e) != 2:
                raise TypeError(text("_entries"))
            d[k] = (e[0], to_dict(e[1]))
    return d


def _full(v):
    # XINFO STREAM FULL: entries as {id: {field: value}}, groups and their consumers as {str: value}
    d = _info(v)
    es = {}
    for e in _list(d["entries"]):
        if type(e) is not list or len(e) != 2:
            raise TypeError(text("_entries"))
        es[e[0]] = to_dict(e[1])
    d["entries"] = es
    gs = _infos(d["groups"])
    for g in gs:
        g["consumers"] = _infos(g["consumers"])
    d["groups"] = gs
    return d
