"""The Outbox's journal on flash: readings, ID runs and acknowledgements as checksummed records (docs/SURVIVAL.md)."""
# One append-only file. Record: _MAGIC | type | length (2 bytes LE) | payload | CRC-32 (4 bytes LE) of everything
# before it. Types: "H" header (first record of a rewritten log: readings below k are done, the last ID handed out,
# the ms of the first run ever made), "R" a reading (its number k, then its fields), "I" an ID run (k0, ms: reading
# k >= k0 gets the entry ID ms-k), "D" done (readings below k were delivered or dropped).
#
# Damage never costs more than the damaged bytes: the scan checks every record and, past a bad one, resynchronises on
# the next offset that holds a whole valid record. Every reading carries its own number, so a lost record shifts
# nothing after it, and the numbers missing between valid readings are the readings lost (counted by the Outbox).
# A write that fails half way (a full flash) leaves bytes that never check: the next record goes after them, at the
# file's real size, and the scan skips them. CRC-32, not a 16-bit sum: resynchronising tries many offsets, and a
# false match would hand the Outbox a reading nobody added.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

import struct

from .flash import crc, record, sync as _sync, size as _size, remove

_MAGIC = const(0x9E)  # (flash.py writes it) five bits away from the first format's 0xA5 (Fletcher-16, numbers implied by position)
_HDR = const(4)
_OVER = const(8)  # header + CRC
_T_HEAD = const(72)  # "H"
_T_READING = const(82)  # "R"
_T_RUN = const(73)  # "I"
_T_DONE = const(68)  # "D"
_MAGIC1 = const(0xA5)
_SCAN = const(64)  # bytes read at a time while looking for the next record after damage


def as_bytes(v):
    # a field or value as the server stores it (and as the encoder sends it)
    t = type(v)
    if t is bytes:
        return v
    if t is str:
        return v.encode()
    if t is float:
        return repr(v).encode()
    if t is int:
        return str(v).encode()
    return bytes(v)


def reading(k, fields):
    """The payload of an "R" record: k (u64), the field count, then length-prefixed fields and values."""
    if len(fields) > 255:
        raise ValueError("a file-backed reading holds at most 255 fields")
    parts = [struct.pack("<QB", k, len(fields))]
    for f in fields:
        for x in (f, fields[f]):
            x = as_bytes(x)
            if len(x) > 0xFFFF:
                raise ValueError("a file-backed reading's field or value must be under 64 KiB")
            parts.append(struct.pack("<H", len(x)))
            parts.append(x)
    p = b"".join(parts)
    if len(p) > 0xFFFF - _OVER:
        raise ValueError("a file-backed reading must be under 64 KiB")
    return p


def fields_of(p):
    """The fields of an "R" payload (checked records only: the lengths are trusted)."""
    d = {}
    i = 9
    for _ in range(p[8]):
        n = p[i] | (p[i + 1] << 8)
        f = bytes(p[i + 2:i + 2 + n])
        i += 2 + n
        n = p[i] | (p[i + 1] << 8)
        d[f] = bytes(p[i + 2:i + 2 + n])
        i += 2 + n
    return d


