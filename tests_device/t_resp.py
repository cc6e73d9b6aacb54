# Reader tests: every RESP2/RESP3 type fed whole, byte by byte and split at every position; trailing data; caps;
# malformed input. Plain MicroPython; runs under CPython too.
from tinytest import eq, ok, raises
from microredis import resp
from microredis.resp import Reader, MemoryParameters, NEED_DATA, Push
from microredis.errors import ReplyError, AuthenticationError, NoPermissionError, ProtocolError, MemoryFull

SMALL_HEAP = False  # its test vectors alone take 27 KB as .mpy on x64

NAN = float("nan")


def same(a, b):
    # structural equality that also checks types (bytes vs str, list vs Push) and treats nan == nan
    if type(a) is not type(b):
        return False
    if isinstance(a, ReplyError):
        return a.message == b.message and a.code == b.code
    if type(a) is float and a != a:
        return b != b
    if type(a) in (list, Push, tuple):
        if len(a) != len(b):
            return False
        for i in range(len(a)):
            if not same(a[i], b[i]):
                return False
        return True
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for k in a:
            if k not in b or not same(a[k], b[k]):
                return False
        return True
    return a == b


def P(*items):
    p = Push()
    for i in items:
        p.append(i)
    return p


LONG = b"x" * 300
CASES = [
    (b"+OK\r\n", b"OK"),
    (b"+hello world\r\n", b"hello world"),
    (b"+\r\n", b""),
    (b"-ERR unknown command 'FOO'\r\n", ReplyError("ERR unknown command 'FOO'")),
    (b"-WRONGTYPE Operation against a key\r\n", ReplyError("WRONGTYPE Operation against a key")),
    (b":0\r\n", 0),
    (b":-42\r\n", -42),
    (b":1000\r\n", 1000),
    (b":9223372036854775807\r\n", 9223372036854775807),
    (b":-9223372036854775808\r\n", -9223372036854775808),
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"$5\r\nhello\r\n", b"hello"),
    (b"$6\r\na\r\nb\r\n\r\n", b"a\r\nb\r\n"),
    (b"$300\r\n" + LONG + b"\r\n", LONG),
    (b"*2\r\n$3\r\nfoo\r\n:5\r\n", [b"foo", 5]),
    (b"*3\r\n*1\r\n*1\r\n:1\r\n*0\r\n$-1\r\n", [[[1]], [], None]),
    (b"*2\r\n*-1\r\n+x\r\n", [None, b"x"]),
    (b"_\r\n", None),
    (b",1.5\r\n", 1.5),
    (b",-0.25\r\n", -0.25),
    (b",10\r\n", 10.0),
    (b",1e3\r\n", 1000.0),
    (b",inf\r\n", float("inf")),
    (b",-inf\r\n", float("-inf")),
    (b",nan\r\n", NAN),
    (b"#t\r\n", True),
    (b"#f\r\n", False),
    (b"!21\r\nSYNTAX invalid syntax\r\n", ReplyError("SYNTAX invalid syntax")),
    (b"=15\r\ntxt:Some string\r\n", b"Some string"),
    (b"=4\r\nmkd:\r\n", b""),
    (b"(3492890328409238509324850943850943825024385\r\n", 3492890328409238509324850943850943825024385),
    (b"(-12\r\n", -12),
    (b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n", {b"first": 1, b"second": False}),
    (b"%0\r\n", {}),
    (b"%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n", {(1, 2): b"v"}),
    (b"~3\r\n+a\r\n:1\r\n,2.5\r\n", [b"a", 1, 2.5]),
    (b"~0\r\n", []),
    (b">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$3\r\nhey\r\n", P(b"message", b"chan", b"hey")),
    (b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", P(b"invalidate", [b"k"])),
    (b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.54\r\n*2\r\n:2039123\r\n:9543892\r\n",
     [2039123, 9543892]),
    (b"*3\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n:3\r\n", [1, 2, 3]),
    (b"|0\r\n:5\r\n", 5),
    (b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;2\r\nld\r\n;0\r\n", b"Hello world"),
    (b"$?\r\n;0\r\n", b""),
    (b"*?\r\n:1\r\n:2\r\n:3\r\n.\r\n", [1, 2, 3]),
    (b"*?\r\n.\r\n", []),
    (b"%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n", {b"a": 1, b"b": 2}),
    (b"~?\r\n+a\r\n.\r\n", [b"a"]),
    (b"*?\r\n*?\r\n$?\r\n;2\r\nab\r\n;0\r\n.\r\n*1\r\n:7\r\n.\r\n", [[b"ab"], [7]]),
    (b"*2\r\n$?\r\n;1\r\nx\r\n;0\r\n:9\r\n", [b"x", 9]),
]


def reader(buffer_size=64, limit=4096, **kw):
    return Reader(MemoryParameters(buffer_size=buffer_size, frame_capacity=4, memory_limit=limit), **kw)


def _check(wire, want, chunks):
    r = reader()
    got = NEED_DATA
    for c in chunks:
        eq(got, NEED_DATA, "reply complete before its last byte: %r" % wire)
        r.feed(c)
        got = r.gets()
    ok(got is not NEED_DATA, "incomplete after all bytes: %r" % wire)
    ok(same(got, want), "%r parsed as %r, want %r" % (wire, got, want))
    eq(r.gets(), NEED_DATA)
    eq(r.pending(), 0)


def test_every_type_whole():
    for wire, want in CASES:
        _check(wire, want, [wire])


def test_every_type_byte_by_byte():
    for wire, want in CASES:
        _check(wire, want, [wire[i:i + 1] for i in range(len(wire))])


def test_every_type_split_at_every_position():
    for wire, want in CASES:
        for i in range(1, len(wire)):
            _check(wire, want, [wire[:i], wire[i:]])


def test_all_cases_back_to_back_in_one_feed():
    r = reader()
    r.feed(b"".join(c[0] for c in CASES))
    for wire, want in CASES:
        got = r.gets()
        ok(same(got, want), "%r parsed as %r" % (wire, got))
    eq(r.gets(), NEED_DATA)


def test_all_cases_back_to_back_byte_by_byte():
    r = reader()
    out = []
    for c in b"".join(c[0] for c in CASES):
        r.feed(bytes([c]))
        v = r.gets()
        if v is not NEED_DATA:
            out.append(v)
    eq(len(out), len(CASES))
    for i in range(len(CASES)):
        ok(same(out[i], CASES[i][1]), repr(CASES[i][0]))


def test_trailing_data_stays_for_the_next_reply():
    r = reader()
    r.feed(b"+OK\r\n:1\r\n$3\r\nab")
    eq(r.gets(), b"OK")
    eq(r.gets(), 1)
    eq(r.gets(), NEED_DATA)
    eq(r.pending(), 6)
    r.feed(b"c\r\n*1\r")
    eq(r.gets(), b"abc")
    eq(r.gets(), NEED_DATA)
    r.feed(b"\n:2\r\n")
    eq(r.gets(), [2])


def test_error_classes_and_codes():
    r = reader()
    r.feed(b"-WRONGPASS invalid username-password pair\r\n-NOAUTH Authentication required.\r\n"
           b"-NOPERM this user has no permissions\r\n-ERR x\r\n")
    e = r.gets()
    ok(isinstance(e, AuthenticationError))
    eq(e.code, "WRONGPASS")
    ok(isinstance(r.gets(), AuthenticationError))
    e = r.gets()
    ok(isinstance(e, NoPermissionError))
    eq(e.code, "NOPERM")
    e = r.gets()
    eq(type(e), ReplyError)
    eq(str(e), "ERR x")


def test_decode():
    r = reader(decode=True)
    r.feed(b"+OK\r\n$3\r\nabc\r\n%1\r\n$1\r\nk\r\n*2\r\n+v\r\n:1\r\n=7\r\ntxt:h\xc3\xa9\r\n$?\r\n;2\r\nab\r\n;0\r\n")
    eq(r.gets(), "OK")
    eq(r.gets(), "abc")
    ok(same(r.gets(), {"k": ["v", 1]}))
    eq(r.gets(), "h\u00e9")
    eq(r.gets(), "ab")


def test_attributes_on_request():
    wire = b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.5\r\n:7\r\n"
    r = reader()
    r.feed(wire)
    eq(r.gets(), 7)
    eq(r.attributes, None)
    r = reader(attributes=True)
    r.feed(wire + b":8\r\n")
    eq(r.gets(), 7)
    ok(same(r.attributes, {b"key-popularity": {b"a": 0.5}}))
    eq(r.gets(), 8)
    eq(r.attributes, None)


def test_nesting_limit():
    deep = b"*1\r\n" * resp.MAX_DEPTH + b":1\r\n"
    r = reader(limit=8192)
    r.feed(deep)
    v = r.gets()
    for _ in range(resp.MAX_DEPTH):
        v = v[0]
    eq(v, 1)
    r = reader(limit=8192)
    r.feed(b"*1\r\n" * (resp.MAX_DEPTH + 1) + b":1\r\n")
    e = raises(ProtocolError, r.gets)
    ok("nesting" in str(e), str(e))


MALFORMED = [
    (b"?x\r\n", "unknown type"),
    (b"$abc\r\n", "invalid length"),
    (b"$-2\r\n", "invalid length"),
    (b"$\r\n", "invalid length"),
    (b"*-2\r\n", "invalid length"),
    (b"*1x\r\n", "invalid length"),
    (b":12a\r\n", "invalid integer"),
    (b":\r\n", "invalid integer"),
    (b"(1.5\r\n", "invalid integer"),
    (b"#x\r\n", "invalid boolean"),
    (b"#tt\r\n", "invalid boolean"),
    (b"_x\r\n", "invalid null"),
    (b",abc\r\n", "invalid double"),
    (b"$3\r\nabcd\r\n", "not followed by CRLF"),
    (b";3\r\nabc\r\n", "streamed string chunk"),
    (b".\r\n", "end of streamed"),
    (b"*2\r\n:1\r\n.\r\n", "end of streamed"),
    (b"$?\r\n:1\r\n", "streamed string chunk expected"),
    (b"=3\r\nabc\r\n", "verbatim"),
    (b"=4\r\nabcd\r\n", "verbatim"),
    (b"!-1\r\n", "invalid length"),
    (b">?\r\n", "invalid count"),
    (b"|?\r\n", "invalid count"),
    (b"%-1\r\n", "invalid count"),
    (b"%?\r\n+a\r\n.\r\n", "after a key"),
    (b"$" + b"9" * 30 + b"\r\n", "invalid length"),
    (b"*" + b"1" * 60, "line too long"),
    (b"$99999999999999999999\r\n", "invalid length"),
]


def test_malformed_input_raises_protocol_error_whole_and_bytewise():
    for wire, what in MALFORMED:
        for chunked in (False, True):
            r = reader()
            try:
                if chunked:
                    for i in range(len(wire)):
                        r.feed(wire[i:i + 1])
                        v = r.gets()
                        ok(v is NEED_DATA, "%r gave %r" % (wire, v))
                else:
                    r.feed(wire)
                    v = r.gets()
                    ok(False, "%r gave %r" % (wire, v))
            except ProtocolError as e:
                ok(what in str(e), "%r: %s" % (wire, e))
                ok("byte" in str(e), "says where: %s" % e)


def test_reader_never_raises_non_protocol_errors_on_garbage():
    # a deterministic fuzz: random mutations of valid replies either parse or raise ProtocolError/MemoryFull
    seed = 12345
    wires = [c[0] for c in CASES]
    for n in range(600):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        w = bytearray(wires[seed % len(wires)])
        pos = (seed >> 8) % len(w)
        w[pos] = (seed >> 16) & 0xFF
        r = reader(limit=1024)
        r.feed(w)
        try:
            for _ in range(4):
                if r.gets() is NEED_DATA:
                    break
        except (ProtocolError, MemoryFull):
            pass


def test_memory_limit_bulk_is_skipped_and_stream_stays_in_sync():
    for step in (1, 7, 100, 10000):
        r = reader(buffer_size=64, limit=256)
        wire = b"$1000\r\n" + b"y" * 1000 + b"\r\n:7\r\n+OK\r\n"
        got = []
        for i in range(0, len(wire), step):
            r.feed(wire[i:i + step])
            while True:
                try:
                    v = r.gets()
                except MemoryFull as e:
                    got.append("MF")
                    ok("memory_limit" in str(e))
                    continue
                if v is NEED_DATA:
                    break
                got.append(v)
            ok(len(r.buf) <= 256, "buffer grew to %d" % len(r.buf))
        eq(got, ["MF", 7, b"OK"], "step %d" % step)


def test_memory_limit_aggregate_of_small_elements():
    for step in (1, 13, 5000):
        r = reader(buffer_size=64, limit=200)
        wire = b"*100\r\n" + b":12345\r\n" * 100 + b"%1\r\n+a\r\n+b\r\n"
        got = []
        for i in range(0, len(wire), step):
            r.feed(wire[i:i + step])
            while True:
                try:
                    v = r.gets()
                except MemoryFull:
                    got.append("MF")
                    continue
                if v is NEED_DATA:
                    break
                got.append(v)
            ok(len(r.buf) <= 200)
        ok(same(got, ["MF", {b"a": b"b"}]), "step %d: %r" % (step, got))


def test_memory_limit_long_simple_string_and_nested_bulk():
    r = reader(buffer_size=64, limit=128)
    wire = b"+" + b"z" * 500 + b"\r\n" + b"*2\r\n:1\r\n$400\r\n" + b"q" * 400 + b"\r\n:3\r\n"
    got = []
    for i in range(0, len(wire), 9):
        r.feed(wire[i:i + 9])
        while True:
            try:
                v = r.gets()
            except MemoryFull:
                got.append("MF")
                continue
            if v is NEED_DATA:
                break
            got.append(v)
        ok(len(r.buf) <= 128)
    eq(got, ["MF", "MF", 3])


def test_buffer_grows_for_a_large_reply_then_returns_to_its_size():
    r = reader(buffer_size=64, limit=4096)
    base = r.buf
    r.feed(b"$2000\r\n" + b"a" * 2000 + b"\r\n")
    eq(len(r.gets()), 2000)
    r.feed(b":1\r\n")
    eq(r.gets(), 1)
    ok(r.buf is base, "the grown buffer was not given back")


def test_unlimited_memory():
    # memory_limit=None: the buffer grows far past buffer_size for one reply. Sized to the free heap and fed in
    # 1 KB pieces (no 20 KB temporaries), so it fits a 140 KB board after any other test module: the buffer's
    # last doubling (old + new) and the value built from it are the peak, about 4 * n; the
    # rest of the heap is left for fragmentation.
    import gc
    gc.collect()
    n = 20000
    free = getattr(gc, "mem_free", None)
    if free is not None:
        n = min(n, free() // 16)
    r = Reader(MemoryParameters(buffer_size=64, frame_capacity=1, memory_limit=None))
    r.feed(b"$%d\r\n" % n)
    piece = b"b" * 1024
    v = NEED_DATA
    left = n
    while left > 0:
        k = min(left, 1024)
        r.feed(piece if k == 1024 else piece[:k])
        left -= k
        v = r.gets()  # moves the piece into the buffer (growing it), so feed() never concatenates
        eq(v, NEED_DATA)
    r.feed(b"\r\n")
    v = r.gets()
    eq(len(v), n)
    ok(n > 4096, "enough free heap for a meaningful test (%d)" % n)
    eq(v[0], 98)
    eq(v[-1], 98)


def test_gets_into():
    r = reader()
    dest = bytearray(16)
    r.feed(b"$5\r\nhello\r\n$-1\r\n:3\r\n-ERR no\r\n$0\r\n\r\n")
    eq(r.gets_into(dest), 5)
    eq(bytes(dest[:5]), b"hello")
    eq(r.gets_into(dest), None)
    eq(r.gets_into(dest), 3)
    ok(isinstance(r.gets_into(dest), ReplyError))
    eq(r.gets_into(dest), 0)
    eq(r.gets_into(dest), NEED_DATA)


def test_gets_into_split_everywhere_and_large():
    val = bytes(range(256)) * 2
    wire = b"$512\r\n" + val + b"\r\n+OK\r\n"
    for i in range(0, len(wire), 37):
        r = reader(buffer_size=64, limit=128)  # the value bypasses the receive buffer: no limit applies to it
        dest = bytearray(600)
        r.feed(wire[:i])
        v = r.gets_into(dest)
        if v is NEED_DATA:
            r.feed(wire[i:])
            v = r.gets_into(dest)
        eq(v, 512)
        eq(bytes(dest[:512]), val)
        eq(r.gets(), b"OK")
    r = reader()
    dest = bytearray(8)
    for c in b"$3\r\nabc\r\n":
        eq(r.gets_into(dest), NEED_DATA)
        r.feed(bytes([c]))
    eq(r.gets_into(dest), 3)


def test_gets_into_too_small_raises_and_stays_in_sync():
    r = reader()
    dest = bytearray(4)
    r.feed(b"$10\r\n0123456789\r\n:5\r\n")
    e = raises(MemoryFull, r.gets_into, dest)
    ok("10" in str(e))
    eq(r.gets_into(dest), 5)


def test_memory_parameters_validation():
    raises(ValueError, MemoryParameters, 10, 4, 100)
    raises(ValueError, MemoryParameters, 128, 0, 1000)
    raises(ValueError, MemoryParameters, 128, 4, 64)
    raises(ValueError, MemoryParameters, "128", 4, 1000)
    p = MemoryParameters(buffer_size=128, frame_capacity=2, memory_limit=None)
    eq(p.memory_limit, None)
    ok("128" in repr(p))


def test_feed_accepts_bytearray_and_memoryview_and_copies():
    r = reader()
    b = bytearray(b"$3\r\nabc\r\n" * 20)
    r.feed(memoryview(b))
    b[4:7] = b"XYZ"  # the caller reuses its buffer: what was fed is unaffected
    for _ in range(20):
        eq(r.gets(), b"abc")


def test_aggregate_reply_heap_traffic_is_one_frame_per_reply_not_per_element():
    # MicroPython takes a bytecode frame from the heap on every call when its locals and stack exceed 11 words:
    # a call per element of an aggregate (the scan's _elem, the build's _int/_str) cost ~400 bytes of heap traffic
    # per element on x64 (a 64-integer array: 26 KB; of short strings: 49 KB). Now the elements are scanned and built
    # inline: what is left is one scan frame, one build frame and the values themselves (micropython.mem_total()
    # counts every request, frames included; allocs() cannot see frames, which fall back to the C stack when the heap
    # is locked).
    from tinytest import skip, IS_MICROPYTHON
    if not IS_MICROPYTHON:
        skip("heap frames are MicroPython's")
    import gc
    import micropython
    if not hasattr(micropython, "mem_total"):
        skip("this port has no micropython.mem_total()")
    r = Reader(MemoryParameters(buffer_size=1024))
    ints = b"*64\r\n" + b"".join(b":%d\r\n" % (i * 1000) for i in range(64))
    strs = b"*64\r\n" + b"".join(b"$4\r\nv%03d\r\n" % i for i in range(64))
    hmap = b"%16\r\n" + b"".join(b"$2\r\nf%d\r\n:%d\r\n" % (i % 10, i) for i in range(16))
    out = [0, 0, 0]

    def read(k, data):
        r.feed(data)  # (fed before the count: only the parse is measured)
        gc.collect()
        gc.disable()
        try:
            m = micropython.mem_total()
            v = r.gets()
            out[k] = micropython.mem_total() - m
        finally:
            gc.enable()
        return v

    for _ in range(2):  # (the second round counts: nothing is loaded or first used in it)
        eq(read(0, ints), [i * 1000 for i in range(64)])
        eq(read(1, strs), [b"v%03d" % i for i in range(64)])
        eq(len(read(2, hmap)), 10)
    print("    heap traffic: *64 of :n %d B, *64 of $4 %d B, %%16 %d B" % tuple(out))
    # x64 now: 1.1 KB, 5.4 KB (64 values of ~80 B each: a view's slice, the bytes and their data), 2 KB
    ok(out[0] < 64 * 32, "a 64-integer array took %d bytes of heap traffic (was 26 KB)" % out[0])
    ok(out[1] < 64 * 128, "a 64-string array took %d bytes of heap traffic (was 49 KB)" % out[1])
    ok(out[2] < 32 * 96, "a 16-pair map took %d bytes of heap traffic" % out[2])
