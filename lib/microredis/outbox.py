"""Outbox: store-and-forward readings for one stream, delivered exactly once and in order (see docs/SURVIVAL.md)."""
# Exactly once without a clock on the board: every reading gets an explicit XADD entry ID, fixed the first time it is
# sent and kept for every re-send. IDs come in "runs": a run (k0, ms, s0) gives reading number k >= k0 the ID
# ms-(s0 + k - k0), until the next run. One run is made per connection, from max(server TIME, the stream's
# last-generated-id, the last ID we handed out) + 1, so IDs rise across reconnects and reboots. A re-sent reading
# whose earlier XADD landed (its reply lost) is refused by the server as "equal or smaller than the target stream
# top item": that refusal is its acknowledgement. With a file, each run is on flash before its first XADD leaves.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

import struct

from .errors import RedisError, ReplyError, AuthenticationError, NoPermissionError
from .encoder import check
from .clock import sleep_ms

_MAGIC = const(0xA5)
_HDR = const(4)  # magic, type, length (2 bytes LE)
_OVER = const(6)  # header + 2-byte checksum
_NUMBER = const(8)  # what an int or float field counts for against max_bytes


def _nbytes(v):
    t = type(v)
    if t is int or t is float:
        return _NUMBER
    return len(v)


def _chk(buf, n):
    # Fletcher-16: catches a record cut short by a power loss, and is the same on every port (no binascii needed)
    a = 0
    b = 0
    i = 0
    while i < n:
        a = (a + buf[i]) % 255
        b = (b + a) % 255
        i += 1
    return (b << 8) | a


def _b(v):
    t = type(v)
    if t is bytes:
        return v
    if t is str:
        return v.encode()
    if t is float:
        return repr(v).encode()  # as the encoder sends it
    if t is int:
        return str(v).encode()
    return bytes(v)


def _record(typ, payload):
    n = len(payload)
    out = bytearray(_OVER + n)
    out[0] = _MAGIC
    out[1] = typ
    out[2] = n & 0xFF
    out[3] = n >> 8
    out[4:4 + n] = payload
    c = _chk(out, _HDR + n)
    out[_HDR + n] = c & 0xFF
    out[_HDR + n + 1] = c >> 8
    return out


def _encode(fields):
    if len(fields) > 255:
        raise ValueError("a file-backed reading holds at most 255 fields")
    parts = [bytes([len(fields)])]
    for k in fields:
        for x in (k, fields[k]):
            x = _b(x)
            if len(x) > 0xFFFF:
                raise ValueError("a file-backed reading's field or value must be under 64 KiB")
            parts.append(struct.pack("<H", len(x)))
            parts.append(x)
    p = b"".join(parts)
    if len(p) > 0xFFFF:
        raise ValueError("a file-backed reading must be under 64 KiB")
    return p


def _decode(p):
    d = {}
    n = p[0]
    i = 1
    for _ in range(n):
        kl = p[i] | (p[i + 1] << 8)
        k = bytes(p[i + 2:i + 2 + kl])
        i += 2 + kl
        vl = p[i] | (p[i + 1] << 8)
        d[k] = bytes(p[i + 2:i + 2 + vl])
        i += 2 + vl
    return d


def _exists(path):
    import os
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    import os
    try:
        os.remove(path)
    except OSError:
        pass


def _sync(f):
    f.flush()
    import os
    fs = getattr(os, "fsync", None)
    if fs is not None and hasattr(f, "fileno"):
        fs(f.fileno())  # CPython: just this file (os.sync would flush every file system)
    else:
        s = getattr(os, "sync", None)
        if s is not None:
            s()


def _parse_id(v):
    if type(v) is str:
        v = v.encode()
    d = v.find(b"-")
    if d < 0:
        return int(v), 0
    return int(v[:d]), int(v[d + 1:])


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


