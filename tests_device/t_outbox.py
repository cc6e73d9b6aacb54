# Outbox (store-and-forward to a stream, exactly once) against a real redis-server. Plain MicroPython; runs under
# CPython too. File-backed cases write into devkit.tmpdir() (cfg "tmpdir", else $TMPDIR, else /tmp, else here).
import os

from tinytest import eq, ok, raises, allocs, IS_MICROPYTHON, now_ms, since, sleep_ms
from devkit import handler, count_calls, counting, tmppath, cleanup
import microredis as mr

P = b"t_outbox:"


def fresh(name):
    key = P + name
    c = handler().connect()
    c.command(b"DEL", key).wait()
    c.close()
    return key


def entries(key):
    c = handler().connect()
    out = c.command(b"XRANGE", key, b"-", b"+").wait()
    c.close()
    return out


def values(key, field=b"i"):
    out = []
    for e in entries(key):
        f = e[1]
        i = 0
        while i < len(f):
            if f[i] == field:
                out.append(int(f[i + 1]))
            i += 2
    return out


def lose_replies(box, key, n_expected):
    # One pump whose XADDs reach the server but whose replies are lost: the connection breaks before they are read.
    def collect(c, futs, ks):
        deadline = now_ms()
        while len(entries(key)) < n_expected and since(deadline) < 3000:
            sleep_ms(10)
        c._broken(mr.ConnectionError("reply lost (test)"), None)
        return -1
    box._collect = collect
    try:
        eq(box.pump(), 0)
    finally:
        del box._collect
    eq(len(entries(key)), n_expected, "the XADDs landed")


def test_add_pump_in_order():
    key = fresh(b"basic")
    box = mr.Outbox(handler(), key, capacity=16)
    eq((box.pending, box.dropped, box.last_error), (0, 0, None))
    eq(box.pump(), 0)  # nothing to do: no dial needed
    for i in range(10):
        box.add({b"i": i, b"t": b"21.5", "s": "x"})
    eq(box.pending, 10)
    eq(box.pump(), 10)
    eq((box.pending, box.dropped, box.last_error), (0, 0, None))
    eq(values(key), list(range(10)))
    es = entries(key)
    f = es[0][1]
    eq(dict((f[i], f[i + 1]) for i in range(0, len(f), 2)), {b"i": b"0", b"t": b"21.5", b"s": b"x"})
    ids = [e[0] for e in es]
    for a, b in zip(ids, ids[1:]):
        am, asq = a.split(b"-")
        bm, bsq = b.split(b"-")
        ok((int(am), int(asq)) < (int(bm), int(bsq)), "IDs strictly increase")
    # more batches than frame_capacity (4 by default) and a second pump on the same connection
    for i in range(10, 23):
        box.add({b"i": i})
    eq(box.pump(), 13)
    eq(values(key), list(range(23)))
    eq(box.delivered, 23)


def test_capacity_and_bytes_bound_drop_oldest():
    key = fresh(b"bound")
    box = mr.Outbox(handler(), key, capacity=5)
    for i in range(8):
        box.add({b"i": i})
    eq((box.pending, box.dropped), (5, 3))
    eq(box.pump(), 5)
    eq(values(key), [3, 4, 5, 6, 7])
    # bytes: each reading counts len(field) + len(value) = 1 + 9
    box = mr.Outbox(handler(), key, capacity=100, max_bytes=35)
    for i in range(6):
        box.add({b"i": ("%09d" % i).encode()})
    eq((box.pending, box.dropped), (3, 3))
    ok(box._bytes <= 35)
    raises(ValueError, box.add, {b"i": b"x" * 40})  # larger than the whole bound: refused, nothing dropped
    eq((box.pending, box.dropped), (3, 3))
    eq(box.pump(), 3)
    eq(values(key), [3, 4, 5, 6, 7] + [3, 4, 5])  # the first box's five, then the second's last three


