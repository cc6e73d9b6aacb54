# Zero-allocation proof for the sans-IO core (MicroPython only): encoding SET and parsing +OK, :1 and $5 hello
# into a caller buffer allocate nothing once warm. Heap locked AND a gc.mem_alloc() delta, because exceptions
# raised under heap_lock use an emergency object that the lock alone does not see.
from tinytest import eq, ok, skip, allocs, IS_MICROPYTHON
from microredis.resp import Reader, MemoryParameters, NEED_DATA
from microredis.encoder import Encoder

SMALL_HEAP = True

_SET = b"*3\r\n$3\r\nSET\r\n"
_REPLIES = b"+OK\r\n:1\r\n$5\r\nhello\r\n"


class _Sink:
    def __init__(self):
        self.sent = 0
        self.calls = 0

    def send(self, buf, n):
        self.sent += n
        self.calls += 1

    def send_obj(self, obj):
        self.sent += len(obj)
        self.calls += 1


class _State:
    pass


S = _State()


def _setup():
    # the previous test's objects go first: this module also runs in a 64 KB heap, where two readers side by side
    # may find no hole for the second one's attribute table
    S.sink = S.enc = S.r = None
    S.sink = _Sink()
    S.enc = Encoder(bytearray(128), S.sink)
    S.r = Reader(MemoryParameters(buffer_size=128, frame_capacity=4, memory_limit=1024))
    S.dest = bytearray(16)
    S.key = b"sensor:1"
    S.val = bytearray(b"23.5")
    S.n = 0
    S.ok = True


def _encode_set():
    e = S.enc
    e.raw(_SET)
    e.arg(S.key)
    e.arg(S.val)
    e.arg(1234567)  # ints are formatted into the buffer, not through str()
    e.flush()


def _parse():
    r = S.r
    r.feed(_REPLIES)
    a = r.gets()
    b = r.gets()
    c = r.gets_into(S.dest)
    d = r.gets()
    S.ok = a == b"OK" and b == 1 and c == 5 and d is NEED_DATA


def test_encode_set_allocates_nothing():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    _setup()
    for _ in range(3):
        _encode_set()
    before = S.sink.sent
    eq(allocs(_encode_set), 0)
    eq(S.sink.sent - before, len(_SET) + len(b"$8\r\nsensor:1\r\n$4\r\n23.5\r\n$7\r\n1234567\r\n"))


def test_parse_ok_int_bulk_into_allocates_nothing():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    _setup()
    for _ in range(3):
        _parse()
    ok(S.ok)
    eq(allocs(_parse), 0)
    ok(S.ok, "values were wrong under the heap lock")
    eq(bytes(S.dest[:5]), b"hello")


def test_many_rounds_stay_at_zero():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    _setup()
    _parse()
    _encode_set()

    def rounds():
        for _ in range(200):
            _encode_set()
            _parse()
    eq(allocs(rounds), 0)
    ok(S.ok)


def test_values_match_on_every_platform():
    _setup()
    _encode_set()
    _parse()
    ok(S.ok)
