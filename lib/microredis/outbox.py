"""Outbox: store-and-forward readings for one stream, delivered exactly once and in order (see docs/SURVIVAL.md)."""
# Three parts: this delivery loop (a ring of pending readings, pump(), sessions, replies), the entry ID allocator
# (idalloc.py: which ID each reading is sent with) and, with a file, the journal (journal.py: the readings, ID runs
# and acknowledgements on flash). Accepted readings are never altered or lost silently: a reading whose record is
# damaged is counted in `dropped` (and `damaged`), a flash that refuses a write refuses the reading being added
# (add() raises the OSError) or is reported in last_error (pump() never raises for it), and whatever the journal lost,
# the stream's top entry tells which readings landed before anything is sent again.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

from .errors import RedisError, ReplyError, AuthenticationError, NoPermissionError, text
from .encoder import check
from .clock import sleep_ms
from .link import Link, parse_id
from .idalloc import Ids

_NUMBER = const(8)  # what an int or float field counts for against max_bytes
_ELSEWHERE = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")  # a cluster's answers for a stream it cannot serve now


def _nbytes(v):
    t = type(v)
    if t is int or t is float:
        return _NUMBER
    return len(v)


def _field(info, name):
    # XINFO STREAM: a dict with RESP3, a flat [key, value, ...] list with RESP2; str keys with decode_responses
    if type(info) is dict:
        v = info.get(name)
        return info.get(name.decode()) if v is None else v
    i = 0
    while i + 1 < len(info):
        k = info[i]
        if k == name or (type(k) is str and k == name.decode()):
            return info[i + 1]
        i += 2
    return None


def _same(flat, fields):
    # the stream entry's [field, value, ...] holds exactly this reading's fields (values as the server stores them)
    from .journal import as_bytes
    if type(flat) is not list or len(flat) != 2 * len(fields):
        return False
    want = {}
    for f in fields:
        want[as_bytes(f)] = as_bytes(fields[f])
    i = 0
    while i < len(flat):
        if want.get(as_bytes(flat[i])) != as_bytes(flat[i + 1]):
            return False
        i += 2
    return True


