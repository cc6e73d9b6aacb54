"""Set, sorted-set and stream commands (mixins of commands.Client); the catalogue's argument and reply helpers."""
# Same rules as commands.py: options are validated before anything is sent, argument types by the core's _cmd. A
# mixin needs only self._cmd(conversion, args) -> Future, where conversion is None or a function of the reply.

from .errors import text
from .client import ok  # noqa: F401 (re-exported for commands.py)


def _int(v, name):
    if type(v) is not int:
        raise TypeError(text("int", name))
    return v


def _num(v, name):
    t = type(v)
    if t is not int and t is not float:
        raise TypeError(text("num", name))
    return v


def _many(x, name):
    # one item, or a non-empty list/tuple of items -> a new list
    if type(x) is list or type(x) is tuple:
        if not x:
            raise ValueError(text("_many", name))
        return list(x)
    return [x]


def _flat(args, mapping, name):
    # appends k1, v1, k2, v2... of a non-empty dict to args
    if not hasattr(mapping, "items"):
        raise TypeError(text("dict", name))
    for k, v in mapping.items():
        args.append(k)
        args.append(v)
    if not mapping:
        raise ValueError(text("_many", name))
    return args


def _entries(v):
    # XRANGE: [[id, [f1, v1, ...]], ...] -> [(id, {f1: v1, ...}), ...] like redis-py; an entry deleted since it was
    # delivered (XREADGROUP of the pending ones: [id, nil]; XCLAIM on Redis 6: nil) -> (id, {}), (None, None)
    _list(v)
    out = []
    for e in v:
        if e is None:
            out.append((None, None))
            continue
        if type(e) is not list or len(e) != 2:
            raise TypeError(text("_entries"))
        out.append((e[0], {} if e[1] is None else to_dict(e[1])))
    return out


def _list(v):
    if type(v) is not list:
        raise TypeError(text("_list"))
    return v


def _float(x):
    t = type(x)
    if t is float:
        return x
    if t is not bytes and t is not str:
        raise TypeError(text("_float"))
    return float(x)


def _trim(args, maxlen, approximate, minid, limit):
    if maxlen is not None and minid is not None:
        raise ValueError(text("minid"))
    if maxlen is not None:
        if _int(maxlen, "maxlen") < 0:
            raise ValueError(text("maxlen"))
        args.append("MAXLEN")
    elif minid is not None:
        args.append("MINID")
    elif limit is not None:
        raise ValueError(text("limit"))
    else:
        return args
    if approximate:
        args.append("~")
    args.append(minid if maxlen is None else maxlen)
    if limit is not None:
        if not approximate:
            raise ValueError(text("approximate"))
        args.append("LIMIT")
        args.append(_int(limit, "limit"))
    return args


class SetCommands:
    def sadd(self, key, *values):
        return self._cmd(None, ("SADD", key) + _need(values))

    def srem(self, key, *values):
        return self._cmd(None, ("SREM", key) + _need(values))

    def smembers(self, key):
        """SMEMBERS -> a python set."""
        return self._cmd(to_set, ("SMEMBERS", key))

    def sismember(self, key, value):
        return self._cmd(to_bool, ("SISMEMBER", key, value))

    def scard(self, key):
        return self._cmd(None, ("SCARD", key))


