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

from .errors import ReplyError, text
from .encoder import check
from .clock import sleep_ms
from .link import Link, parse_id as _id

_T_APPLIED = const(65)  # "A": the applied ID, as the server writes it (b"ms-seq")
_KEEP = const(1024)  # the file is rewritten to one record once it is this long


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

    deliveries = 1  # set on the instance only when more (a pending entry read again): one attribute less to store

    def __init__(self, id, fields, deliveries=1):
        self.id = id
        self.fields = fields
        if deliveries != 1:
            self.deliveries = deliveries

    def __repr__(self):
        return "<Entry %s %r>" % (self.id, self.fields)


def _entry(e):
    # [id, [field, value, ...]] as an Entry; a pending entry deleted from the stream meanwhile comes as [id, nil]
    f = e[1]
    d = None
    if f is not None:
        d = {}
        i = 0
        while i + 1 < len(f):
            d[f[i]] = f[i + 1]
            i += 2
    i = e[0]
    return Entry(i if type(i) is bytes else i.encode(), d)  # (str with decode_responses)


def _entries(reply):
    # XREADGROUP's list of entries: RESP2 [[stream, [entry, ...]]], RESP3 {stream: [entry, ...]}; nil: None
    if not reply:
        return None
    if type(reply) is list:
        return reply[0][1]
    for k in reply:
        return reply[k]


def _run(co):
    # Runs a body that the asyncio inbox (aio_inbox.py) awaits to its end: on a synchronous client its waits block,
    # so it never suspends
    try:
        co.send(None)
    except StopIteration as e:
        return e.value
    raise RuntimeError