def test_add_rejects_bad_readings_before_queueing():
    box = mr.Outbox(handler(), fresh(b"bad"))
    raises(TypeError, box.add, [(b"a", b"b")])
    raises(ValueError, box.add, {})
    raises(TypeError, box.add, {b"a": None})
    raises(TypeError, box.add, {b"a": [1]})
    eq(box.pending, 0)
    raises(ValueError, mr.Outbox, handler(), b"k", 0)
    raises(TypeError, mr.Outbox, handler(), None)


def test_add_allocates_nothing_beyond_the_reading():
    box = mr.Outbox(handler(), fresh(b"alloc"), capacity=4)
    d = {b"temp": b"21.5", b"seq": 7}
    box.add(d)  # warm
    n = allocs(lambda: box.add(d))
    if IS_MICROPYTHON:
        eq(n, 0, "add() allocated %r bytes" % n)
    for _ in range(4):
        box.add(d)
    n = allocs(lambda: box.add(d))  # full: the oldest is dropped on the way
    if IS_MICROPYTHON:
        eq(n, 0, "add() with a drop allocated %r bytes" % n)
    ok(box.dropped >= 2)


def test_resend_after_lost_reply_is_not_duplicated():
    key = fresh(b"lost")
    box = mr.Outbox(handler(), key, capacity=16)
    box.add({b"i": 0})
    eq(box.pump(), 1)
    for i in range(1, 4):
        box.add({b"i": i})
    lose_replies(box, key, 4)
    eq(box.pending, 3)
    box.add({b"i": 4})  # never sent: gets a new ID above the re-sent ones
    eq(box.pump(), 4)
    eq(box.duplicates, 3)
    eq(values(key), [0, 1, 2, 3, 4])
    eq(box.pending, 0)


def test_unreachable_server_never_raises_and_backs_off():
    # a port nobody listens on: pump() returns 0 and records the error; between attempts it does not dial
    h = mr.ConnectionHandler.resp3(("127.0.0.1", 1)).timeout(500)
    box = mr.Outbox(h, b"t_outbox:none", capacity=4)
    box.backoff_ms = 400
    box.jitter = False
    box.add({b"i": 1})
    eq(box.pump(), 0)
    ok(isinstance(box.last_error, mr.ConnectionError), repr(box.last_error))
    eq(box.pump(), 0)  # the first re-dial is immediate (fails again)
    eq(box.fails, 2)
    t0 = now_ms()
    eq(box.pump(), 0)  # within the backoff: no dial at all
    eq(box.fails, 2)
    ok(since(t0) < 100)
    eq(box.pending, 1)
    t0 = now_ms()
    eq(box.pump(timeout_ms=1000), 0)  # keeps retrying for the given time, then returns
    el = since(t0)
    ok(900 <= el < 2500, "pump(timeout_ms=1000) took %d ms" % el)


def test_auth_failure_stops_until_resume():
    key = fresh(b"auth")
    h = handler().auth(mr.Credentials.password_only("not-the-password"))
    box = mr.Outbox(h, key)
    box.add({b"i": 1})
    eq(box.pump(), 0)
    ok(isinstance(box.last_error, mr.AuthenticationError), repr(box.last_error))
    ok(box.blocked)
    ok("not-the-password" not in repr(box.last_error))
    h.auth(None)
    eq(box.pump(), 0)  # still stopped: the application decides when to try again
    box.resume()
    eq(box.pump(), 1)
    eq(values(key), [1])


def test_reply_error_keeps_readings_then_recovers():
    key = fresh(b"wrongtype")
    c = handler().connect()
    c.set(key, b"not a stream").wait()
    box = mr.Outbox(handler(), key)
    box.add({b"i": 1})
    box.add({b"i": 2})
    eq(box.pump(), 0)
    eq(box.last_error.code, "WRONGTYPE")
    eq(box.pending, 2)
    c.command(b"DEL", key).wait()
    c.close()
    eq(box.pump(timeout_ms=3000), 2)
    eq(values(key), [1, 2])