class SortedSetCommands:
    def zadd(self, key, mapping, nx=False, xx=False, ch=False, incr=False, gt=False, lt=False):
        """ZADD from {member: score} -> the number added (changed with ch=True); incr=True: the new score (float),
        or None when nx/xx/gt/lt prevented the update."""
        if nx and xx:
            raise ValueError(text("nx"))
        if (gt and lt) or (nx and (gt or lt)):
            raise ValueError(text("gt"))
        if incr and len(mapping) != 1:
            raise ValueError(text("incr"))
        args = ["ZADD", key]
        for name, v in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt), ("CH", ch), ("INCR", incr)):
            if v:
                args.append(name)
        _flat(args, mapping, "mapping")
        for i in range(len(args) - len(mapping) * 2, len(args), 2):
            args[i], args[i + 1] = args[i + 1], args[i]  # ZADD wants score member
        return self._cmd(to_float if incr else None, args)

    def zrange(self, key, start, end, desc=False, withscores=False, byscore=False, bylex=False, offset=None,
               num=None):
        """ZRANGE (Redis 6.2 forms) -> [members], or [(member, float score)] with withscores=True."""
        args = ["ZRANGE", key, start, end]
        if byscore and bylex:
            raise ValueError(text("bylex"))
        if byscore:
            args.append("BYSCORE")
        elif bylex:
            args.append("BYLEX")
        if desc:
            args.append("REV")
        if offset is not None or num is not None:
            if offset is None or num is None or not (byscore or bylex):
                raise ValueError(text("offset"))
            args.append("LIMIT")
            args.append(_int(offset, "offset"))
            args.append(_int(num, "num"))
        if withscores:
            if bylex:
                raise ValueError(text("withscores"))
            args.append("WITHSCORES")
        return self._cmd(to_pairs if withscores else None, args)

    def zrem(self, key, *values):
        return self._cmd(None, ("ZREM", key) + _need(values))

    def zscore(self, key, value):
        """ZSCORE -> float, or None."""
        return self._cmd(to_float, ("ZSCORE", key, value))

    def zincrby(self, key, amount, value):
        """ZINCRBY -> the new score (float)."""
        return self._cmd(to_float, ("ZINCRBY", key, _num(amount, "amount"), value))

    def zcard(self, key):
        return self._cmd(None, ("ZCARD", key))


class StreamCommands:
    def xadd(self, key, fields, id="*", maxlen=None, approximate=True, nomkstream=False, minid=None, limit=None):
        """XADD {field: value} -> the entry id (bytes); maxlen/minid trim the stream (~ unless approximate=False).
        With nomkstream=True and no stream: None."""
        args = ["XADD", key]
        if nomkstream:
            args.append("NOMKSTREAM")
        _trim(args, maxlen, approximate, minid, limit)
        args.append(id)
        return self._cmd(None, _flat(args, fields, "fields"))

    def xrange(self, key, min="-", max="+", count=None):
        """XRANGE -> [(id, {field: value}), ...]."""
        args = ["XRANGE", key, min, max]
        if count is not None:
            args.append("COUNT")
            args.append(_int(count, "count"))
        return self._cmd(_entries, args)

    def xrevrange(self, key, max="+", min="-", count=None):
        args = ["XREVRANGE", key, max, min]
        if count is not None:
            args.append("COUNT")
            args.append(_int(count, "count"))
        return self._cmd(_entries, args)

    def xlen(self, key):
        return self._cmd(None, ("XLEN", key))

    def xtrim(self, key, maxlen=None, approximate=True, minid=None, limit=None):
        """XTRIM by maxlen or minid -> the number of entries removed."""
        if maxlen is None and minid is None:
            raise ValueError(text("xtrim"))
        return self._cmd(None, _trim(["XTRIM", key], maxlen, approximate, minid, limit))


def _need(items):
    # variadic arguments (a tuple) that must not be empty
    if not items:
        raise ValueError(text("_need"))
    return items


# Reply conversions (applied when the reply resolves its future). A reply of another shape raises (the client makes
# that the future's ProtocolError): a wrong shape is never passed off as a converted value.

def to_bool(v):
    # integer -> bool
    if type(v) is int or type(v) is bool:
        return bool(v)
    raise TypeError(text("to_bool"))


def to_dict(v):
    # RESP2 flat list -> dict (RESP3 maps pass through)
    if type(v) is dict:
        return v
    if len(_list(v)) % 2:
        raise ValueError(text("to_dict"))
    d = {}
    for i in range(0, len(v), 2):
        d[v[i]] = v[i + 1]
    return d


def to_float(v):
    # bulk -> float (RESP3 doubles pass through)
    return None if v is None else _float(v)


def to_set(v):
    return set(_list(v))


def to_pairs(v):
    # RESP2 flat list -> [(member, float score)]; RESP3 [[m, s]] -> same
    out = []
    if _list(v) and type(v[0]) is list:
        for p in v:
            if type(p) is not list or len(p) != 2:
                raise TypeError(text("to_pairs"))
            out.append((p[0], _float(p[1])))
    else:
        if len(v) % 2:
            raise ValueError(text("to_dict"))
        for i in range(0, len(v), 2):
            out.append((v[i], _float(v[i + 1])))
    return out
# pyright: reportAttributeAccessIssue=false
# (the mixins call self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
