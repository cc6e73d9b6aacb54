"""Inbox: commands for a board from a stream, through a consumer group, that survive its reboots and outages."""
# Pub/sub keeps nothing for a subscriber that is not connected; a stream read through a consumer group keeps what the
# board has not acknowledged in its pending list on the server (XPENDING), so a command published while the board was
# off, asleep or rebooting waits for it. After every start and every re-dial the consumer first re-reads its own
# pending entries (ID "0", in order), then new ones (">"). done(entry) writes "applied up to entry.id" to `path`
# (checksummed records, flash.py) before it acknowledges: an entry at or below it that comes again (a lost XACK, a
# reboot) is acknowledged and skipped, never handed over twice. The window left is a crash between the
# application's effect and done(): that entry comes once more (done() before applying gives at most once instead).
# The server counts every delivery, re-reads of pending entries included; one handed over max_deliveries times
# without done() goes to the dead-letter stream (its fields and b"id") and is acknowledged.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

import struct

from .errors import RedisError, ReplyError, AuthenticationError, NoPermissionError
from .encoder import check
from .clock import sleep_ms
from .backoff import Backoff

_T_APPLIED = const(65)  # "A": the applied ID, as the server writes it (b"ms-seq")
_KEEP = const(1024)  # the file is rewritten to one record once it is this long


def _id(v):
    # an entry ID, b"ms-seq" (str with decode_responses), as (ms, seq)
    if type(v) is str:
        v = v.encode()
    d = v.find(b"-")
    if d < 0:
        return int(v), 0
    return int(v[:d]), int(v[d + 1:])


def _text(t):
    return b"%d-%d" % t


def _after(a, b):
    # entry ID a is above b (both bytes "ms-seq", no leading zeros): digit counts, then digits; nothing allocated
    i = a.find(b"-")
    j = b.find(b"-")
    if i != j:
        return i > j
    k = 0
    while k < i:
        if a[k] != b[k]:
            return a[k] > b[k]
        k += 1
    i = len(a)
    if i != len(b):
        return i > len(b)
    while k < i:
        if a[k] != b[k]:
            return a[k] > b[k]
        k += 1
    return False


class Entry:
    """One command: .id (the stream entry ID), .fields (a dict), .deliveries (how often the server handed it out)."""

    def __init__(self, id, fields, deliveries):
        self.id = id
        self.fields = fields
        self.deliveries = deliveries

    def __repr__(self):
        return "<Entry %s %r>" % (self.id, self.fields)


def _entries(reply):
    # XREADGROUP's reply: RESP2 [[stream, [[id, [field, value, ...]], ...]]], RESP3 {stream: [...]}, nil: none.
    # A pending entry deleted from the stream meanwhile comes as [id, nil]: fields None.
    if not reply:
        return ()
    es = reply[0][1] if type(reply) is list else list(reply.values())[0]
    out = []
    for e in es:
        f = e[1]
        d = None
        if f is not None:
            d = {}
            i = 0
            while i + 1 < len(f):
                d[f[i]] = f[i + 1]
                i += 2
        i = e[0]
        out.append(Entry(i if type(i) is bytes else i.encode(), d, 1))  # (str with decode_responses)
    return out