def test_maxlen_is_sent():
    key = fresh(b"maxlen")
    box = mr.Outbox(handler(), key, maxlen=1, capacity=300)
    for i in range(250):
        box.add({b"i": i})
    eq(box.pump(), 250)
    c = handler().connect()
    n = c.command(b"XLEN", key).wait()
    c.close()
    ok(n < 250, "MAXLEN ~ 1 trimmed whole nodes (XLEN %d)" % n)
    eq(values(key)[-1], 249)


def test_file_backing_survives_reboot():
    key = fresh(b"file")
    p = tmppath("outbox", "reboot")
    try:
        box = mr.Outbox(handler(), key, capacity=8, path=p)
        for i in range(5):
            box.add({b"i": i})
        eq(box.pump(), 5)
        for i in range(5, 8):
            box.add({b"i": i})
        box.close()  # "reboot": nothing kept in RAM
        box = mr.Outbox(handler(), key, capacity=8, path=p)
        eq(box.pending, 3)
        box.add({b"i": 8})
        eq(box.pump(), 4)
        eq(box.duplicates, 0)
        eq(values(key), list(range(9)))
        box.close()
        box = mr.Outbox(handler(), key, capacity=8, path=p)
        eq(box.pending, 0)
        eq(box.pump(), 0)
        box.add({b"i": 9})
        eq(box.pump(), 1)
        eq(values(key), list(range(10)))
        box.close()
    finally:
        cleanup(p)


def test_file_reboot_after_lost_reply_is_not_duplicated():
    key = fresh(b"filelost")
    p = tmppath("outbox", "lost")
    try:
        box = mr.Outbox(handler(), key, path=p)
        for i in range(3):
            box.add({b"i": i})
        lose_replies(box, key, 3)
        box.close()  # power cut before any acknowledgement was written
        box = mr.Outbox(handler(), key, path=p)
        eq(box.pending, 3)
        box.add({b"i": 3})
        eq(box.pump(), 4)
        eq(box.duplicates, 3)
        eq(values(key), [0, 1, 2, 3])
        box.close()
    finally:
        cleanup(p)


def test_file_compaction_keeps_pending_and_ids():
    key = fresh(b"compact")
    p = tmppath("outbox", "compact")
    try:
        box = mr.Outbox(handler(), key, capacity=32, path=p)
        box.compact_at = 200
        for i in range(20):
            box.add({b"i": i, b"pad": b"x" * 20})
        eq(box.pump(), 20)
        ok(os.stat(p)[6] < 200, "log rewritten when fully acknowledged")
        for i in range(20, 25):
            box.add({b"i": i})
        lose_replies(box, key, 25)
        box._rewrite(-1, 0)  # a compaction while readings with fixed IDs are pending
        box.close()
        box = mr.Outbox(handler(), key, capacity=32, path=p)
        eq(box.pending, 5)
        eq(box.pump(), 5)
        eq(box.duplicates, 5)
        eq(values(key), list(range(25)))
        box.close()
    finally:
        cleanup(p)


def _copy(src, dst, n=-1):
    # the first n bytes (all when n < 0), in small pieces: a board's heap is small
    with open(src, "rb") as f, open(dst, "wb") as g:
        while n:
            b = f.read(256 if n < 0 else min(n, 256))
            if not b:
                break
            g.write(b)
            if n > 0:
                n -= len(b)