class Outbox(Link):
    """A bounded queue of readings for one stream. add() never touches the network; pump() delivers what it can
    and never raises for network or storage trouble (see last_error)."""

    def __init__(self, handler, stream, capacity=64, max_bytes=None, path=None, maxlen=None):
        check(stream)
        what = None  # the wrong argument
        if type(capacity) is not int or capacity < 1:
            what = "capacity"
        elif max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
            what = "max_bytes"
        elif maxlen is not None and (type(maxlen) is not int or maxlen < 1):
            what = "maxlen_none"
        if what is not None:
            raise ValueError(text(what))
        Link.__init__(self, handler, stream)  # paces dials and re-sends after failures: the first re-dial is immediate
        self.stream = stream
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.maxlen = maxlen
        self.path = path
        self.pending = 0
        self.dropped = 0  # readings lost: pushed out by capacity/max_bytes, or damaged on flash (see damaged)
        self.damaged = 0  # file mode: stretches of the log that did not check and were skipped
        self.delivered = 0  # acknowledged since this Outbox was made
        self.duplicates = 0  # readings found already in the stream (a lost reply, a lost acknowledgement)
        self.conflicts = 0  # IDs refused although never sent before: another writer on the stream
        self.compact_at = 4096  # file mode: rewrite the log once this many bytes of it are done
        self.id_refresh_ms = 60000 if path is not None else 1000
        # the ring of pending readings: the reading's dict (RAM) or its [k, offset, size] in the journal (file)
        self._items = [None] * capacity
        self._sizes = [0] * capacity  # what each counts against max_bytes
        self._head = 0
        self._bytes = 0
        self._k = 0  # number of the oldest pending reading; with none pending, of the next one
        self._next = 0  # number of the next reading added (numbers never repeat; with a file, across reboots)
        self._ids = Ids()
        self._dials = 0  # connect() calls in this pump()
        self._stopped = False  # the last round ended on an error
        self._found = 0  # readings found in the stream when a session started (pump() counts them as acknowledged)
        self._log = None
        if path is not None:
            self._open_log()

    @property
    def added(self):
        """Readings added over the outbox's life (with a file: across reboots), dropped ones included."""
        return self._next

    @property
    def flash_writes(self):
        """File mode: appends and rewrites made (each one a write + flush + sync)."""
        return self._log.writes if self._log is not None else 0

    # ---- the ring -------------------------------------------------------------------------------------------
    def _slot(self, j):
        i = self._head + j
        return i - self.capacity if i >= self.capacity else i

    def _k_at(self, j):
        if self._log is None:
            return self._k + j
        return self._items[self._slot(j)][0]

    def _pop(self):
        # the oldest pending reading leaves the ring (done or dropped)
        h = self._head
        self._items[h] = None
        self._bytes -= self._sizes[h]
        self._head = 0 if h + 1 == self.capacity else h + 1
        self.pending -= 1
        if not self.pending:
            self._k = self._next
        elif self._log is None:
            self._k += 1
        else:
            self._k = self._items[self._head][0]
        self._ids.prune(self._k)

    # ---- adding ---------------------------------------------------------------------------------------------
    def add(self, fields):
        """Queue one reading ({field: value}); when full, the oldest is dropped (and counted in .dropped).
        File mode: an OSError from the flash (full, failing) refuses this reading and changes nothing else."""
        if type(fields) is not dict:
            raise TypeError(text("fields"))
        if not fields:
            raise ValueError(text("fields"))
        size = 0
        for k in fields:
            v = fields[k]
            check(k)
            check(v)
            size += _nbytes(k) + _nbytes(v)
        item = fields
        log = self._log
        if log is not None:
            from .journal import reading_record
            rec = reading_record(self._next, fields)
            size = len(rec)
        mb = self.max_bytes
        if mb is not None and size > mb:
            raise ValueError(text("size", size))
        if log is not None:
            item = [self._next, log.append(rec), size]  # on flash first: a refused write leaves the ring as it was
        while self.pending and (self.pending == self.capacity or (mb is not None and self._bytes + size > mb)):
            self._pop()
            self.dropped += 1
            if log is not None:
                self._persist_done()
        i = self._slot(self.pending)
        self._items[i] = item  # pyright: ignore[reportCallIssue, reportArgumentType]  (a slot list made of None)
        self._sizes[i] = size
        self._bytes += size
        self.pending += 1
        if self.pending == 1:
            self._k = self._next
        self._next += 1

    # ---- delivering -----------------------------------------------------------------------------------------
    def pump(self, timeout_ms=0, client=None):
        """Send pending readings, pipelined, and return how many were acknowledged in this call. timeout_ms=0: one
        attempt (at most one dial and one reply timeout per failure); more: keep retrying, sleeping through the
        backoff, until empty or the time is up. Network and storage trouble end up in last_error, never raised.
        client: send on this synchronous Client (the application's, from the same handler; RESP3 if it is
        subscribed) instead of taking the handler's connection, so commands, a subscription and the outbox share
        one connection; it re-dials by itself with h.retry()."""
        if client is not None and (not hasattr(client, "pipeline") or hasattr(client, "aclose")):
            raise TypeError(text("client_kind", "Outbox", "a synchronous"))
        clock = self._clock
        start = clock.ticks_ms()
        done = 0
        self._dials = 0
        self._found = 0
        while self.pending and not self.blocked:
            if not timeout_ms and self._dials and self._c is None:
                break  # one dial per pump(0): a main loop waits at most one dial + handshake, then its replies
            c = self._session(clock) if client is None else self._on(client, clock)
            if c is not None:
                self._stopped = False
                n = self._round(c)
                if n > 0:
                    done += n
                if n >= 0 and not self._stopped:
                    self.note_success()
                    continue
            if not timeout_ms or self.blocked:
                break
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
            if left <= 0:
                break
            sleep_ms(max(1, min(left, self.wait_ms(clock), 1000)))
        if self._log is not None:
            self._maybe_compact()
        return done + self._found

    def _on(self, c, clock):
        # the application's client: a new session when its connection is not the one the last session was on (the
        # first command re-dials a broken client that has h.retry(); the session starts on what it dialed)
        if self.wait_ms(clock) > 0:
            return None
        self._c = c
        if c._conn is None or c._conn is not self._cx or not c._conn.ok or self._ids.base_ms < 0:
            self._dials += 1
            self._ids.session()
            try:
                self._learn(c, clock)
                self._cx = c._conn  # (Link's: the connection the session is on)
            except Exception as e:
                return self._trouble(e)
        return c

    def _session(self, clock):
        # our client on a live connection, dialing (within the backoff) and learning the stream's top when needed
        c = self._c
        live = c is not None and c._conn is not None and c._conn is self._cx and c._conn.ok
        # Between failed attempts: wait out the backoff. A handler with its own retry policy (h.retry()) paces
        # the re-dials itself (its connect() fails fast between attempts), so only reply errors are paced here.
        if self.wait_ms(clock) > 0 and (live or getattr(self._h, "retry_policy", None) is None):
            return None
        if live:
            return c
        self._c = None
        self._dials += 1
        try:
            from .client import CoreClient
            c = self._h.connect(None, None, CoreClient)  # the core is enough: the command catalogue stays unloaded
            self._c = c
            if c._conn is not self._cx or self._ids.base_ms < 0:
                # A new connection: a new session (the stream's top, a new run). The same connection handed back
                # after the application's own h.connect() keeps the session: no round trip but the XADDs.
                self._ids.session()
                self._cx = c._conn
                self._learn(c, clock)
        except Exception as e:
            return self._trouble(e)
        return self._c

    def _learn(self, c, clock):
        # TIME and XINFO STREAM in one round trip. A user whose ACL allows only XADD still works: the IDs then
        # continue from the last one handed out (their ms part is not the server's time).
        with c.pipeline():
            ft = c.command(b"TIME")
            fx = c.command(b"XINFO", b"STREAM", self.stream)
        ms = 0
        try:
            t = ft.wait()
            ms = int(t[0]) * 1000 + int(t[1]) // 1000
        except AuthenticationError:
            raise
        except ReplyError:
            pass
        top = None
        entry = None
        try:
            info = fx.wait()
            v = _field(info, b"last-generated-id")
            if v is not None:
                top = parse_id(v)
                entry = _field(info, b"last-entry")
        except AuthenticationError:
            raise
        except ReplyError as e:
            if e.code in _ELSEWHERE:
                raise  # a cluster node that does not hold the stream now: no session here
            # (else no such key yet, or XINFO refused by the ACL)
        if top is not None:
            self._recover(top, entry)
        self._ids.learn(ms, top[0] if top else 0, top[1] if top else 0, clock.ticks_ms())

    def _recover(self, top, entry):
        # What the stream's top says about our pending readings, before anything is sent again. The sequence part
        # of our IDs is the reading's number: if the top entry is our reading number top[1] (its fields match our
        # copy), every pending reading up to it landed (a lost reply, a lost acknowledgement, a lost run record).
        # A pending reading numbered above the top whose ID is at or below it never landed (if the top is ours, it
        # landed last; if not, that ID can never land): it gets a new ID.
        ids = self._ids
        s = top[1]
        ours = ids.first_ms and top[0] >= ids.first_ms  # an ID at or above our first run's could be ours
        if ours and self._log is not None and s >= self._next:
            self._next = s + 1  # a cut log forgot numbers the stream holds: new readings never reuse them
            if not self.pending:
                self._k = self._next
        if ours and type(entry) is list and len(entry) == 2 and \
                self.pending and self._k <= s < ids.sent and parse_id(entry[0]) == top:
            j = 0
            while j < self.pending and self._k_at(j) < s:
                j += 1
            if j < self.pending and self._k_at(j) == s:
                f = self._fields(j)
                if f is not None and _same(entry[1], f):
                    for _ in range(j + 1):
                        self._pop()
                        self.duplicates += 1
                        self.delivered += 1
                        self._found += 1
                    self._persist_done()
        for j in range(self.pending):
            k = self._k_at(j)
            if k >= ids.sent:
                break
            ms = ids.ms_of(k)
            if k > s and (ms < 0 or (ms, k) <= top):
                ids.rerun(k)
                break

    def _fields(self, j):
        # the fields of the j-th pending reading (None: its record on flash is damaged)
        item = self._items[self._slot(j)]
        if self._log is None:
            return item
        try:
            f = self._log.reader()
            try:
                return self._log.read(f, item[1], item[0])
            finally:
                f.close()
        except OSError:
            return None

    def _round(self, c):
        # one pipelined batch of up to frame_capacity readings: acknowledged count, or -1 when it failed
        n = min(self.pending, c._cap)
        if not n:
            return 0  # the session's start found them all in the stream
        ids = self._ids
        clock = self._clock
        futs = []
        ks = []
        try:
            if self._k_at(n - 1) >= ids.sent and (not ids.made or clock.ticks_diff(
                    clock.ticks_ms(), ids.run_at) >= self.id_refresh_ms):
                self._make_run(clock)
            rd = self._log.reader() if self._log is not None else None
            try:
                with c.pipeline():
                    for j in range(n):
                        k = self._k_at(j)
                        item = self._items[self._slot(j)]
                        if rd is not None:
                            item = self._log.read(rd, item[1], k)
                            if item is None:  # damaged on flash since it was written: lost, and said so
                                if j == 0:
                                    self._lose_head()
                                break  # the batch ends before it; the next round drops it at the head
                        ms = ids.ms_of(k)
                        args = [b"XADD", self.stream]
                        if self.maxlen is not None:
                            args.append(b"MAXLEN")
                            args.append(b"~")
                            args.append(self.maxlen)
                        args.append("%d-%d" % (ms, k))
                        for f in item:
                            args.append(f)
                            args.append(item[f])
                        futs.append(c.command(*args))
                        ks.append(k)
                        ids.handed(k, ms)
            finally:
                if rd is not None:
                    rd.close()
        except Exception as e:
            self._trouble(e)
            return -1
        if not futs:
            return 0
        return self._collect(c, futs, ks)

    def _lose_head(self):
        self.last_error = OSError(5, text("_lose_head", self._k))
        self._pop()
        self.dropped += 1
        self.damaged += 1
        self._persist_done()

    def _make_run(self, clock):
        # a run from the first reading never sent, on flash before its first XADD leaves (OSError: nothing is sent)
        ids = self._ids
        k0 = ids.sent
        ms = ids.next_run(k0, clock)
        log = self._log
        if log is not None:
            if not ids.first_ms:
                self._rewrite(k0, ms)  # the first run of the log's life goes into its header: see _rewrite
            else:
                from .journal import run
                log.append(run(k0, ms))
        ids.add_run(k0, ms, clock.ticks_ms())

    def _collect(self, c, futs, ks):
        # Replies in order. A reading is done when it is acknowledged, or refused as "equal or smaller" while its
        # ID was given on an earlier connection (its first XADD landed, the reply was lost). A reading refused for
        # another reason stays pending, unless a later one of the batch was accepted: then its ID can never be
        # used again, so it is dropped and counted (last_error says why).
        ids = self._ids
        n = len(futs)
        st = bytearray(n)  # 1: done; 0: not done
        last_ok = -1
        stop = None
        for j in range(n):
            try:
                futs[j].wait()
                st[j] = 1
            except (AuthenticationError, NoPermissionError) as e:
                if stop is None:
                    stop = e
                self._stop(e)
            except ReplyError as e:
                if "equal or smaller" in e.message and (not ids.made or ks[j] < ids.fresh):
                    st[j] = 1
                    self.duplicates += 1
                elif stop is None:
                    stop = e
                    self.last_error = e
                    if "equal or smaller" in e.message:
                        # another writer is ahead of our IDs: a new session learns the top and makes a new run
                        self.conflicts += 1
                        ids.rerun(ks[j])
                        self._cx = None
                    elif e.code == "READONLY" or e.code == "MASTERDOWN" or e.code == "LOADING":
                        self._drop_session(c)  # a replica after a failover: dial again (Sentinel finds the master)
                    self._failed(e, self._clock)
            except (RedisError, OSError) as e:
                if stop is None:
                    stop = e
                    self._failed(e, self._clock)
            if st[j]:
                last_ok = j
        acked = 0
        for j in range(last_ok + 1):
            if st[j]:
                acked += 1
                self.delivered += 1
            else:
                self.dropped += 1
            self._pop()
        if last_ok >= 0:
            self._persist_done()
        self._stopped = stop is not None
        if stop is not None and acked == 0:
            return -1
        return acked

    def _drop_session(self, c):
        self._c = None
        self._cx = None
        try:
            self._h.disconnect()
        except Exception:
            pass

    # ---- file backing ---------------------------------------------------------------------------------------
    def _persist_done(self):
        # "readings below _k are done" on flash. Failing is harmless (after a reboot those readings are found in
        # the stream, or re-sent under their IDs and recognised): reported, never raised.
        if self._log is None:
            return
        from .journal import done
        try:
            self._log.append(done(self._k))
        except OSError as e:
            self.last_error = e

    def _open_log(self):
        from .journal import Journal
        log = Journal(self.path)
        found = log.load()
        if found is None:
            from .journal1 import convert
            convert(self.path, log)
            found = log.load()
        ids = self._ids
        for r in log.runs:  # a later run replaces those from its first reading on (as Ids.add_run does)
            while ids.runs and ids.runs[-1][0] >= r[0]:
                ids.runs.pop()
            ids.runs.append(r)
        ids.last_ms = log.last_ms
        ids.last_seq = log.last_seq
        ids.first_ms = log.first_ms
        rs = log.readings
        kend = rs[-1][0] + 1 if rs else log.done
        if kend < log.done:
            kend = log.done
        self._k = self._next = kend
        self.damaged = log.damaged
        self.dropped = log.lost
        if log.damaged:
            self.last_error = OSError(5, text("damaged", log.damaged, self.path, log.lost))
        skip = len(rs) - self.capacity
        if skip > 0:  # more than capacity waiting (capacity was lowered): the oldest go
            del rs[:skip]
            self.dropped += skip
        for j in range(len(rs)):
            self._items[j] = rs[j]
            self._sizes[j] = rs[j][2]
            self._bytes += rs[j][2]
        self.pending = len(rs)
        if rs:
            self._k = rs[0][0]
        # every reading in the log may have gone out under the runs' IDs: keep them (the top decides, see _recover)
        ids.sent = kend if ids.runs else self._k
        if kend > 0:
            ms = ids.ms_of(kend - 1)
            if ms >= 0:
                ids.handed(kend - 1, ms)
        ids.prune(self._k)
        log.readings = None  # pyright: ignore[reportAttributeAccessIssue]  (journal.py declares it)
        self._log = log
        if not found or log.torn or log.damaged or skip > 0:
            try:
                self._rewrite(-1, 0)  # a clean log: torn tail and damaged stretches gone, the header up to date
            except OSError as e:
                self.last_error = e  # a full flash: appends go after the bad bytes, which the scan skips

    def _maybe_compact(self):
        first = self._log.size if self.pending == 0 else self._items[self._head][1]
        if first >= self.compact_at or self._log.dirty:
            try:
                self._rewrite(-1, 0)
            except OSError as e:
                self.last_error = e

    def _rewrite(self, k0, ms):
        # The pending readings and the runs that give their IDs into a new log (header first), renamed over the old
        # one. With k0 >= 0 a new run (k0, ms) is included: the first run of a log's life is written this way, so it
        # is in the header (ms of the first run: from then on readings may be in the stream) before any reading it
        # numbers is sent, and no cut of the file can keep those readings while losing it.
        from .journal import head
        ids = self._ids
        log = self._log
        k = self._k
        runs = [r for r in ids.runs if r[0] >= k]
        m = ids.ms_of(k)
        if m >= 0 and (not runs or runs[0][0] > k):
            runs.insert(0, [k, m])
        first = ids.first_ms
        if k0 >= 0:
            while runs and runs[-1][0] >= k0:
                runs.pop()
            runs.append([k0, ms])
            if not first:
                first = ms
        items = []
        for j in range(self.pending):
            items.append(self._items[self._slot(j)])
        src = log.reader() if self.pending else None
        try:
            log.rewrite(head(k, ids.last_ms, ids.last_seq, first), runs, src, items, len(items))
        finally:
            if src is not None:
                src.close()

    def close(self):
        """Close the log file (file mode). Pending readings stay in it for the next Outbox on the same path."""
        if self._log is not None:
            self._log.close()

    def __repr__(self):
        return "<Outbox pending=%d dropped=%d>" % (self.pending, self.dropped)