class Outbox:
    """A bounded queue of readings for one stream. add() never blocks and never touches the network; pump()
    delivers what it can and never raises for network trouble (see last_error)."""

    def __init__(self, handler, stream, capacity=64, max_bytes=None, path=None, maxlen=None):
        check(stream)
        if type(capacity) is not int or capacity < 1:
            raise ValueError("capacity must be an int >= 1")
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 1):
            raise ValueError("max_bytes must be None or an int >= 1")
        if maxlen is not None and (type(maxlen) is not int or maxlen < 1):
            raise ValueError("maxlen must be None or an int >= 1")
        self._h = handler
        self.stream = stream
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.maxlen = maxlen
        self.path = path
        self.pending = 0
        self.dropped = 0
        self.delivered = 0  # acknowledged since this Outbox was made
        self.duplicates = 0  # re-sends the server recognised as already there (their first reply was lost)
        self.conflicts = 0  # IDs refused although never sent before: another writer on the stream
        self.last_error = None
        self.blocked = False  # an AuthenticationError/NoPermissionError stops delivery until resume()
        self.backoff_ms = 500
        self.max_backoff_ms = 30000
        self.jitter = True
        self.compact_at = 4096  # file mode: rewrite the log once this many bytes of it are acknowledged
        self.flash_writes = 0  # file mode: appends and rewrites made (each one a write + flush + sync)
        # the ring: fields (RAM) or log offsets (file), and sizes counted against max_bytes
        self._f = [None] * capacity
        self._sz = [0] * capacity
        self._head = 0
        self._bytes = 0
        self._k = 0  # reading number of the oldest pending reading (numbers never repeat, even across reboots)
        self._ksent = 0  # readings below this number may have been sent: their IDs are fixed
        self._runs = []  # [k0, ms, s0], ascending
        self._last = (0, 0)  # the highest ID handed to a sent reading
        self._c = None
        self._cx = None  # the connection our client was made on: another one means a new session
        self._run_made = False  # a run was made for this session (its readings are "fresh")
        self._fresh = -1  # k0 of this session's first run: readings from it on were first sent on this connection
        self._fresh_valid = False
        self._base_at = 0
        self._run_at = 0
        self.id_refresh_ms = 60000 if path is not None else 1000
        self._base = None  # (ms, seq): the lowest ID a new run may start at, learnt at the session's start
        self._fails = 0
        self._dials = 0  # connect() calls in this pump()
        self._stopped = False  # the last round ended on an error
        self._fail_at = 0
        self._delay = 0
        self._clock = None
        self._fa = None  # file mode: the log, open for appending
        self._logn = 0  # its size
        if path is not None:
            self._open_files()

    @property
    def added(self):
        """Readings added over the outbox's life (with a file: across reboots), dropped ones included."""
        return self._k + self.pending

    # ---- adding ---------------------------------------------------------------------------------------------
    def add(self, fields):
        """Queue one reading ({field: value}); when full, the oldest is dropped (and counted in .dropped)."""
        if type(fields) is not dict:
            raise TypeError("a reading is a dict {field: value}")
        if not fields:
            raise ValueError("a reading needs at least one field")
        size = 0
        for k in fields:
            v = fields[k]
            check(k)
            check(v)
            size += _nbytes(k) + _nbytes(v)
        item = fields
        if self._fa is not None:
            rec = _record(82, _encode(fields))  # "R"
            size = len(rec)
            item = self._logn
        mb = self.max_bytes
        if mb is not None and size > mb:
            raise ValueError("the reading (%d bytes) is larger than max_bytes" % size)
        while self.pending and (self.pending == self.capacity or (mb is not None and self._bytes + size > mb)):
            self._drop()
        if self._fa is not None:
            self._append(rec)
        i = self._head + self.pending
        if i >= self.capacity:
            i -= self.capacity
        self._f[i] = item
        self._sz[i] = size
        self._bytes += size
        self.pending += 1

    def _drop(self):
        h = self._head
        self._f[h] = None
        self._bytes -= self._sz[h]
        self._head = 0 if h + 1 == self.capacity else h + 1
        self.pending -= 1
        self._k += 1
        self.dropped += 1
        if self._fa is not None:
            self._write_cursor()

    # ---- delivering -----------------------------------------------------------------------------------------
    def resume(self):
        """After fixing credentials or ACLs: let pump() try again."""
        self.blocked = False
        self._fails = 0

    def pump(self, timeout_ms=0):
        """Send pending readings, pipelined, and return how many were acknowledged in this call. timeout_ms=0: one
        attempt (at most one dial and one reply timeout per failure); more: keep retrying, sleeping through the
        backoff, until empty or the time is up. Network trouble ends up in last_error, never raised."""
        clock = self._clock
        if clock is None:
            clock = self._clock = getattr(self._h, "_clock", None)
            if clock is None:
                from .clock import default_clock
                clock = self._clock = default_clock()
        start = clock.ticks_ms()
        done = 0
        self._dials = 0
        while self.pending and not self.blocked:
            if not timeout_ms and self._dials and self._c is None:
                break  # one dial per pump(0): a main loop waits at most one dial + handshake, then its replies
            c = self._session(clock)
            if c is not None:
                self._stopped = False
                n = self._round(c)
                if n > 0:
                    done += n
                if n >= 0 and not self._stopped:
                    self._fails = 0
                    continue
            if not timeout_ms or self.blocked:
                break
            left = timeout_ms - clock.ticks_diff(clock.ticks_ms(), start)
            if left <= 0:
                break
            wait = self._delay - clock.ticks_diff(clock.ticks_ms(), self._fail_at)
            sleep_ms(max(1, min(left, wait, 1000)))
        if self._fa is not None:
            self._maybe_compact()
        return done

    def _session(self, clock):
        # our client on a live connection, dialing (within the backoff) and learning the ID base when needed
        c = self._c
        live = c is not None and c._conn is not None and c._conn is self._cx and c._conn.ok
        # Between failed attempts: wait out the backoff. A handler with its own retry policy (h.retry()) paces
        # the re-dials itself (its connect() fails fast between attempts), so only reply errors are paced here.
        if self._fails and clock.ticks_diff(clock.ticks_ms(), self._fail_at) < self._delay and \
                (live or getattr(self._h, "retry_policy", None) is None):
            return None
        if live:
            return c
        self._c = None
        self._run_made = False
        self._fresh_valid = False
        self._base = None
        self._dials += 1
        try:
            from .client import CoreClient
            c = self._h.connect(None, None, CoreClient)  # the core is enough: the command catalogue stays unloaded
            self._c = c
            self._cx = c._conn
            self._learn_base(c)
        except (AuthenticationError, NoPermissionError) as e:
            return self._stop(e)
        except (RedisError, OSError) as e:
            self._failed(e, clock)
            return None
        return self._c

    def _learn_base(self, c):
        # TIME and XINFO STREAM in one round trip. A user whose ACL allows only XADD still works: the IDs then
        # continue from the last one handed out (their ms part is not the server's time).
        with c.pipeline():
            ft = c._cmd(0, (b"TIME",))
            fx = c._cmd(0, (b"XINFO", b"STREAM", self.stream))
        ms = 0
        try:
            t = ft.wait()
            ms = int(t[0]) * 1000 + int(t[1]) // 1000
        except AuthenticationError:
            raise
        except ReplyError:
            pass
        top = (0, 0)
        try:
            info = fx.wait()
            v = _field(info, b"last-generated-id")
            if v is not None:
                top = _parse_id(v)
        except AuthenticationError:
            raise
        except ReplyError:
            pass  # no such key yet, or XINFO refused by the ACL
        base = (ms, 0)
        if top >= base:
            base = (top[0], top[1] + 1)
        last = self._last
        if last >= base:
            base = (last[0], last[1] + 1)
        self._base = base
        self._base_at = self._clock.ticks_ms()

    def _stop(self, e):
        self.last_error = e
        self.blocked = True
        self._c = None
        return None

    def _failed(self, e, clock):
        self.last_error = e
        self._c = None
        self._fails += 1
        f = self._fails
        # the first re-dial is immediate; then backoff_ms, doubling up to max_backoff_ms
        d = 0 if f < 2 else min(self.backoff_ms << min(f - 2, 16), self.max_backoff_ms)
        if d and self.jitter:
            d = d // 2 + _rand(d // 2 + 1, clock)
        self._delay = d
        self._fail_at = clock.ticks_ms()

    def _id(self, k):
        runs = self._runs
        i = len(runs) - 1
        while i >= 0:
            r = runs[i]
            if r[0] <= k:
                return r[1], r[2] + k - r[0]
            i -= 1
        return None

    def _make_run(self):
        # a run from the first reading that was never sent, on flash before its first XADD: one per connection,
        # and a new one every id_refresh_ms (its ms follows the server's clock, estimated with ticks)
        k0 = self._ksent
        ms, s0 = self._base
        el = self._clock.ticks_diff(self._clock.ticks_ms(), self._base_at)
        if el > 0:
            ms += el
            s0 = 0
        prev = self._id(k0 - 1) if k0 > 0 else None
        if prev is not None and prev >= (ms, s0):
            ms, s0 = prev[0], prev[1] + 1
        if self._fa is not None:
            self._append(_record(73, struct.pack("<QQQ", k0, ms, s0)))  # "I"
        runs = self._runs
        while runs and runs[-1][0] >= k0:
            runs.pop()
        runs.append([k0, ms, s0])
        self._run_made = True
        self._run_at = self._clock.ticks_ms()
        if self._fresh < 0 or not self._fresh_valid:
            self._fresh = k0
            self._fresh_valid = True

    def _round(self, c):
        # one pipelined batch of up to frame_capacity readings: acknowledged count, or -1 when it failed
        n = min(self.pending, c._cap)
        futs = []
        ks = self._k
        runs = self._runs
        while len(runs) > 1 and runs[1][0] <= ks:  # runs of readings done or dropped
            runs.pop(0)
        try:
            if ks + n > self._ksent and (not self._run_made or self._clock.ticks_diff(
                    self._clock.ticks_ms(), self._run_at) >= self.id_refresh_ms):
                self._make_run()
            rd = self._reader()
            try:
                with c.pipeline():
                    i = self._head
                    for j in range(n):
                        k = ks + j
                        ms, sq = self._id(k)
                        item = self._f[i]
                        if rd is not None:
                            item = self._read_at(rd, item)
                        args = [b"XADD", self.stream]
                        if self.maxlen is not None:
                            args.append(b"MAXLEN")
                            args.append(b"~")
                            args.append(self.maxlen)
                        args.append("%d-%d" % (ms, sq))
                        for f in item:
                            args.append(f)
                            args.append(item[f])
                        futs.append(c._cmd(0, args))
                        if k >= self._ksent:
                            self._ksent = k + 1
                        if (ms, sq) > self._last:
                            self._last = (ms, sq)
                        i = 0 if i + 1 == self.capacity else i + 1
            finally:
                if rd is not None:
                    rd.close()
        except (AuthenticationError, NoPermissionError) as e:
            return self._stop(e) or -1
        except (RedisError, OSError) as e:
            self._failed(e, self._clock)
            return -1
        return self._collect(c, futs, ks)

    def _collect(self, c, futs, ks):
        # Replies in order. A reading is done when it is acknowledged, or refused as "equal or smaller" while its
        # ID was given on an earlier connection (its first XADD landed, the reply was lost). A reading refused for
        # another reason stays pending, unless a later one of the batch was accepted: then its ID can never be
        # used again, so it is dropped and counted (last_error says why).
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
                if "equal or smaller" in e.message and (not self._run_made or ks + j < self._fresh):
                    st[j] = 1
                    self.duplicates += 1
                elif stop is None:
                    stop = e
                    self.last_error = e
                    if "equal or smaller" in e.message:
                        # another writer is ahead of our IDs: a new connection learns the top and makes a new run
                        self.conflicts += 1
                        self._ksent = ks + j
                        self._drop_session(c)
                        self._failed(e, self._clock)
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
            self._done_one()
        if last_ok >= 0 and self._fa is not None:
            self._write_cursor()
        self._stopped = stop is not None
        if stop is not None and acked == 0:
            return -1
        return acked

    def _drop_session(self, c):
        self._c = None
        try:
            self._h.disconnect()
        except Exception:
            pass

    def _done_one(self):
        h = self._head
        self._f[h] = None
        self._bytes -= self._sz[h]
        self._head = 0 if h + 1 == self.capacity else h + 1
        self.pending -= 1
        self._k += 1
        runs = self._runs
        while len(runs) > 1 and runs[1][0] <= self._k:
            runs.pop(0)

    # ---- file backing ---------------------------------------------------------------------------------------
    # Log `path`: records MAGIC TYPE LEN(2) PAYLOAD CHK(2). TYPE "H" (first record: first reading number and last ID
    # handed out, u64 each), "R" (a reading), "I" (an ID run: k0, ms, s0). Cursor `path + ".cur"`: 10-byte records
    # (readings done up to this number, u64; checksum); the last whole one counts.
    def _append(self, rec):
        f = self._fa
        f.write(rec)
        _sync(f)
        self._logn += len(rec)
        self.flash_writes += 1

    def _write_cursor(self):
        p = struct.pack("<Q", self._k)
        c = _chk(p, 8)
        with open(self.path + ".cur", "ab") as f:
            f.write(p + bytes([c & 0xFF, c >> 8]))
            _sync(f)
        self.flash_writes += 1

    def _reader(self):
        if self._fa is None:
            return None
        return open(self.path, "rb")

    def _read_at(self, f, off):
        f.seek(off)
        h = f.read(_HDR)
        n = h[2] | (h[3] << 8)
        return _decode(f.read(n))

    def _open_files(self):
        path = self.path
        tmp = path + ".tmp"
        if not _exists(path) and _exists(tmp):
            import os
            os.rename(tmp, path)  # a rewrite finished its file but was cut before the rename
        _remove(tmp)
        done = 0
        try:
            with open(path + ".cur", "rb") as f:
                data = f.read()
            i = 0
            while i + 10 <= len(data):
                c = _chk(data[i:i + 8], 8)
                if data[i + 8] == c & 0xFF and data[i + 9] == c >> 8:
                    done = struct.unpack("<Q", data[i:i + 8])[0]
                i += 10
        except OSError:
            pass
        kfirst = 0
        offs = []
        sizes = []
        good = 0
        torn = False
        try:
            f = open(path, "rb")
        except OSError:
            f = None
        if f is not None:
            # record by record: the boot never holds more than one record in RAM
            with f:
                i = 0
                k = 0
                while True:
                    h = f.read(_HDR)
                    if not h:
                        break
                    if len(h) < _HDR or h[0] != _MAGIC:
                        torn = True
                        break
                    n = h[2] | (h[3] << 8)
                    rest = f.read(n + 2)
                    if len(rest) < n + 2:
                        torn = True
                        break
                    c = _chk(h + rest, _HDR + n)
                    if rest[n] != c & 0xFF or rest[n + 1] != c >> 8:
                        torn = True
                        break
                    typ = h[1]
                    p = rest[:n]
                    end = i + _OVER + n
                    if typ == 72 and i == 0:  # "H"
                        kfirst, lm, ls = struct.unpack("<QQQ", p)
                        k = kfirst
                        self._last = (lm, ls)
                    elif typ == 73:  # "I"
                        k0, ms, s0 = struct.unpack("<QQQ", p)
                        self._runs.append([k0, ms, s0])
                    elif typ == 82:  # "R"
                        if k >= done:
                            offs.append(i)
                            sizes.append(end - i)
                        k += 1
                    else:
                        torn = True
                        break
                    i = end
                    good = end
            kend = k
        else:
            kend = 0
        self._k = max(done, kfirst)
        skip = len(offs) - self.capacity
        if skip > 0:  # more than capacity waiting (capacity was lowered): the oldest go
            offs = offs[skip:]
            sizes = sizes[skip:]
            self._k += skip
            self.dropped += skip
        for j in range(len(offs)):
            self._f[j] = offs[j]
            self._sz[j] = sizes[j]
            self._bytes += sizes[j]
        self.pending = len(offs)
        # every reading already in the log may have gone out under the last run's IDs: keep them
        self._ksent = kend if self._runs else self._k
        last = self._id(kend - 1) if kend > 0 else None
        if last is not None and last > self._last:
            self._last = last
        self._logn = good
        if f is None or torn or good == 0:
            self._rewrite()
        else:
            self._fa = open(path, "ab")
        if skip > 0:
            self._write_cursor()

    def _maybe_compact(self):
        if self.pending == 0:
            first = self._logn
        else:
            first = self._f[self._head]
        if first >= self.compact_at:
            self._rewrite()

    def _rewrite(self):
        # the pending readings and the runs that give their IDs into a new log, then renamed over the old one
        import os
        path = self.path
        tmp = path + ".tmp"
        if self._fa is not None:
            self._fa.close()
            self._fa = None
        k = self._k
        runs = self._runs
        while len(runs) > 1 and runs[1][0] <= k:
            runs.pop(0)
        if runs and runs[0][0] < k:
            r = runs[0]
            runs[0] = [k, r[1], r[2] + k - r[0]]
        try:
            src = open(path, "rb")
        except OSError:
            src = None
        out = open(tmp, "wb")
        try:
            out.write(_record(72, struct.pack("<QQQ", k, self._last[0], self._last[1])))
            n = len(_record(72, bytes(24)))
            rest = []
            if runs and runs[0][0] <= k:
                out.write(_record(73, struct.pack("<QQQ", runs[0][0], runs[0][1], runs[0][2])))
                n += _OVER + 24
                rest = runs[1:]
            i = self._head
            for j in range(self.pending):
                kj = k + j
                while rest and rest[0][0] <= kj:
                    r = rest.pop(0)
                    out.write(_record(73, struct.pack("<QQQ", r[0], r[1], r[2])))
                    n += _OVER + 24
                src.seek(self._f[i])
                h = src.read(_HDR)
                ln = h[2] | (h[3] << 8)
                rec = h + src.read(ln + 2)
                out.write(rec)
                self._f[i] = n
                n += len(rec)
                i = 0 if i + 1 == self.capacity else i + 1
            for r in rest:  # a run for readings not added yet
                out.write(_record(73, struct.pack("<QQQ", r[0], r[1], r[2])))
                n += _OVER + 24
            _sync(out)
        finally:
            out.close()
            if src is not None:
                src.close()
        try:
            os.rename(tmp, path)
        except OSError:
            _remove(path)  # FAT will not rename over a file
            os.rename(tmp, path)
        self.flash_writes += 1
        self._logn = n
        self._fa = open(path, "ab")
        _remove(path + ".cur")  # the log's header now says where the readings start

    def close(self):
        """Close the log file (file mode). Pending readings stay in it for the next Outbox on the same path."""
        if self._fa is not None:
            self._fa.close()
            self._fa = None

    def __repr__(self):
        return "<Outbox pending=%d dropped=%d>" % (self.pending, self.dropped)


def _rand(n, clock):
    try:
        import random
        return random.getrandbits(16) % n
    except (ImportError, AttributeError):
        return clock.ticks_ms() % n