def test_file_torn_last_record_loses_only_that_reading():
    key = fresh(b"torn")
    p = tmppath("outbox", "torn")
    q = p + "_cut"
    try:
        box = mr.Outbox(handler(), key, capacity=8, path=p)
        for i in range(3):
            box.add({b"i": i})
        eq(box.pump(), 3)  # a run and a cursor exist
        box.add({b"i": 3})
        box.add({b"i": 4})
        before = os.stat(p)[6]
        box.add({b"i": 5, b"t": b"21.5"})
        after = os.stat(p)[6]
        box.close()
        for cut in range(before, after + 1):
            _copy(p, q, cut)
            b = mr.Outbox(handler(), key, capacity=8, path=q)
            eq(b.pending, 3 if cut == after else 2, "cut at %d of %d..%d" % (cut, before, after))
            b.add({b"i": 6})  # appended after the torn tail was cut away
            b.close()
            b = mr.Outbox(handler(), key, capacity=8, path=q)
            eq(b.pending, 4 if cut == after else 3, "cut at %d, after a later add" % cut)
            if cut == before + 3 or cut == after:
                k2 = fresh(("torn%d" % (cut - before)).encode())
                b.stream = k2
                eq(b.pump(), 4 if cut == after else 3)
                eq(values(k2), [3, 4] + ([5] if cut == after else []) + [6], "cut at %d" % cut)
            b.close()
            cleanup(q)
    finally:
        cleanup(p)
        cleanup(q)


def test_acl_user_with_only_xadd():
    key = fresh(b"acl")
    admin = handler().connect()
    admin.command(b"ACL", b"SETUSER", b"t_outbox_w", b"reset", b"on", b">pw-w", b"~t_outbox:*", b"+xadd").wait()
    try:
        h = handler(2).auth(mr.Credentials.acl("t_outbox_w", "pw-w"))
        box = mr.Outbox(h, key)
        for i in range(3):
            box.add({b"i": i})
        eq(box.pump(), 3)  # TIME and XINFO are refused: the IDs go on from the last one
        eq(values(key), [0, 1, 2])
        box.add({b"i": 3})
        h.disconnect()  # a new connection: a new run, above the last ID
        eq(box.pump(), 1)
        eq(values(key), [0, 1, 2, 3])
        # a new outbox (a rebooted board without a file) cannot learn the stream's top: its IDs collide, and it says
        # so instead of taking the refusal for an acknowledgement
        box3 = mr.Outbox(h, key)
        box3.add({b"i": 4})
        eq(box3.pump(), 0)
        eq((box3.pending, box3.conflicts), (1, 1))
        ok("equal or smaller" in box3.last_error.message)
        eq(values(key), [0, 1, 2, 3])
        box2 = mr.Outbox(h, b"t_outbox_other")  # outside the user's keys: XADD itself is refused
        box2.add({b"i": 0})
        eq(box2.pump(), 0)
        ok(isinstance(box2.last_error, mr.NoPermissionError), repr(box2.last_error))
        ok(box2.blocked)
    finally:
        admin.command(b"ACL", b"DELUSER", b"t_outbox_w").wait()
        admin.close()


def test_retry_policy_hook_lets_the_handler_pace_dials():
    # a handler with a retry policy (h.retry(), another part) fails fast between its attempts itself: the outbox
    # then asks it on every pump instead of keeping its own backoff for dials
    h = mr.ConnectionHandler.resp3(("127.0.0.1", 1)).timeout(300)
    calls = count_calls(h, "connect")
    box = mr.Outbox(h, b"t_outbox:hook")
    box.add({b"i": 1})
    for _ in range(4):
        eq(box.pump(), 0)
    eq(len(calls), 2, "own backoff: an immediate re-dial, then a wait")
    h.retry_policy = True
    for _ in range(3):
        eq(box.pump(), 0)
    eq(len(calls), 5, "with the hook every pump asks the handler")


# ---- the journal under a failing flash (full, rotting, cut), checked against the stream --------------------------
journal = __import__("microredis.journal", None, None, ["journal"])  # MicroPython: not via the package


class _Flash:
    # A flash with `free` bytes left: a write that does not fit fails with ENOSPC after storing the part that fits
    # (partial=True, as FAT does) or nothing (partial=False). Installed as journal.open.
    def __init__(self, free, partial):
        self.free = free
        self.partial = partial
        self.failures = 0

    def open(self, path, mode="r"):
        f = open(path, mode)
        return f if "r" in mode else _FlashFile(self, f)


