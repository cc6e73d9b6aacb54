"""Key commands (DEL, EXISTS, EXPIRE, TTL, TYPE, RENAME, SCAN) of the catalogue."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

from .errors import text
from .client import ok
from .cmdargs import to_bool, _int, _need, _scan


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

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
