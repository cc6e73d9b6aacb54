"""Server and connection commands (PING, ECHO, SELECT, TIME, INFO, FCALL ...) of the catalogue."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

from .client import ok
from .cmdargs import _int, _time, _true


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

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