class Journal:
    """The log file of one Outbox. load() reads it back; append() adds one record, synced; rewrite() replaces it."""

    def __init__(self, path):
        self.path = path
        self.size = 0  # where the next record goes: the file's real size, also after a failed write
        self.writes = 0  # appends and rewrites made (each one a write + flush + sync)
        self._f = None  # the log, open for appending
        # what load() found
        self.done = 0  # readings below this number are done
        self.last_ms = 0  # the last entry ID handed out
        self.last_seq = 0
        self.first_ms = 0  # the ms of the first run ever made: readings may have been sent
        self.runs = []  # [k0, ms], in file order
        self.readings = []  # [k, offset, size] of each valid reading at or above done, ascending k
        self.lost = 0  # readings at or above done whose records are damaged
        self.damaged = 0  # stretches of bytes skipped as damaged (a torn tail counts only if a whole record is bad)
        self.torn = False  # the log ends in bytes that are not a whole record
        self.dirty = False  # a failed write left bytes in the middle: the next compaction should clear them

    # ---- reading back -------------------------------------------------------------------------------------------
    def load(self):
        """Read the log record by record (never more than one record in RAM)."""
        import os
        path = self.path
        tmp = path + ".tmp"
        try:
            os.stat(path)
        except OSError:
            try:
                os.stat(tmp)
                os.rename(tmp, path)  # a rewrite finished its file but was cut before the rename
            except OSError:
                pass
        remove(tmp)
        try:
            f = open(path, "rb")
        except OSError:
            return False
        with f:
            head = f.read(1)
            if head and head[0] == _MAGIC1:
                return None  # the first format: the Outbox converts it (journal1.py)
            self._scan(f)
        self.size = _size(path)  # appends go after everything, a torn tail included
        return True

    def _scan(self, f):
        pos = 0
        bad = -1  # start of the damaged stretch being skipped
        prev = -1  # number of the last valid reading
        hk = -1
        while True:
            f.seek(pos)
            h = f.read(_HDR)
            n = -1
            if len(h) == _HDR and h[0] == _MAGIC and h[1] in (_T_HEAD, _T_READING, _T_RUN, _T_DONE):
                n = h[2] | (h[3] << 8)
                rest = f.read(n + 4)
                if len(rest) < n + 4 or struct.unpack("<I", rest[n:])[0] != crc(h + rest[:n]):
                    n = -1  # a reading lost this way is counted below, by the number it leaves out
            if n < 0:
                if not h:
                    break  # the end
                if bad < 0:
                    bad = pos
                pos = self._next(f, pos + 1)
                if pos < 0:
                    break  # nothing valid after: a torn tail (the record being written when power went)
                continue
            if bad >= 0:
                self.damaged += 1
                bad = -1
            typ = h[1]
            p = rest[:n]
            if typ == _T_READING and n >= 9:
                k = struct.unpack("<Q", p[:8])[0]
                if k > prev:  # numbers only rise: anything else is not a record of this log
                    prev = k
                    self.readings.append([k, pos, _OVER + n])
            elif typ == _T_HEAD and n == 32:
                hk, lm, ls, fm = struct.unpack("<QQQQ", p)
                if hk > self.done:
                    self.done = hk
                self._last(lm, ls)
                if fm and (not self.first_ms or fm < self.first_ms):
                    self.first_ms = fm
            elif typ == _T_RUN and n == 16:
                k0, ms = struct.unpack("<QQ", p)
                self.runs.append([k0, ms])
                if not self.first_ms or ms < self.first_ms:
                    self.first_ms = ms
            elif typ == _T_DONE and n == 8:
                k = struct.unpack("<Q", p)[0]
                if k > self.done:
                    self.done = k
            pos += _OVER + n
        self.torn = bad >= 0  # bad bytes at the end: the Outbox rewrites the log so they never sit in the middle
        # readings below done are of no use; the numbers missing between the valid ones (and between the header's
        # first number and the first valid one) were damaged
        done = self.done
        rs = self.readings
        i = 0
        while i < len(rs) and rs[i][0] < done:
            i += 1
        if i:
            del rs[:i]
        expect = done if hk >= 0 else (rs[0][0] if rs else done)
        for r in rs:
            if r[0] > expect:
                self.lost += r[0] - expect
            expect = r[0] + 1
        if bad >= 0 and self._lost_tail(f, bad, _size(self.path), prev + 1 if prev >= 0 else done):
            self.damaged += 1
            self.lost += 1

    def _lost_tail(self, f, at, end, k):
        # Bad bytes from `at` to the end of the file. A power cut or a failed write leaves a record shorter than its
        # length says (a reading never accepted: not a loss). Rot leaves it whole: as long as its length says, or
        # checking once the length is what the file leaves (the length is what rotted). A whole record that is a
        # reading ("R", or numbered k, the next reading's number) is a reading lost.
        m = end - at - _OVER
        if m < 9 or m > 0xFFFF:
            return False
        f.seek(at)
        h = bytearray(f.read(_HDR))
        if (h[2] | (h[3] << 8)) != m:
            h[2] = m & 0xFF
            h[3] = m >> 8
            rest = f.read(m + 4)
            return len(rest) == m + 4 and struct.unpack("<I", rest[m:])[0] == crc(h + rest[:m])
        return h[1] == _T_READING or struct.unpack("<Q", f.read(8))[0] == k

    def _next(self, f, pos):
        # the next offset after pos that starts a whole valid record, or -1
        while True:
            f.seek(pos)
            chunk = f.read(_SCAN)
            if not chunk:
                return -1
            i = chunk.find(bytes((_MAGIC,)))
            while i >= 0:
                if self._valid_at(f, pos + i):
                    return pos + i
                i = chunk.find(bytes((_MAGIC,)), i + 1)
            pos += len(chunk)

    def _valid_at(self, f, pos):
        f.seek(pos)
        h = f.read(_HDR)
        if len(h) < _HDR or h[1] not in (_T_HEAD, _T_READING, _T_RUN, _T_DONE):
            return False
        n = h[2] | (h[3] << 8)
        rest = f.read(n + 4)
        return len(rest) == n + 4 and struct.unpack("<I", rest[n:])[0] == crc(h + rest[:n])

    def _last(self, ms, seq):
        if (ms, seq) > (self.last_ms, self.last_seq):
            self.last_ms = ms
            self.last_seq = seq

    def read(self, f, off, k):
        """The fields of reading k at off, or None when the record there is not a valid reading k (damaged since)."""
        f.seek(off)
        h = f.read(_HDR)
        if len(h) < _HDR or h[0] != _MAGIC or h[1] != _T_READING:
            return None
        n = h[2] | (h[3] << 8)
        rest = f.read(n + 4)
        if len(rest) < n + 4 or n < 9 or struct.unpack("<I", rest[n:])[0] != crc(h + rest[:n]):
            return None
        if struct.unpack("<Q", rest[:8])[0] != k:
            return None
        return fields_of(rest[:n])

    def reader(self):
        return open(self.path, "rb")

    # ---- writing --------------------------------------------------------------------------------------------------
    def append(self, rec):
        """Add one record, synced; its offset. An OSError (a full flash) leaves no record that reads back."""
        f = self._f
        if f is None:
            f = self._f = open(self.path, "ab")
            self.size = _size(self.path)
        try:
            n = f.write(rec)
            if n is not None and n != len(rec):
                raise OSError(28)  # ENOSPC: a short write
            _sync(f)
        except OSError:
            # Part of rec may be on flash. It never checks (its CRC is its last bytes), and the next record goes
            # after it: reopen, and take the size from the file system rather than from what we meant to write.
            self.close()
            self.size = _size(self.path)
            self.dirty = True
            raise
        off = self.size
        self.size += len(rec)
        self.writes += 1
        return off

    def rewrite(self, head, runs, src, items, n):
        """Replace the log by head, runs ([k0, ms]) and the records of items[0..n) ([k, offset, size], rewritten in
        place to their new offsets), through path + ".tmp" and a rename. OSError: the old log stays as it was."""
        import os
        path = self.path
        tmp = path + ".tmp"
        self.close()
        try:
            out = open(tmp, "wb")
            try:
                pos = 0
                for rec in [head] + [record(_T_RUN, struct.pack("<QQ", r[0], r[1])) for r in runs]:
                    out.write(rec)
                    pos += len(rec)
                offs = []
                for j in range(n):
                    it = items[j]
                    src.seek(it[1])
                    rec = src.read(it[2])
                    if len(rec) != it[2] or out.write(rec) not in (None, len(rec)):
                        raise OSError(28)
                    offs.append(pos)
                    pos += len(rec)
                _sync(out)
            finally:
                out.close()
        except OSError:
            remove(tmp)
            raise
        try:
            os.rename(tmp, path)
        except OSError:
            remove(path)  # FAT will not rename over a file (load() picks the .tmp up if power goes now)
            os.rename(tmp, path)
        for j in range(n):
            items[j][1] = offs[j]
        self.size = pos
        self.writes += 1
        self.dirty = False

    def close(self):
        f = self._f
        self._f = None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass


def reading_record(k, fields):
    return record(_T_READING, reading(k, fields))


def head(k, last_ms, last_seq, first_ms):
    return record(_T_HEAD, struct.pack("<QQQQ", k, last_ms, last_seq, first_ms))


def run(k0, ms):
    return record(_T_RUN, struct.pack("<QQ", k0, ms))


def done(k):
    return record(_T_DONE, struct.pack("<Q", k))
