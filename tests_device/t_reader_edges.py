# Reader edge cases from the issue "No reply ever reaches the wrong future": what MemoryFull says was skipped,
# unhashable map keys, feed() past memory_limit, gets_into of every bulk form, error text, strict integers,
# decode failures returned for one reply. Plain MicroPython; runs under CPython too.
import time

from tinytest import eq, ok, raises, IS_MICROPYTHON
from microredis.resp import Reader, MemoryParameters, NEED_DATA, Push
from microredis.errors import ReplyError, ProtocolError, MemoryFull
from microredis.msginto import gets_msg_into

SMALL_HEAP = False


def reader(buffer_size=64, limit=4096, **kw):
    return Reader(MemoryParameters(buffer_size=buffer_size, frame_capacity=4, memory_limit=limit), **kw)


def drain(r, dest=None):
    # every reply still buffered; MemoryFull as ("MF", skipped_type)
    out = []
    while True:
        try:
            v = r.gets() if dest is None else r.gets_into(dest)
        except MemoryFull:
            out.append(("MF", r.skipped_type))
            continue
        if v is NEED_DATA:
            return out
        out.append(v)


# ---- 1. skipped_type describes the MemoryFull raised now ---------------------------------------------------
def test_dropped_push_does_not_poison_a_later_gets_into():
    r = reader(buffer_size=64, limit=128)
    r.feed(b">2\r\n$7\r\nmessage\r\n$300\r\n" + b"p" * 300 + b"\r\n")
    raises(MemoryFull, r.gets)
    eq(r.skipped_type, ord(">"))
    r.feed(b":5\r\n")
    eq(r.gets(), 5)
    eq(r.skipped_type, 0, "a returned reply clears it")
    dest = bytearray(4)
    r.feed(b"$10\r\n0123456789\r\n$2\r\nok\r\n")
    raises(MemoryFull, r.gets_into, dest)
    eq(r.skipped_type, ord("$"), "the value that did not fit dest, not the old push")
    eq(r.gets_into(dest), 2)
    eq(bytes(dest[:2]), b"ok")
    eq(r.skipped_type, 0)


def test_skipped_type_right_after_a_dropped_push():
    # the push is dropped, then (with no reply between) a value does not fit
    r = reader(buffer_size=64, limit=128)
    dest = bytearray(4)
    r.feed(b">1\r\n$200\r\n" + b"p" * 200 + b"\r\n$9\r\n123456789\r\n:1\r\n")
    raises(MemoryFull, r.gets_into, dest)
    eq(r.skipped_type, ord(">"))
    raises(MemoryFull, r.gets_into, dest)
    eq(r.skipped_type, ord("$"))
    eq(r.gets_into(dest), 1)


def test_skipped_type_of_an_oversized_reply_and_of_attributed_values():
    r = reader(buffer_size=64, limit=128)
    r.feed(b"*1\r\n$200\r\n" + b"a" * 200 + b"\r\n")
    raises(MemoryFull, r.gets)
    eq(r.skipped_type, ord("*"))
    # an attribute before a push: the push's type, wherever the limit was crossed
    for wire in (b"|1\r\n+k\r\n+v\r\n>1\r\n$200\r\n" + b"b" * 200 + b"\r\n",
                 b"|1\r\n+k\r\n$200\r\n" + b"c" * 200 + b"\r\n>1\r\n:1\r\n"):
        for step in (1, 10, 1000):
            r = reader(buffer_size=64, limit=128)
            got = []
            for i in range(0, len(wire), step):
                r.feed(wire[i:i + step])
                got += drain(r)
            eq(got, [("MF", ord(">"))], repr(wire[:20]))


