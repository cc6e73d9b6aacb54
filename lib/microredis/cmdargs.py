"""The command catalogue's argument checks and reply conversions, shared by its groups (strings.py ... streams.py)."""
# Options are validated before anything is sent, argument types by the core's _cmd. Conversions are applied when the
# reply resolves its future: a reply of another shape raises (the client makes that the future's ProtocolError, the
# reply's slot already released), so a wrong shape is never passed off as a converted value.

from .errors import text



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


def _need(items):
    # variadic arguments (a tuple) that must not be empty
    if not items:
        raise ValueError(text("_need"))
    return items


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
