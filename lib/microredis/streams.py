"""Stream commands of the catalogue: XADD, XRANGE, XLEN, XTRIM, and the entry points of the reads and consumer groups (xgroups.py)."""
# A mixin that needs only self._cmd(conversion, args) -> Future: commands.Catalogue makes its methods the
# catalogue users' (Client, a transaction, the cluster client) when one of them is first called.

from .errors import optional, text
from .cmdargs import _entries, _flat, _int, _trim


_xg = None  # xgroups.py, once a method below has loaded it


def _x():
    global _xg
    if _xg is None:
        _xg = optional("xgroups")
    return _xg


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


class StreamGroupCommands:
    # stream reads and consumer groups: each method passes its arguments on to xgroups.py (loaded by the first
    # call), which checks them and builds the command. Replies have redis-py's RESP2 shapes on RESP2 and RESP3.
    def xread(self, streams, count=None, block=None):
        """XREAD {stream: last ID seen} -> [[stream, [(id, {field: value}), ...]], ...], [] when nothing came
        within `block` ms (None: do not block; 0: block for ever, no client deadline; else the client deadline
        grows by `block`, as blpop's does)."""
        return _x().xread(self, streams, count, block)

    def xreadgroup(self, groupname, consumername, streams, count=None, block=None, noack=False):
        """XREADGROUP GROUP groupname consumername: as xread; the ID ">" asks for entries never delivered to the
        group, "0" for this consumer's pending ones (an entry deleted since: (id, {}))."""
        return _x().xreadgroup(self, groupname, consumername, streams, count, block, noack)

    def xack(self, name, groupname, *ids):
        """XACK -> how many of the IDs were pending and are acknowledged now."""
        return _x().xack(self, name, groupname, ids)

    def xdel(self, name, *ids):
        """XDEL -> how many entries were deleted."""
        return _x().xdel(self, name, ids)

    def xpending(self, name, groupname):
        """XPENDING summary -> {"pending": n, "min": id, "max": id, "consumers": [{"name": c, "pending": n}]}."""
        return _x().xpending(self, name, groupname)

    def xpending_range(self, name, groupname, min, max, count, consumername=None, idle=None):
        """XPENDING with a range -> [{"message_id", "consumer", "time_since_delivered", "times_delivered"}]."""
        return _x().xpending_range(self, name, groupname, min, max, count, consumername, idle)

    def xclaim(self, name, groupname, consumername, min_idle_time, message_ids, idle=None, time=None,
               retrycount=None, force=False, justid=False):
        """XCLAIM -> [(id, {field: value})] ((None, None) for an entry deleted, Redis 6), or [id] with justid."""
        return _x().xclaim(self, name, groupname, consumername, min_idle_time, message_ids, idle, time, retrycount,
                           force, justid)

    def xautoclaim(self, name, groupname, consumername, min_idle_time, start_id="0-0", count=None, justid=False):
        """XAUTOCLAIM -> [next start ID, [(id, {field: value})]] (Redis 7: and the IDs of deleted entries), or the
        claimed IDs with justid."""
        return _x().xautoclaim(self, name, groupname, consumername, min_idle_time, start_id, count, justid)

    def xgroup_create(self, name, groupname, id="$", mkstream=False, entries_read=None):
        """XGROUP CREATE -> True; mkstream=True creates the stream too; entries_read needs Redis 7."""
        return _x().xgroup_create(self, name, groupname, id, mkstream, entries_read)

    def xgroup_destroy(self, name, groupname):
        """XGROUP DESTROY -> True if the group existed."""
        return _x().xgroup_destroy(self, name, groupname)

    def xgroup_createconsumer(self, name, groupname, consumername):
        """XGROUP CREATECONSUMER -> 1 if created, 0 if it existed."""
        return _x().xgroup_createconsumer(self, name, groupname, consumername)

    def xgroup_delconsumer(self, name, groupname, consumername):
        """XGROUP DELCONSUMER -> how many entries the consumer had pending."""
        return _x().xgroup_delconsumer(self, name, groupname, consumername)

    def xgroup_setid(self, name, groupname, id, entries_read=None):
        """XGROUP SETID -> True."""
        return _x().xgroup_setid(self, name, groupname, id, entries_read)

    def xinfo_stream(self, name, full=False):
        """XINFO STREAM -> a dict with str keys; first-entry/last-entry as (id, {field: value})."""
        return _x().xinfo_stream(self, name, full)

    def xinfo_groups(self, name):
        """XINFO GROUPS -> [dict with str keys]."""
        return _x().xinfo_groups(self, name)

    def xinfo_consumers(self, name, groupname):
        """XINFO CONSUMERS -> [dict with str keys]."""
        return _x().xinfo_consumers(self, name, groupname)

# pyright: reportAttributeAccessIssue=false
# (the mixin calls self._cmd, which CoreClient or a transaction provides; this module imports nothing from the
# platform: tests_host/test_types.py checks that)