def test_gets_msg_into_too_big_sets_skipped_type():
    r = reader()
    r.feed(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$9\r\n123456789\r\n:1\r\n")
    raises(MemoryFull, gets_msg_into, r, bytearray(4), bytearray(8), (b"message", b"pmessage", b"smessage"))
    eq(r.skipped_type, ord(">"))
    eq(r.gets(), 1)
    eq(r.skipped_type, 0)


# ---- 2. aggregate map keys never raise TypeError -------------------------------------------------------------
def test_nested_aggregate_map_keys_become_tuples():
    r = reader()
    r.feed(b"%1\r\n*1\r\n*0\r\n:1\r\n")
    eq(r.gets(), {((),): 1})
    r.feed(b"%1\r\n*2\r\n*1\r\n~1\r\n:1\r\n>1\r\n+x\r\n:2\r\n")
    eq(r.gets(), {(((1,),), (b"x",)): 2})
    r.feed(b"%?\r\n*?\r\n*1\r\n:1\r\n.\r\n+v\r\n.\r\n")
    eq(r.gets(), {((1,),): b"v"})
    r.feed(b"~2\r\n*1\r\n:1\r\n%1\r\n+a\r\n*0\r\n")  # a set's members stay lists (sets are lists here)
    eq(r.gets(), [[1], {b"a": []}])
    r.feed(b"%1\r\n*0\r\n*1\r\n*0\r\n")  # values are never frozen
    eq(r.gets(), {(): [[]]})


def test_map_inside_a_map_key_is_a_protocol_error():
    for wire in (b"%1\r\n%0\r\n:1\r\n", b"%1\r\n*1\r\n%0\r\n:1\r\n", b"%1\r\n*1\r\n%1\r\n+a\r\n+b\r\n:1\r\n"):
        r = reader()
        r.feed(wire)
        e = raises(ProtocolError, r.gets)
        ok("map key" in str(e), str(e))


def test_attribute_keys():
    wire = b"|1\r\n*1\r\n*0\r\n+v\r\n:7\r\n"
    r = reader(attributes=True)
    r.feed(wire)
    eq(r.gets(), 7)
    eq(r.attributes, {((),): b"v"})
    # a skipped attribute holds anything valid, unbuilt: even a map keyed by a map
    bad_key = b"|1\r\n%1\r\n%1\r\n+a\r\n+b\r\n+c\r\n+v\r\n:8\r\n"
    r = reader()
    r.feed(bad_key + b"|1\r\n$?\r\n;1\r\nk\r\n;0\r\n*?\r\n%0\r\n.\r\n:9\r\n")
    eq(r.gets(), 8)
    eq(r.gets(), 9)
    eq(r.attributes, None)
    r = reader(attributes=True)
    r.feed(bad_key)
    e = raises(ProtocolError, r.gets)
    ok("map key" in str(e), str(e))


# ---- 3. feed() past memory_limit ----------------------------------------------------------------------------
def test_feed_never_counts_whole_replies_against_the_limit():
    r = reader(buffer_size=64, limit=128)
    r.feed(b":1\r\n" * 16)
    r.feed(b":2\r\n" * 16)
    r.feed(b":3\r\n")
    got = [r.gets() for _ in range(33)]
    eq(got, [1] * 16 + [2] * 16 + [3])
    eq(r.gets(), NEED_DATA)
    ok(len(r.buf) <= 128)


def test_feed_keeps_everything_fed_in_one_large_call():
    r = reader(buffer_size=64, limit=128)
    wire = b"$100\r\n" + b"v" * 100 + b"\r\n"
    r.feed(wire * 30)
    for i in range(60):
        r.feed(b":%d\r\n" % i)
    for _ in range(30):
        eq(r.gets(), b"v" * 100)
        ok(len(r.buf) <= 128)
    eq([r.gets() for _ in range(60)], list(range(60)))
    eq(r.pending(), 0)


# ---- 4. gets_into copies every bulk form ------------------------------------------------------------------
def test_gets_into_streamed_bulk():
    wire = b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n:1\r\n"
    for step in (1, 3, 100):
        r = reader()
        dest = bytearray(16)
        got = []
        for i in range(0, len(wire), step):
            r.feed(wire[i:i + step])
            got += drain(r, dest)
        eq(got, [11, 1], "step %d" % step)
        eq(bytes(dest[:11]), b"Hello world")
    r = reader()
    r.feed(b"$?\r\n;0\r\n")
    eq(r.gets_into(bytearray(1)), 0)
    r = reader()
    r.feed(wire)
    dest = bytearray(10)
    raises(MemoryFull, r.gets_into, dest)
    eq(r.skipped_type, ord("$"))
    eq(r.gets_into(dest), 1, "stream still in sync")


def test_gets_into_streamed_bulk_bypasses_memory_limit():
    r = reader(buffer_size=64, limit=64)
    wire = b"$?\r\n" + (b";50\r\n" + b"z" * 50 + b"\r\n") * 10 + b";0\r\n+OK\r\n"
    dest = bytearray(600)
    got = []
    for i in range(0, len(wire), 17):
        r.feed(wire[i:i + 17])
        got += drain(r, dest)
    eq(got, [500, b"OK"])
    eq(bytes(dest[:500]), b"z" * 500)
    r = reader()
    r.feed(b"$?\r\n:1\r\n")
    raises(ProtocolError, r.gets_into, dest)


def test_gets_into_bulk_after_attributes():
    wire = b"|1\r\n+a\r\n+b\r\n$5\r\nhello\r\n|1\r\n+c\r\n:1\r\n$?\r\n;2\r\nhi\r\n;0\r\n+x\r\n"
    for attrs in (False, True):
        for step in (1, 1000):
            r = reader(attributes=attrs)
            dest = bytearray(8)
            got = []
            for i in range(0, len(wire), step):
                r.feed(wire[i:i + step])
                v = r.gets_into(dest)
                while v is not NEED_DATA:
                    got.append((v, bytes(dest[:v]) if type(v) is int else None,
                                r.attributes))
                    v = r.gets_into(dest)
            want_a = {b"a": b"b"} if attrs else None
            want_c = {b"c": 1} if attrs else None
            eq(got, [(5, b"hello", want_a), (2, b"hi", want_c), (b"x", None, None)])
    r = reader()
    r.feed(b"|1\r\n+a\r\n+b\r\n$5\r\nhello\r\n:2\r\n")
    raises(MemoryFull, r.gets_into, bytearray(4))
    eq(r.skipped_type, ord("$"))
    eq(r.gets_into(bytearray(4)), 2)


# ---- 5. error replies that are not UTF-8 --------------------------------------------------------------------
def test_error_reply_not_utf8_keeps_its_code():
    r = reader()
    r.feed(b"-ERR \xff\r\n!8\r\nBUSY \xc3(\xe2\r\n-WRONGTYPE \xf0\x9f\x98\r\n-\xffX y\r\n")
    e = r.gets()
    ok(isinstance(e, ReplyError))
    eq(e.code, "ERR")
    eq(e.message, "ERR \ufffd")
    e = r.gets()
    eq(e.code, "BUSY")
    eq(e.message, "BUSY \ufffd(\ufffd")
    e = r.gets()
    eq(e.code, "WRONGTYPE")  # a truncated sequence: one U+FFFD on CPython, one per byte on MicroPython
    ok(e.message.startswith("WRONGTYPE \ufffd"), e.message)
    eq(r.gets().code, "\ufffdX")


# ---- 6. strict integers, fast big numbers -------------------------------------------------------------------
def test_integers_are_digits_only_in_every_length():
    for body in (b"1_000", b"1 0", b" 10", b"10 ", b"1_" + b"0" * 30, b"1" * 25 + b"_1", b"+-1",
                 b"0x10", b"1" * 20 + b" ", b"-", b"+"):
        for t in (b":", b"("):
            r = reader()
            r.feed(t + body + b"\r\n")
            raises(ProtocolError, r.gets)
    r = reader()
    r.feed(b":+7\r\n:-0\r\n(-" + b"9" * 40 + b"\r\n:007\r\n")
    eq(r.gets(), 7)
    eq(r.gets(), 0)
    eq(r.gets(), -int("9" * 40))
    eq(r.gets(), 7)


def test_huge_integers_parse_in_linear_time():
    digits = b"1234567890" * 6000  # 60,000 digits: past CPython's 4300-digit int(str) limit
    want = 1234567890 * (10 ** 60000 - 1) // (10 ** 10 - 1)  # the same digits, without int(str)
    for step in (1, 1460, len(digits) + 3):
        r = Reader(MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=None))
        wire = b"(-" + digits + b"\r\n"
        t0 = time.time()
        v = NEED_DATA
        for i in range(0, len(wire), step):
            r.feed(wire[i:i + step])
            v = r.gets()
        dt = time.time() - t0
        ok(v == -want, "wrong value")
        if not IS_MICROPYTHON:
            ok(dt < (1.0 if step == 1 else 0.2), "%d-byte steps took %.2f s" % (step, dt))