class _FlashFile:
    def __init__(self, flash, f):
        self.flash = flash
        self.f = f

    def write(self, b):
        fl = self.flash
        if len(b) <= fl.free:
            fl.free -= len(b)
            return self.f.write(b)
        fl.failures += 1
        if fl.partial and fl.free:
            self.f.write(bytes(b[:fl.free]))
            self.f.flush()
        fl.free = 0
        raise OSError(28)

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()


def _read(p):
    with open(p, "rb") as f:
        return f.read()


def _write(p, data):
    with open(p, "wb") as f:
        f.write(data)


def _fields(e):
    f = e[1]
    d = {}
    for i in range(0, len(f), 2):
        d[f[i]] = f[i + 1]
    return d


def _reading(i):
    # a reading whose every field says which one it is: an altered or swapped one cannot pass for another
    return {b"i": i, b"v": b"v%d" % i, b"pad": b"p" * (i % 5)}


def _check_stream(key, want, msg=""):
    # the stream holds exactly the readings `want` (numbers), once each, in order, each as it was added
    es = entries(key)
    got = []
    for e in es:
        f = _fields(e)
        i = int(f[b"i"])
        r = _reading(i)
        eq(f, {b"i": b"%d" % i, b"v": r[b"v"], b"pad": r[b"pad"]}, "reading %d altered %s" % (i, msg))
        got.append(i)
    eq(got, want, msg)


def _restore(key, es):
    # the stream as it was: the same IDs and fields
    c = handler().connect()
    with c.pipeline():
        c.command(b"DEL", key)
        for e in es:
            c.command(*([b"XADD", key, e[0]] + e[1]))
    c.command(b"PING").wait()
    c.close()


def _full_flash(partial):
    key = fresh(b"full%d" % partial)
    p = tmppath("outbox", "full%d" % partial)
    fl = _Flash(1 << 30, partial)
    journal.open = fl.open
    accepted = []
    try:
        box = mr.Outbox(handler(), key, capacity=64, path=p)
        for i in range(40):
            if i % 6 == 2:
                fl.free = 7  # the next write fails part way through
            try:
                box.add(_reading(i))
                accepted.append(i)
            except OSError as e:
                eq(e.args[0], 28)
                ok(i % 6 == 2, "reading %d refused" % i)
            fl.free = 1 << 30
            if i % 5 == 4:
                fl.free = 3 if i % 10 == 4 else 1 << 30  # a pump on a full flash: no run record, no "done" record
                box.pump()  # never raises
                if i % 10 == 4:
                    ok(isinstance(box.last_error, OSError) or box.pending == 0, repr(box.last_error))
                fl.free = 1 << 30
            if i % 13 == 12:
                box.close()  # reboot
                box = mr.Outbox(handler(), key, capacity=64, path=p)
                eq(box.dropped, 0, "nothing lost at reboot %d" % i)
        ok(fl.failures >= 6)
        box.pump(timeout_ms=5000)
        eq(box.pending, 0)
        _check_stream(key, accepted)
        box.close()
        box = mr.Outbox(handler(), key, capacity=64, path=p)  # and after one more reboot nothing comes back
        eq((box.pending, box.dropped), (0, 0))
        box.close()
    finally:
        del journal.open
        cleanup(p)


def test_full_flash_partial_writes_refuse_only_that_reading():
    _full_flash(True)


def test_full_flash_atomic_writes_refuse_only_that_reading():
    _full_flash(False)


