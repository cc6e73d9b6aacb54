"""Oracle fuzz of the RESP reader: hiredis (the C parser behind redis-py) reads the same bytes.

Random RESP2/RESP3 replies in random wire forms and chunkings, and mutations of them (byte flips, truncation,
wrong/huge/negative lengths, lone CR/LF, unknown types). Where hiredis defines the result, ours must agree; where
it cannot (streamed forms, attributes, blob errors: hiredis 3 rejects or misreads them) the reply must be the SPEC's
value ("Reply values"). Always: only ProtocolError/MemoryFull escape, and the buffer stays within memory_limit.
A sample of the cases is replayed on the MicroPython unix port, which must give the same outcome.

`make fuzz` runs this file as a script: FUZZ_CASES (default 1,000,000) cases from a plain random loop, on every CPU.
"""
import binascii
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tests_device"))  # roundtrip, for fuzzgen
sys.path.insert(0, HERE)

import hiredis  # noqa: E402
import fuzzgen  # noqa: E402
from microredis.resp import Reader, MemoryParameters, NEED_DATA, Push  # noqa: E402
from microredis.errors import ReplyError, ProtocolError, MemoryFull  # noqa: E402

_NED = object()  # hiredis "not enough data" (its default, False, is also RESP3 #f)
LIMITS = (64, 128, 300, 1 << 20)


# ---- the two readers ---------------------------------------------------------------------------------------
def ours(data, cuts):
    """([values], end) with end "PE", "MF" or "NEED"."""
    r = Reader(MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=1 << 20))
    vals = []
    for piece in fuzzgen.pieces(data, cuts):
        r.feed(piece)
        while True:
            try:
                v = r.gets()
            except ProtocolError as e:
                return vals, "PE:" + str(e)
            except MemoryFull:
                return vals, "MF"
            if v is NEED_DATA:
                break
            vals.append(v)
    return vals, "NEED"


def theirs(data, cuts):
    r = hiredis.Reader(notEnoughData=_NED)
    vals = []
    for piece in fuzzgen.pieces(data, cuts):
        r.feed(piece)
        while True:
            try:
                v = r.gets()
            except hiredis.ProtocolError:
                return vals, "PE"
            except TypeError:  # hiredis builds dicts with unhashable keys and fails; we make tuples
                return vals, "TE"
            if v is _NED:
                break
            vals.append(v)
    return vals, "NEED"


def _fffd(m):
    while "\ufffd\ufffd" in m:
        m = m.replace("\ufffd\ufffd", "\ufffd")
    return m


def agree(a, b, loose=False):
    """Our value a is hiredis's value b, given their different shapes: Push -> list, big number -> its digits.
    loose: map values are not compared (hiredis-py pairs a repeated map key with the wrong value, so a mutated
    map with duplicate keys differs; generated maps have unique keys and are compared fully)."""
    ta = type(a)
    if isinstance(a, ReplyError):
        # invalid UTF-8: we replace each byte, hiredis each maximal invalid sequence; runs of U+FFFD compare as one
        return isinstance(b, hiredis.ReplyError) and _fffd(a.message) == _fffd(b.args[0])
    if ta is bool or a is None:
        return type(b) is ta and a == b
    if ta is int:
        if type(b) is bytes:  # "(" big number: hiredis gives its text
            try:
                return int(b) == a
            except ValueError:
                return False
        return type(b) is int and a == b
    if ta is float:
        return type(b) is float and (a == b or (a != a and b != b))
    if ta is bytes:
        return type(b) is bytes and a == b
    if ta is list or ta is Push or ta is tuple:
        return isinstance(b, list) and len(a) == len(b) and all(agree(x, y, loose) for x, y in zip(a, b))
    if ta is dict:
        if type(b) is not dict or len(a) != len(b):
            return False
        bi = list(b.items())
        for k, v in a.items():
            if not any(agree(k, bk) and (loose or agree(v, bv)) for bk, bv in bi):
                return False
        return True
    return False