def test_doubles_are_strict():
    for body in (b"1_0", b" 1", b"infinity", b"1e", b"", b"nan1", b"0x1p3", b"--1"):
        r = reader()
        r.feed(b"," + body + b"\r\n")
        raises(ProtocolError, r.gets)
    r = reader()
    r.feed(b",-1.5e3\r\n,+2\r\n,.5\r\n,NaN\r\n,-INF\r\n,-nan\r\n")
    eq(r.gets(), -1500.0)
    eq(r.gets(), 2.0)
    eq(r.gets(), 0.5)
    v = r.gets()
    ok(v != v)
    eq(r.gets(), float("-inf"))
    v = r.gets()
    ok(v != v)


# ---- 7. decode=True: a value that is not UTF-8 is returned as a ProtocolError for that reply -------------------
NOT_UTF8 = [
    b"$2\r\n\xff\xfe\r\n",
    b"+\xff\r\n",
    b"=6\r\ntxt:\xc3(\r\n",
    b"$?\r\n;1\r\n\xc3\r\n;1\r\n(\r\n;0\r\n",
    b"%1\r\n$1\r\n\xff\r\n:1\r\n",
    b"*3\r\n:1\r\n*1\r\n$1\r\n\xff\r\n+ok\r\n",
    b"%1\r\n*1\r\n$1\r\n\xff\r\n*1\r\n:1\r\n",
    b">2\r\n+message\r\n$1\r\n\x80\r\n",
]