def test_pump_reports_a_full_flash_and_recovers_when_space_returns():
    key = fresh(b"fullpump")
    p = tmppath("outbox", "fullpump")
    fl = _Flash(1 << 30, True)
    journal.open = fl.open
    try:
        box = mr.Outbox(handler(), key, capacity=16, path=p)
        for i in range(3):
            box.add(_reading(i))
        fl.free = 0  # the first run's header cannot be written: nothing may be sent
        eq(box.pump(), 0)
        eq(box.last_error.args[0], 28)
        eq(entries(key), [])
        fl.free = 1 << 30
        box.last_error = None
        eq(box.pump(timeout_ms=3000), 3)
        box.add(_reading(3))
        fl.free = 0  # the XADD goes out, its "done" record cannot be written: reported, not raised
        eq(box.pump(), 1)
        eq(box.last_error.args[0], 28)
        fl.free = 1 << 30
        box.close()
        box = mr.Outbox(handler(), key, capacity=16, path=p)  # the reading is pending again after a reboot...
        eq(box.pending, 1)
        eq(box.pump(), 1)  # ... and found in the stream, not sent twice
        eq(box.duplicates, 1)
        _check_stream(key, [0, 1, 2, 3])
        box.close()
    finally:
        del journal.open
        cleanup(p)


def _records(data):
    # [type, start, end, k or None] of each record of the log, parsed here independently of journal.py
    out = []
    i = 0
    while i + 8 <= len(data):
        n = data[i + 2] | (data[i + 3] << 8)
        k = None
        if data[i + 1] == 82:
            k = int.from_bytes(data[i + 4:i + 12], "little")
        out.append([data[i + 1], i, i + 8 + n, k])
        i += 8 + n
    return out


def _flips(key, q, data, es, added, sent, msg):
    # one flipped bit at every byte of the log (every fifth on CPython: it syncs each write to disk), restarted
    # against the stream `es`: each flip costs at most the reading it hit (if not yet delivered), and says so
    recs = _records(data)
    flips = 0
    for pos in range(0, len(data), 1 if IS_MICROPYTHON else 5):
        bad = bytearray(data)
        bad[pos] ^= 1 << (pos * 5 % 8)
        _write(q, bad)
        _restore(key, es)
        b = mr.Outbox(handler(), key, capacity=16, path=q)
        b.pump(timeout_ms=3000)
        where = "%s: flip at %d" % (msg, pos)
        eq(b.pending, 0, where)
        hit = None
        for r in recs:
            if r[1] <= pos < r[2]:
                hit = r
        lost = [hit[3]] if hit[0] == 82 and hit[3] >= sent else []
        _check_stream(key, [i for i in range(added) if i not in lost], "%s in a record of type %d" % (where, hit[0]))
        eq(b.dropped, len(lost), "every loss counted (%s)" % where)
        if lost:
            ok(isinstance(b.last_error, OSError), "and said (%s)" % where)
        b.close()
        cleanup(q)
        flips += 1
    return flips


def test_bit_flips_cost_at_most_the_damaged_reading():
    key = fresh(b"rot")
    p = tmppath("outbox", "rot")
    q = p + "_rot"
    try:
        box = mr.Outbox(handler(), key, capacity=16, path=p)
        for i in range(6):
            box.add(_reading(i))
        eq(box.pump(), 6)
        for i in range(6, 11):
            box.add(_reading(i))
        box.close()
        data = _read(p)
        ok(len(_records(data)) >= 13, "H, I, six readings, D, five readings")
        ok(_flips(key, q, data, entries(key), 11, 6, "one session") > 60)
        cleanup(p)
        # two sessions (a second run record), delivered readings above an older "done" record, two pending
        key = fresh(b"rot2")
        snaps = _spied_run(key, p)
        data, es = snaps[-1]
        ok(_flips(key, q, data, es, 9, 7, "two sessions") > 60)
    finally:
        cleanup(p)
        cleanup(q)


def _spied_run(key, p):
    # An outbox life with two sessions; before every journal write, the log and the stream as they are (a power
    # cut at that moment leaves exactly this), and at the end the final log.
    snaps = []
    orig = journal.Journal.append

    def spy(self, rec):
        snaps.append((_read(p), entries(key)))
        return orig(self, rec)
    journal.Journal.append = spy
    try:
        h = handler()
        box = mr.Outbox(h, key, capacity=16, path=p)
        for i in range(4):
            box.add(_reading(i))
        eq(box.pump(), 4)
        for i in range(4, 7):
            box.add(_reading(i))
        h.disconnect()  # a new session: a new run record before these XADDs
        eq(box.pump(), 3)
        box.add(_reading(7))
        box.add(_reading(8))
        box.close()
    finally:
        journal.Journal.append = orig
    snaps.append((_read(p), entries(key)))
    return snaps


