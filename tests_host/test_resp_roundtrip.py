"""Hypothesis round-trip: random nested RESP3 values, random wire forms, random chunking, parsed back equal.
The generated cases are then replayed by the real MicroPython unix port."""
import binascii
import os
import sys

from hypothesis import given, settings, strategies as st, HealthCheck

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests_device"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from microredis.resp import Reader, MemoryParameters, Push  # noqa: E402
from microredis.errors import ReplyError  # noqa: E402
import roundtrip  # noqa: E402

CASES = []

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.integers(min_value=-4 * 10 ** 6, max_value=4 * 10 ** 6).map(lambda i: i / 4),
    st.sampled_from([float("inf"), float("-inf"), float("nan")]),
    st.binary(max_size=40),
    st.from_regex(rb"\A[A-Z]{2,9} [a-z ]{0,20}\Z").map(lambda b: ReplyError(b.decode())),
)
keys = st.one_of(st.binary(max_size=12), st.integers(min_value=-1000, max_value=1000))


def _push(xs):
    p = Push()
    p.extend(xs)
    return p


values = st.recursive(
    scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=5),
        st.dictionaries(keys, kids, max_size=4),
    ),
    max_leaves=25,
)
top = st.one_of(values, st.lists(values, min_size=1, max_size=4).map(_push))


def _same(a, b):
    return roundtrip.dump(a) == roundtrip.dump(b)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(v=top, data=st.data())
def test_roundtrip(v, data):
    rnd = data.draw(st.randoms(use_true_random=False))
    wire = roundtrip.dump_variant(v, lambda n: rnd.randrange(n) if n > 0 else 0)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(wire)), max_size=8)))
    r = Reader(MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=1 << 20))
    got = roundtrip.parse_chunks(r, wire, cuts)
    assert len(got) == 1, (wire, got)
    assert _same(got[0], v), (wire, got[0], v)
    if len(CASES) < 400:
        CASES.append("%s %s %s" % (binascii.hexlify(wire).decode(), binascii.hexlify(roundtrip.dump(v)).decode(),
                                   ",".join(str(c) for c in cuts)))


def test_roundtrip_cases_replayed_on_micropython(micropython, tmp_path):
    if not CASES:
        test_roundtrip()
    path = tmp_path / "cases.txt"
    path.write_text("\n".join(CASES) + "\n")
    script = tmp_path / "check.py"
    script.write_text("import roundtrip\nprint('replayed', roundtrip.check_file(%r))\n" % str(path))
    proc = micropython.run([str(script)], check=True)
    assert ("replayed %d" % len(CASES)) in proc.stdout, proc.stdout + proc.stderr
    assert len(CASES) >= 100


@settings(max_examples=500, deadline=None)
@given(garbage=st.binary(max_size=64), prefix=st.sampled_from([b"", b"*2\r\n", b"%1\r\n", b"$?\r\n", b"|1\r\n",
                                                               b"*?\r\n", b">3\r\n"]),
       cut=st.integers(min_value=0, max_value=80))
def test_garbage_only_ever_raises_protocol_error_or_memory_full(garbage, prefix, cut):
    from microredis.resp import NEED_DATA
    from microredis.errors import ProtocolError, MemoryFull
    data = prefix + garbage
    r = Reader(MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=256))
    try:
        r.feed(data[:cut])
        r.feed(data[cut:])
        for _ in range(len(data) + 2):  # each call consumes input or says NEED_DATA: never loops forever
            if r.gets() is NEED_DATA:
                break
    except (ProtocolError, MemoryFull):
        pass
    assert len(r.buf) <= 256