def compare(data, cuts, mutated=True):
    """Asserts our reader agrees with hiredis on data; returns the kind of disagreement that is allowed (we accept
    what hiredis refuses), or None."""
    if mutated and (data.startswith(b"|") or b"\n|" in data):
        return "attribute"  # hiredis returns an attribute as a reply of its own: nothing to compare
    mine, mend = ours(data, cuts)
    hers, hend = theirs(data, cuts)
    n = min(len(mine), len(hers))
    for i in range(n):
        assert agree(mine[i], hers[i], mutated), (data, cuts, i, mine[i], hers[i])
    if len(mine) > n:
        # we read a reply hiredis refused: allowed only where RESP3/SPEC is wider than hiredis
        assert hend in ("PE", "TE"), ("hiredis waits where we read a reply", data, cuts, mine[n:], hend)
        return "lenient:" + _why(data)
    if len(hers) > n:
        if mend == "MF":
            return None
        # hiredis reads a reply we refuse: only where it skips a check the protocol asks for
        why = [w for w, mark in STRICTER if w in mend and mark in data]
        assert why, ("hiredis read a reply we refused", data, cuts, hers[n:], mend)
        return "strict:" + why[0]
    mend = mend[:2]
    if mend != hend and not (mend == "NEED" or hend == "NEED"):
        return None
    if mend == "PE" and hend == "NEED":
        return "lenient-hiredis-waits"  # e.g. a length we know to be absurd; hiredis waits for it
    if mend == "NEED" and hend == "PE":
        return "strict-hiredis"  # hiredis refuses a header we still wait on (streamed forms)
    return None


STRICTER = (  # (our error, a mark that must be in the data): hiredis reads these, the protocol does not allow them
    ("not followed by CRLF", b""),  # hiredis skips the two bytes after a bulk payload without looking at them
    ("invalid count", b"-1"),  # hiredis takes %-1, ~-1, >-1 as nil; RESP has only *-1 (and _)
    ("invalid length", b"-1"),  # ... and =-1, !-1 as nil; RESP has only $-1
    ("invalid integer", b"("),  # hiredis takes "(" with no digits (or any text) as a big number
    ("invalid boolean", b"#"),
    ("invalid double", b","),  # hiredis uses strtod: leading spaces, hex floats  # hiredis reads "#" followed by a NUL as false
)


def _why(data):
    # a coarse label for the report: which RESP feature hiredis refused
    for tag, marks in (("streamed", (b"?\r\n", b";", b".\r\n")), ("blob-error", (b"!",)), ("bignum", (b"(",)),
                       ("double", (b",",)), ("int", (b":",))):
        if any(m in data for m in marks):
            return tag
    return "other"


# ---- hypothesis ---------------------------------------------------------------------------------------------
from hypothesis import given, settings, strategies as st, HealthCheck  # noqa: E402

REPLAY = []  # "hex cuts limit into decode expected" lines for the MicroPython replay


def _pick(data):
    rnd = data.draw(st.randoms(use_true_random=False))
    return lambda n: rnd.randrange(n) if n > 0 else 0


def _record(data, cuts, limit, into, decode):
    if len(REPLAY) < 600:
        got = "|".join(fuzzgen.outcome(data, cuts, limit, into, decode))
        REPLAY.append("%s %s %d %d %d %s" % (binascii.hexlify(data).decode(), ",".join(map(str, cuts)) or "-",
                                             limit, into, int(decode), got))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_replies_match_hiredis_and_the_spec(data):
    pick = _pick(data)
    vals, wire = fuzzgen.replies(pick, True)
    cuts = fuzzgen.cuts_for(len(wire), pick)
    assert compare(wire, cuts, False) is None
    got = fuzzgen.outcome(wire, cuts)
    assert got == [fuzzgen.render_gen(v) for v in vals], (wire, got)
    _record(wire, cuts, 1 << 20, 0, False)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_wire_form_gives_the_spec_value(data):
    # streamed strings/aggregates, attributes, blob errors, big numbers, sets: hiredis cannot judge these
    pick = _pick(data)
    vals, wire = fuzzgen.replies(pick, False)
    cuts = fuzzgen.cuts_for(len(wire), pick)
    got = fuzzgen.outcome(wire, cuts)
    assert got == [fuzzgen.render_gen(v) for v in vals], (wire, got)
    _record(wire, cuts, 1 << 20, 0, False)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_replies_agree_with_hiredis(data):
    pick = _pick(data)
    wire = fuzzgen.mutate(fuzzgen.replies(pick, True, 2)[1], pick)
    cuts = fuzzgen.cuts_for(len(wire), pick)
    compare(wire, cuts)
    fuzzgen.outcome(wire, cuts)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_replies_only_raise_protocol_error_or_memory_full(data):
    # small memory limits, gets_into() with small buffers, decode=True: outcome() fails on anything else escaping
    # or on a buffer past the limit
    pick = _pick(data)
    wire = fuzzgen.replies(pick, False)[1]
    if pick(4):
        wire = fuzzgen.mutate(wire, pick)
    cuts = fuzzgen.cuts_for(len(wire), pick)
    limit = LIMITS[pick(len(LIMITS))]
    into = (0, 0, 4, 64, 400)[pick(5)]
    decode = pick(4) == 0
    fuzzgen.outcome(wire, cuts, limit, into, decode)
    _record(wire, cuts, limit, into, decode)


