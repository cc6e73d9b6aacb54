"""String commands (MGET, MSET, INCRBY, GETEX, SETEX ...) of the catalogue; SET/GET/INCR are the core's."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

from .errors import text
from .client import ok
from .cmdargs import to_bool, to_float, _flat, _int, _many, _num


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

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
