"""List commands (LPUSH, RPOP, LRANGE, BLPOP ...) of the catalogue."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import text
from .client import ok
from .cmdargs import _int, _many, _need, _num, _pair


_DAY_MS = const(86400000)  # a blocking timeout longer than this disables the client deadline (ticks_diff range)

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

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
