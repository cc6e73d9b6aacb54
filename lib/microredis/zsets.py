"""Sorted-set commands (ZADD, ZRANGE, ZSCORE ...) of the catalogue."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

from .errors import text
from .cmdargs import to_float, to_pairs, _flat, _int, _need, _num


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

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
