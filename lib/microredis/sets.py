"""Set commands (SADD, SREM, SMEMBERS, SISMEMBER, SCARD) of the catalogue."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

from .cmdargs import to_bool, to_set, _need


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

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