def test_decode_failure_is_returned_for_that_reply_only():
    for wire in NOT_UTF8:
        for step in (1, 1000):
            r = reader(decode=True)
            got = []
            full = wire + b"+after\r\n"
            for i in range(0, len(full), step):
                r.feed(full[i:i + step])
                got += drain(r)
            eq(len(got), 2, repr(wire))
            ok(type(got[0]) is ProtocolError, "%r gave %r" % (wire, got[0]))
            ok("UTF-8" in str(got[0]) and "decode_responses" in str(got[0]), str(got[0]))
            eq(got[1], "after")
    r = reader(decode=True, attributes=True)
    r.feed(b"|1\r\n+k\r\n$1\r\n\xff\r\n:1\r\n:2\r\n")
    ok(type(r.gets()) is ProtocolError)
    eq(r.attributes, None)
    eq(r.gets(), 2)
    r = reader(decode=True)  # a skipped attribute is not decoded
    r.feed(b"|1\r\n+k\r\n$1\r\n\xff\r\n:1\r\n")
    eq(r.gets(), 1)
    r = reader(decode=True)  # gets_into copies bytes: nothing to decode
    r.feed(b"$1\r\n\xff\r\n")
    dest = bytearray(2)
    eq(r.gets_into(dest), 1)
    eq(dest[0], 0xFF)
    r = reader(decode=True, attributes=True)  # ... but attributes before it are decoded
    r.feed(b"|1\r\n+\xff\r\n+v\r\n$1\r\nx\r\n:1\r\n")
    ok(type(r.gets_into(dest)) is ProtocolError)
    eq(r.gets_into(dest), 1)


def test_decode_failure_in_a_push():
    r = reader(decode=True)
    r.feed(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\n\xff\r\n")
    v = r.gets()
    ok(type(v) is ProtocolError)
    ok(type(v) is not Push)

