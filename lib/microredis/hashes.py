"""Hash commands (HSET, HGET, HGETALL, HINCRBY ...) of the catalogue."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

from .errors import text
from .cmdargs import to_bool, to_dict, to_float, _flat, _int, _many, _need, _num


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

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