def _after_cut(key, q, data, es, added, msg):
    # restart from the cut log against the stream of that moment: every intact reading lands once, in order
    _write(q, data)
    _restore(key, es)
    b = mr.Outbox(handler(), key, capacity=16, path=q)
    b.pump(timeout_ms=3000)
    eq(b.pending, 0, msg)
    intact = [r[3] for r in _records(data) if r[0] == 82 and r[2] <= len(data)]
    have = [int(_fields(e)[b"i"]) for e in es]
    want = [i for i in range(added) if i in have or i in intact]
    _check_stream(key, want, msg)
    eq(b.dropped, 0, msg)
    b.close()
    cleanup(q)


def test_a_cut_at_any_offset_of_the_last_records_never_duplicates_or_loses():
    key = fresh(b"cut")
    p = tmppath("outbox", "cut")
    q = p + "_cut"
    try:
        snaps = _spied_run(key, p)
        data, es = snaps[-1]
        eq(len(es), 7)
        recs = _records(data)
        start = recs[-8][1]  # the second session's run, its readings, their "done", the last two readings
        for cut in range(start, len(data) + 1, 1 if IS_MICROPYTHON else 2):
            _after_cut(key, q, data[:cut], es, 9, "final log cut at %d of %d" % (cut, len(data)))
    finally:
        cleanup(p)
        cleanup(q)


def test_power_cut_during_pumps_loses_no_intact_reading():
    # every moment a record was about to be written, with the stream as it was then, cut at each of the last three
    # record boundaries too (a file system that loses several unflushed appends at once)
    key = fresh(b"cutmid")
    p = tmppath("outbox", "cutmid")
    q = p + "_cut"
    try:
        snaps = _spied_run(key, p)
        ok(len(snaps) > 10)
        for n in range(len(snaps)):
            data, es = snaps[n]
            recs = _records(data)
            cuts = [len(data)] + [r[1] for r in recs[-3:]]
            for cut in cuts:
                _after_cut(key, q, data[:cut], es, 9, "snapshot %d cut at %d of %d" % (n, cut, len(data)))
    finally:
        cleanup(p)
        cleanup(q)


def test_a_log_of_the_first_format_is_converted():
    key = fresh(b"v1")
    p = tmppath("outbox", "v1")
    try:
        def chk(b):
            a = s = 0
            for x in b:
                a = (a + x) % 255
                s = (s + a) % 255
            return (s << 8) | a

        def rec(t, payload):
            h = bytes([0xA5, t, len(payload) & 255, len(payload) >> 8]) + payload
            c = chk(h)
            return h + bytes([c & 255, c >> 8])

        def reading(i):
            v = b"%d" % i
            return rec(82, bytes([1, 1, 0]) + b"i" + bytes([len(v), 0]) + v)
        import struct
        log = rec(72, struct.pack("<QQQ", 0, 0, 0)) + b"".join(reading(i) for i in range(5))
        _write(p, log)
        _write(p + ".cur", struct.pack("<Q", 2) + bytes([chk(struct.pack("<Q", 2)) & 255,
                                                          chk(struct.pack("<Q", 2)) >> 8]))
        box = mr.Outbox(handler(), key, capacity=8, path=p)
        eq((box.pending, box.added), (3, 5))
        eq(box.pump(), 3)
        eq(values(key), [2, 3, 4])
        box.close()
        ok(_read(p)[0] != 0xA5)
    finally:
        cleanup(p)