class Inbox(Link):
    """Commands for one consumer of a group on a stream, each handed over until done(). next() and done() never
    raise for network or storage trouble (see last_error)."""

    _aio = False  # the kind of client it reads on: synchronous (AsyncInbox: asyncio)

    # What the synchronous and the asyncio inbox (aio_inbox.AsyncInbox) share: the state, what a read needs rarely
    # as coroutines (_slow, _pending, _drops: awaited there, run to their end here by _run), the steps around the
    # waits (_ready, _session, _ask, _got, _bind, _mark). The two differ in their waits alone: next() and done()
    # block on the socket here.
    def __init__(self, handler, stream, group, consumer, path=None, count=4, block_ms=1000, max_deliveries=5,
                 dead_letter=None):
        for v in (stream, group, consumer):
            check(v)
        what = None  # the wrong argument
        if type(count) is not int or count < 1:
            what = "_count"
        elif type(block_ms) is not int or block_ms < 0:
            what = "block_ms"
        elif type(max_deliveries) is not int or max_deliveries < 1:
            what = "max_deliveries"
        if what is not None:
            raise ValueError(text(what))
        Link.__init__(self, handler, stream)  # paces re-dials and re-reads after failures: the first retry is immediate
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
        self._buf = []  # entries read and not handed over yet (at most count)
        self._dq = None  # entries read to be acknowledged instead (done before, deleted, poison): a list, rarely
        self._out = None  # the entry handed over and not done yet
        self._again = None  # its ID: the next read reads it again (the server counts the delivery)
        self._scan = True  # our own pending entries are read first, one at a time (after a start or a re-dial)
        self._cursor = (0, 0)  # that read goes on from entries above this ID
        self._group = False  # the group is known to exist
        self._applied = b"0-0"  # the highest ID done (persisted with path)
        # the commands of the steady state, made once (_ask and _mark put in the BLOCK time and the ID)
        self._rd = [b"XREADGROUP", b"GROUP", group, consumer, b"COUNT", count, b"STREAMS", stream, b">"]
        self._rdb = [b"XREADGROUP", b"GROUP", group, consumer, b"COUNT", count, b"BLOCK", 0, b"STREAMS", stream,
                     b">"]
        self._ack = [b"XACK", stream, group, None]
        if path is not None:
            self._applied = self._load(path)

    @property
    def pending(self):
        """Entries read from the stream and not done yet (in this inbox's hands)."""
        return len(self._buf) + (self._out is not None)

    # ---- reading --------------------------------------------------------------------------------------------
    def next(self, timeout_ms=0, client=None):
        """The next command (an Entry), or None once timeout_ms passed (0: what is there now). An entry handed over
        and not done() comes again first. client: read on this synchronous Client (the application's) instead of
        a connection of the handler's own."""
        e = self._ready()  # (the steady state: a small frame, on the C stack)
        if e is not None:
            return e
        return self._next(timeout_ms, client)

    def _next(self, timeout_ms, client):
        clock = self._clock
        start = clock.ticks_ms()
        while not self.blocked:
            e = self._ready()
            if e is not None:
                return e
            c = self._session(client, clock)
            n = -1
            if c is not None:
                try:
                    # one read: of new entries (_ask, _got), or what comes rarely (_slow); n 1: read on at once (what
                    # came is handed over first), 0: nothing came
                    w = self._ask(c, timeout_ms - clock.ticks_diff(clock.ticks_ms(), start))
                    n = _run(self._slow(c)) if w is None else self._got(w.wait())
                except Exception as e:
                    self._trouble(e)
                if self._bind(c) is None or n > 0:
                    continue  # re-dialled during the read (our pending entries first), or entries came: read on
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
            if left <= 0 or self.blocked:
                return None
            if n < 0:
                sleep_ms(max(1, min(left, self.wait_ms(clock), 1000)))  # the backoff, at most 1 s at a time
        return None

    def _ready(self):
        # The entry to hand over without reading, or None: the one not done goes back to the server first (the next
        # read reads it again, and the server counts the delivery); else the oldest one read
        o = self._out
        if o is not None:
            self._again = o.id
            self._out = None
        if self._again is not None or not self._buf or self.blocked:
            return None
        e = self._buf.pop(0)
        if e.deliveries > 1:
            self.redelivered += 1
        self._out = e
        return e

    def _rescan(self):
        # a new session: our own pending entries are read again from the first (what was read and not done)
        self._buf = []
        self._dq = None
        self._out = None
        self._again = None
        self._scan = True
        self._cursor = (0, 0)

    def _session(self, client, clock):
        # the client to read on: the application's, else our own, dialled when it is not live (within the backoff)
        c = client
        if c is None:
            c = self._c
            if c is None or c._conn is None or not c._conn.ok:
                return self._dial(clock)
        elif hasattr(c, "aclose") != self._aio:
            raise TypeError(text("client_kind", type(self).__name__, "an asyncio" if self._aio else "a synchronous"))
        self._bind(c)
        return c

    def _dial(self, clock):
        # our own client, dialled (None: not now, or it failed)
        if self.wait_ms(clock) > 0 and getattr(self._h, "retry_policy", None) is None:
            return None  # waits out the backoff (a handler with h.retry() paces its dials itself)
        try:
            c = self._c = self._connect()
        except Exception as e:
            self._trouble(e)
            return None
        self._bind(c)
        return c

    def _connect(self):
        # a client of our own on the handler's connection (the core is enough: the catalogue stays unloaded)
        from .client import CoreClient
        return self._h.connect(None, None, CoreClient)

    def _bind(self, c):
        # c when its connection is the session's; else (a new one, or a re-dial during the last read) None, and a
        # new session, which reads our pending entries first
        if c._conn is not self._cx:
            self._cx = c._conn
            self._rescan()
            return None
        return c

    async def _slow(self, c):
        # What a read needs rarely: the group made (at ID 0, so commands added before the board's first start
        # arrive; the stream too when missing), one of our own pending entries read (_pending), and the entries read
        # that are not handed over acknowledged (_drops). 1: read on
        if not self._group:
            w = c._cmd(None, (b"XGROUP", b"CREATE", self.stream, self.group, b"0", b"MKSTREAM"))
            try:
                w.wait() if hasattr(w, "wait") else await w
            except ReplyError as e:
                if e.code != "BUSYGROUP":
                    raise
            self._group = True
        if not self._dq and (self._again is not None or self._scan):
            await self._pending(c)
        if self._dq:
            await self._drops(c)
        return 1

    async def _pending(self, c):
        # One of our own pending entries with its delivery count (XPENDING, pipelined), first in _buf (or to the
        # drops): the entry not done (_again), else the next one above _cursor (the scan after a start or a re-dial,
        # over once none is left)
        again = self._again
        t = _id(again) if again is not None else self._cursor
        if again is not None:  # read from just below it
            t = (t[0], t[1] - 1) if t[1] else ((t[0] - 1, 0xFFFFFFFFFFFFFFFF) if t[0] else (0, 0))
        nxt = (t[0], t[1] + 1) if t[1] < 0xFFFFFFFFFFFFFFFF else (t[0] + 1, 0)
        s = self.stream
        g = self.group
        with c.pipeline():
            wr = c._cmd(None, (b"XREADGROUP", b"GROUP", g, self.consumer, b"COUNT", 1, b"STREAMS", s, _text(t)))
            wp = c._cmd(None, (b"XPENDING", s, g, _text(nxt), b"+", 1, self.consumer))
        try:
            es = _entries(wr.wait() if hasattr(wr, "wait") else await wr)
        except ReplyError:
            es = None  # (NOGROUP: XPENDING is refused the same way, and raises it)
        rows = wp.wait() if hasattr(wp, "wait") else await wp
        self._again = None
        if not es:
            self._scan = False  # nothing (more) pending: new entries now
            return
        e = _entry(es[0])
        if again is not None and e.id != again:
            return  # it is no longer pending (acknowledged meanwhile): on with the rest
        if again is None:
            self._cursor = _id(e.id)
        if rows and rows[0][0] == e.id:
            e.deliveries = rows[0][3]
        self._sort(e, True)

    def _ask(self, c, left):
        # Sends the read of new entries, BLOCK up to `left` ms and at most block_ms (none when 0), and gives what
        # to wait for (a Future; the asyncio client's awaitable); None when _slow() is due instead
        if not self._group or self._dq or self._again is not None or self._scan:
            return None
        b = left if left < self.block_ms else self.block_ms
        if b > 0:
            a = self._rdb
            a[7] = b
        else:
            a = self._rd
            b = 0
        return c._cmd(None, a, None, b)

    def _got(self, reply):
        # the reply of _ask's read: its entries to _buf (one at or below the applied ID, of a stream made again, to
        # the drops, which the next read acknowledges); 1 when any came
        es = _entries(reply)
        if not es:
            return 0
        for e in es:
            self._sort(_entry(e), False)
        return 1

    def _sort(self, e, first):
        # to _buf (first: before the rest, a pending entry read again), or to the drops: an entry done before (its
        # XACK was lost), deleted from the stream meanwhile, or delivered more than max_deliveries times
        if _after(e.id, self._applied) and e.fields is not None and e.deliveries <= self.max_deliveries:
            if first:
                self._buf.insert(0, e)
            else:
                self._buf.append(e)
            return
        if self._dq is None:
            self._dq = []
        self._dq.append(e)

    async def _drops(self, c):
        # the entries read that are not handed over: acknowledged (counted in skipped), a poison one added to the
        # dead-letter stream first (counted in dead). An error leaves the rest pending: they come again.
        q = self._dq
        while q:
            e = q[0]
            poison = _after(e.id, self._applied) and e.fields is not None
            if poison:
                args = [b"XADD", self.dead_letter, b"*"]
                f = e.fields
                for k in f:
                    args.append(k)
                    args.append(f[k])
                args.append(b"id")
                args.append(e.id)
                w = c._cmd(None, args)
                w.wait() if hasattr(w, "wait") else await w
            w = c._cmd(None, (b"XACK", self.stream, self.group, e.id))
            w.wait() if hasattr(w, "wait") else await w
            q.pop(0)
            if poison:
                self.dead += 1
            else:
                self.skipped += 1

    def _failed(self, e, clock):
        if getattr(e, "code", None) == "NOGROUP":
            self._group = False  # the stream or the group was deleted: created again on the next read
        Link._failed(self, e, clock)

    # ---- done -----------------------------------------------------------------------------------------------
    def done(self, entry, client=None):
        """The command was applied: "applied up to entry.id" goes to flash (with path), then the XACK. Never raises
        for network or storage trouble: an acknowledgement that did not go out is made when the entry comes again."""
        a = self._mark(entry)
        c = self._session(client, self._clock)
        if c is None:
            return
        try:
            c._cmd(None, a).wait()
        except Exception as e:
            self._trouble(e)  # the next session reads our pending entries again: this one is skipped then
            return
        self.note_success()

    def _mark(self, entry):
        # done() before the XACK: "applied up to entry.id" (on flash with path; an error goes to last_error); the
        # XACK's arguments
        t = entry.id
        if self._out is entry:
            self._out = None
        if _after(t, self._applied):
            self._applied = t
            if self.path is not None:
                self._persist(self.path, t)
        a = self._ack
        a[3] = t
        return a

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
        # an OSError goes to last_error (done() goes on with the XACK; the entry is skipped if it comes again before
        # a reboot)
        import os
        from .flash import record, sync, size, remove
        try:
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
        except OSError as e:
            self.last_error = e

    def __repr__(self):
        return "<Inbox %s pending=%d>" % (self.stream, self.pending)