def test_replay_on_micropython(micropython, tmp_path):
    if len(REPLAY) < 100:
        test_generated_replies_match_hiredis_and_the_spec()
        test_every_wire_form_gives_the_spec_value()
        test_mutated_replies_only_raise_protocol_error_or_memory_full()
    path = tmp_path / "cases.txt"
    path.write_text("\n".join(REPLAY) + "\n")
    script = tmp_path / "check.py"
    script.write_text("import fuzzgen\nprint('replayed', fuzzgen.check_file(%r))\n" % str(path))
    proc = micropython.run([str(script)], path=[HERE], timeout=300)
    assert ("replayed %d" % len(REPLAY)) in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(REPLAY) >= 100


# ---- make fuzz: a plain loop, many cases ---------------------------------------------------------------------
def fuzz_range(args):
    """Cases seed0..seed0+n-1; returns (cases, {allowed disagreement: count}) or raises with the failing seed."""
    seed0, n = args
    counts = {}
    for seed in range(seed0, seed0 + n):
        rnd = random.Random(seed)
        pick = lambda k: rnd.randrange(k) if k > 0 else 0  # noqa: E731
        mode = seed % 4
        try:
            oracle = mode < 2
            vals, wire = fuzzgen.replies(pick, oracle)
            if mode == 0 or mode == 3 or pick(2):
                wire = fuzzgen.mutate(wire, pick)
                mutated = True
            else:
                mutated = False
            cuts = fuzzgen.cuts_for(len(wire), pick) if len(wire) < 2000 else []
            if oracle:
                why = compare(wire, cuts, mutated)
                if why:
                    counts[why] = counts.get(why, 0) + 1
            if not mutated:
                got = fuzzgen.outcome(wire, cuts)
                assert got == [fuzzgen.render_gen(v) for v in vals], (wire, got)
            else:
                fuzzgen.outcome(wire, cuts, LIMITS[pick(len(LIMITS))], (0, 0, 4, 64, 400)[pick(5)], pick(4) == 0)
        except Exception as e:
            raise AssertionError("seed %d: %r" % (seed, e))
    return n, counts


def main():
    import multiprocessing
    total = int(os.environ.get("FUZZ_CASES", "1000000"))
    seed = int(os.environ.get("FUZZ_SEED", "1"))
    procs = int(os.environ.get("FUZZ_JOBS", "0")) or os.cpu_count() or 1
    step = 5000
    jobs = [(s, min(step, seed + total - s)) for s in range(seed, seed + total, step)]
    t0 = time.time()
    done = 0
    counts = {}
    with multiprocessing.Pool(procs) as pool:
        for n, c in pool.imap_unordered(fuzz_range, jobs):
            done += n
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v
    dt = time.time() - t0
    print("fuzz: %d cases (seeds %d..%d) in %.1f s on %d processes: no failure" % (done, seed, seed + total - 1, dt,
                                                                                   procs))
    print("allowed disagreements with hiredis (we read what it refuses, or it waits on what we refuse):")
    for k in sorted(counts):
        print("  %-28s %d" % (k, counts[k]))


if __name__ == "__main__":
    main()