class Inbox(Backoff):
    """Commands for one consumer of a group on a stream, each handed over until done(). next() and done() never
    raise for network or storage trouble (see last_error)."""

    def __init__(self, handler, stream, group, consumer, path=None, count=4, block_ms=1000, max_deliveries=5,
                 dead_letter=None):
        for v in (stream, group, consumer):
            check(v)
        if type(count) is not int or count < 1:
            raise ValueError("count must be an int >= 1")
        if type(block_ms) is not int or block_ms < 0:
            raise ValueError("block_ms must be an int >= 0")
        if type(max_deliveries) is not int or max_deliveries < 1:
            raise ValueError("max_deliveries must be an int >= 1")
        Backoff.__init__(self, 1)  # paces re-dials and re-reads after failures: the first retry is immediate
        self._h = handler
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.path = path
        self.count = count
        self.block_ms = block_ms
        self.max_deliveries = max_deliveries
        if dead_letter is None:
            dead_letter = (stream.encode() if type(stream) is str else bytes(stream)) + b":dead"
        check(dead_letter)
        self.dead_letter = dead_letter
        self.redelivered = 0  # entries handed over again (not done before, or read again after a start)
        self.skipped = 0  # entries that came again at or below the applied ID: acknowledged, not handed over
        self.dead = 0  # entries moved to the dead-letter stream
        self.last_error = None
        self.blocked = False  # an AuthenticationError/NoPermissionError stops the inbox until resume()
        self._buf = []  # new entries read and not handed over yet (at most count)
        self._out = None  # the entry handed over and not done yet
        self._again = None  # its ID: the next read reads it again (the server counts the delivery)
        self._scan = True  # our own pending entries are read first, one at a time (after a start or a re-dial)
        self._cursor = (0, 0)  # that read goes on from entries above this ID
        self._group = False  # the group is known to exist
        self._applied = b"0-0"  # the highest ID done (persisted with path)
        self._c = None
        self._cx = None  # the connection of the session: another one means reading our pending entries first
        self._clock = None
        if path is not None:
            self._applied = self._load(path)

    @property
    def pending(self):
        """Entries read from the stream and not done yet (in this inbox's hands)."""
        return len(self._buf) + (self._out is not None)

    def resume(self):
        """After fixing credentials or ACLs: let next() try again."""
        self.blocked = False
        self.note_success()

    # ---- reading --------------------------------------------------------------------------------------------
    def next(self, timeout_ms=0, client=None):
        """The next command (an Entry), or None once timeout_ms passed (0: what is there now). An entry handed over
        and not done() comes again first. client: read on this synchronous Client (the application's) instead of
        a connection of the handler's own."""
        clock = self._clk()
        if self._out is not None:
            self._again = _id(self._out.id)  # not done: it comes again first, before any later entry
            self._out = None
        start = clock.ticks_ms()
        while not self.blocked:
            if self._again is None and self._buf:
                return self._hand(self._buf.pop(0))
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
            c = self._session(client, clock)
            n = -1
            if c is not None:
                one = self._scan or self._again is not None  # a read of our pending entries: never the last one
                try:
                    n = self._read(c, left if left > 0 else 0)
                except (AuthenticationError, NoPermissionError) as e:
                    self._stop(e)
                    return None
                except (RedisError, OSError) as e:
                    self._failed(e, clock)
                if c._conn is not self._cx:
                    self._cx = c._conn  # the client re-dialled during the read: our pending entries first
                    self._rescan()
                    continue
                if type(n) is Entry:
                    return self._hand(n)
                if n > 0 or (one and n == 0):
                    continue  # new entries came (maybe all skipped), or our pending ones were read: read on
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
            if left <= 0:
                return None
            if n < 0:
                sleep_ms(max(1, min(left, self.wait_ms(clock), 1000)))
        return None

    def _hand(self, e):
        if e.deliveries > 1:
            self.redelivered += 1
        self._out = e
        return e

    def _clk(self):
        clock = self._clock
        if clock is None:
            clock = self._clock = getattr(self._h, "_clock", None)
            if clock is None:
                from .clock import default_clock
                clock = self._clock = default_clock()
        return clock

    def _rescan(self):
        # a new session: our own pending entries are read again from the first (what was read and not done)
        self._buf = []
        self._out = None
        self._again = None
        self._scan = True
        self._cursor = (0, 0)

    def _session(self, client, clock):
        if client is not None:
            c = client
        else:
            c = self._c
            if c is None or c._conn is None or not c._conn.ok:
                if self.wait_ms(clock) > 0 and getattr(self._h, "retry_policy", None) is None:
                    return None
                try:
                    from .client import CoreClient
                    c = self._c = self._h.connect(None, None, CoreClient)
                except (AuthenticationError, NoPermissionError) as e:
                    return self._stop(e)
                except (RedisError, OSError) as e:
                    self._failed(e, clock)
                    return None
        if c._conn is not self._cx or c._conn is None:
            self._cx = c._conn
            self._rescan()
        return c

    def _read(self, c, left):
        # One read. The entry not done (again), or our next pending entry (scan): one at a time, with its delivery
        # count, returned as an Entry to hand over (0: none worth handing; the loop reads on). Else new entries
        # (BLOCK up to `left` ms, at most block_ms) into _buf: how many the server gave.
        s = self.stream
        g = self.group
        if not self._group:
            try:
                c.command(b"XGROUP", b"CREATE", s, g, b"0", b"MKSTREAM").wait()
            except ReplyError as e:
                if e.code != "BUSYGROUP":
                    raise
            self._group = True
        again = self._again
        if again is not None or self._scan:
            t = again if again is not None else self._cursor
            if again is not None:  # read from just below it
                t = (t[0], t[1] - 1) if t[1] else ((t[0] - 1, 0xFFFFFFFFFFFFFFFF) if t[0] else (0, 0))
            nxt = (t[0], t[1] + 1) if t[1] < 0xFFFFFFFFFFFFFFFF else (t[0] + 1, 0)
            with c.pipeline():
                fr = c.command(b"XREADGROUP", b"GROUP", g, self.consumer, b"COUNT", 1, b"STREAMS", s, _text(t))
                fp = c.command(b"XPENDING", s, g, _text(nxt), b"+", 1, self.consumer)
            es = _entries(self._nogroup(fr))
            rows = fp.wait()
            self._again = None
            if not es:
                self._scan = False  # nothing (more) pending: new entries now
                return 0
            e = es[0]
            if again is not None and _id(e.id) != again:
                return 0  # it is no longer pending (acknowledged meanwhile): on with the rest
            if again is None:
                self._cursor = _id(e.id)
            e.deliveries = rows[0][3] if rows and rows[0][0] == e.id else 1
            return e if self._keep(c, e) else 0
        b = left if left < self.block_ms else self.block_ms
        args = [b"XREADGROUP", b"GROUP", g, self.consumer, b"COUNT", self.count]
        if b > 0:
            args.append(b"BLOCK")
            args.append(b)
        args.append(b"STREAMS")
        args.append(s)
        args.append(b">")
        es = _entries(self._nogroup(c._cmd(None, args, None, b)))
        for e in es:
            if self._keep(c, e):
                self._buf.append(e)
        return len(es)

    def _keep(self, c, e):
        # False for an entry done before (its XACK was lost), deleted from the stream meanwhile, or delivered more
        # than max_deliveries times (to the dead letters): acknowledged here, never handed over
        if not _after(e.id, self._applied) or e.fields is None:
            c.command(b"XACK", self.stream, self.group, e.id).wait()
            self.skipped += 1
            return False
        if e.deliveries > self.max_deliveries:
            self._bury(c, e)
            return False
        return True

    def _nogroup(self, f):
        try:
            return f.wait()
        except ReplyError as e:
            if e.code == "NOGROUP":
                self._group = False  # the stream or the group was deleted: created again on the next read
            raise

    def _bury(self, c, e):
        # poison: handed over max_deliveries times without done(); to the dead-letter stream, then acknowledged
        args = [b"XADD", self.dead_letter, b"*"]
        f = e.fields
        for k in f:
            args.append(k)
            args.append(f[k])
        args.append(b"id")
        args.append(e.id)
        c.command(*args).wait()  # an error leaves it pending: it comes again
        c.command(b"XACK", self.stream, self.group, e.id).wait()
        self.dead += 1

    def _stop(self, e):
        self.last_error = e
        self.blocked = True
        self._c = None
        return None

    def _failed(self, e, clock):
        self.last_error = e
        self._c = None
        self.note_failure(clock)

    # ---- done -----------------------------------------------------------------------------------------------
    def done(self, entry, client=None):
        """The command was applied: "applied up to entry.id" goes to flash (with path), then the XACK. Never raises
        for network or storage trouble: an acknowledgement that did not go out is made when the entry comes again."""
        t = entry.id
        if self._out is entry:
            self._out = None
        if _after(t, self._applied):
            self._applied = t
            path = self.path
            if path is not None:
                try:
                    self._persist(path, t)
                except OSError as e:
                    self.last_error = e
        clock = self._clk()
        c = self._session(client, clock)
        if c is None:
            return
        try:
            c.command(b"XACK", self.stream, self.group, entry.id).wait()
            self.note_success()
        except (AuthenticationError, NoPermissionError) as e:
            self._stop(e)
        except (RedisError, OSError) as e:
            self._failed(e, clock)  # the next session reads our pending entries again: this one is skipped then

    # ---- the applied ID on flash ----------------------------------------------------------------------------
    def _load(self, path):
        # the highest applied ID in the file: every offset that holds a whole valid record counts, so a torn last
        # write neither loses the one before nor makes one up
        import os
        from .flash import crc
        try:
            os.stat(path)
        except OSError:
            try:
                os.rename(path + ".tmp", path)  # a rewrite was cut before its rename
            except OSError:
                return b"0-0"
        with open(path, "rb") as f:
            d = f.read()
        best = b"0-0"
        i = 0
        while i + 8 <= len(d):
            n = d[i + 2]
            if d[i] == 0x9E and d[i + 1] == _T_APPLIED and 3 <= n <= 41 and d[i + 3] == 0 and i + 8 + n <= len(d) \
                    and struct.unpack("<I", d[i + 4 + n:i + 8 + n])[0] == crc(d[i:i + 4 + n]):
                t = bytes(d[i + 4:i + 4 + n])
                if _after(t, best):
                    best = t
                i += 8 + n
            else:
                i += 1
        return best

    def _persist(self, path, t):
        import os
        from .flash import record, sync, size, remove
        rec = record(_T_APPLIED, t)
        if size(path) + len(rec) > _KEEP:
            with open(path + ".tmp", "wb") as f:
                f.write(rec)
                sync(f)
            try:
                os.rename(path + ".tmp", path)
            except OSError:
                remove(path)  # FAT will not rename over a file (_load() picks the .tmp up if power goes now)
                os.rename(path + ".tmp", path)
            return
        with open(path, "ab") as f:
            n = f.write(rec)
            if n is not None and n != len(rec):
                raise OSError(28)
            sync(f)

    def __repr__(self):
        return "<Inbox %s pending=%d>" % (self.stream, self.pending)