def _calls(c, name):
    # how many times the server ran a command (INFO commandstats), e.g. name b"xinfo": Redis 6.2 counts the command
    # (cmdstat_xinfo:calls=N,...), Redis 7 and Valkey each subcommand (cmdstat_xinfo|stream:calls=N,...)
    n = 0
    for line in c.command(b"INFO", b"commandstats").wait().split(b"\n"):
        if line.startswith(b"cmdstat_" + name + b":") or line.startswith(b"cmdstat_" + name + b"|"):
            i = line.find(b"calls=") + 6
            n += int(line[i:line.find(b",", i)])
    return n


def test_sharing_the_application_handler_keeps_the_session():
    # a board with one handler: each cycle the application takes the connection with h.connect(), then pump()
    # takes it back; the same connection keeps the outbox's session, so a cycle costs no TIME/XINFO round trip
    key = fresh(b"share")
    admin = handler().connect()
    h = handler()
    box = mr.Outbox(h, key)
    xinfo = _calls(admin, b"xinfo")
    time_ = _calls(admin, b"time")
    for i in range(5):
        c = h.connect()
        c.set(P + b"share:last", i).wait()
        box.add({b"i": i})
        eq(box.pump(), 1)
    eq((_calls(admin, b"xinfo") - xinfo, _calls(admin, b"time") - time_), (1, 1), "one session for five cycles")
    h.disconnect()  # a new connection: a new session
    box.add({b"i": 5})
    eq(box.pump(), 1)
    eq(_calls(admin, b"xinfo") - xinfo, 2)
    eq(values(key), list(range(6)))
    admin.close()


def test_a_cycle_is_one_write_and_one_read():
    # the board's cycle: SET and PUBLISH queued in a pipeline() block and pump(0, c) inside it, so the XADD goes out
    # with them: one write; pump() waits the XADD's reply, the last of the three, and the two before it are taken
    # from the same read (the session started before the count: it is kept from cycle to cycle)
    key = fresh(b"cycle")
    h = handler()
    c = h.connect(client=mr.CoreClient)
    box = mr.Outbox(h, key)
    box.add({b"i": -1})
    eq(box.pump(0, c), 1)  # the session
    w = counting(c)
    n = 20
    for i in range(n):
        box.add({b"i": i})
        with c.pipeline():
            f1 = c.set(P + b"cycle:last", i)
            f2 = c.publish(P + b"cycle", b"%d" % i)
            eq(box.pump(0, c), 1)
        eq((f1.wait(), f2.wait()), (True, 0))
    eq(w.sends, n, "one write per cycle")
    ok(w.recvs <= n + 2, "one read per cycle (%d reads for %d cycles)" % (w.recvs, n))
    eq(values(key), list(range(-1, n)))
    c.close()


def test_pump_on_the_application_client_shares_one_connection():
    # RESP3: the application's client carries its commands, its subscription's pushes and the outbox's XADDs; the
    # session survives the cycles, and a re-dial of that client (h.retry()) starts a new one
    key = fresh(b"onclient")
    admin = handler().connect()
    h = handler().retry(backoff_ms=50)
    c = h.connect(client=mr.CoreClient)
    sub = c.subscribe(P + b"cmd")
    box = mr.Outbox(h, key)
    raises(TypeError, box.pump, 0, object())
    xinfo = _calls(admin, b"xinfo")
    for i in range(4):
        box.add({b"i": i})
        eq(box.pump(client=c), 1)
        admin.publish(P + b"cmd", b"m%d" % i).wait()
        c.set(P + b"onclient:last", i).wait()
        m = sub.receive(timeout_ms=2000)
        eq(m.payload, b"m%d" % i)
    eq(_calls(admin, b"xinfo") - xinfo, 1, "one session")
    admin.command(b"CLIENT", b"KILL", b"TYPE", b"pubsub").wait()  # the shared connection (it is subscribed)
    box.add({b"i": 4})
    box.pump(timeout_ms=3000, client=c)  # the client re-dials by itself; the outbox starts a new session on it
    eq(box.pending, 0, repr(box.last_error))
    eq(_calls(admin, b"xinfo") - xinfo, 2)
    eq(values(key), list(range(5)))
    c.close()
    admin.close()
