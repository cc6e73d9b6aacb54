# Encoder tests: every argument kind, UTF-8 lengths, buffer boundaries, large values sent uncopied, type errors
# before anything is written. Plain MicroPython; runs under CPython too.
from tinytest import eq, ok, raises
from microredis.encoder import Encoder, check, encode

SMALL_HEAP = True


class Sink:
    def __init__(self):
        self.out = []
        self.objs = []

    def send(self, buf, n):
        self.out.append(bytes(buf[:n]))

    def send_obj(self, obj):
        self.objs.append(obj)
        self.out.append(bytes(obj))

    def data(self):
        return b"".join(self.out)


def test_argument_kinds():
    eq(encode(b"SET", b"k", b"v"), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
    eq(encode(bytearray(b"ab"), memoryview(b"cd")), b"*2\r\n$2\r\nab\r\n$2\r\ncd\r\n")
    eq(encode(0, -1, 1234567890123), b"*3\r\n$1\r\n0\r\n$2\r\n-1\r\n$13\r\n1234567890123\r\n")
    eq(encode(1.5), b"*1\r\n$3\r\n1.5\r\n")
    eq(encode(""), b"*1\r\n$0\r\n\r\n")


def test_ints_past_64_bits():
    # past 2**64 the digits come from bigint.py (t_commands.test_int_values_of_any_size sends 10**5000 and more, past
    # CPython's 4300-digit limit of str(), on a heap larger than this module's 64 KiB)
    eq(encode(2 ** 64 - 1, -(2 ** 64), 10 ** 19), b"*3\r\n$20\r\n18446744073709551615\r\n$21\r\n"
       b"-18446744073709551616\r\n$20\r\n10000000000000000000\r\n")
    eq(encode(-(10 ** 100) + 1), b"*1\r\n$101\r\n-" + b"9" * 100 + b"\r\n")


def test_str_uses_its_utf8_length():
    eq(encode("caf\u00e9"), b"*1\r\n$5\r\ncaf\xc3\xa9\r\n")
    eq(encode("\u6e29\u5ea6"), b"*1\r\n$6\r\n" + "\u6e29\u5ea6".encode() + b"\r\n")


def test_bad_types_raise_type_error_and_write_nothing():
    for bad in (None, True, False, [1], (1,), {}, object(), set()):
        raises(TypeError, check, bad)
    s = Sink()
    e = Encoder(bytearray(64), s)
    raises(TypeError, e.command, [b"SET", b"k", None])
    eq(e.n, 0)
    eq(s.out, [])


def test_fills_the_buffer_exactly_and_flushes_through_the_sink():
    s = Sink()
    e = Encoder(bytearray(32), s)
    args = [b"RPUSH", b"list"] + [b"%d" % i for i in range(40)]
    e.command(args)
    e.flush()
    ok(len(s.out) > 3, "the 32-byte buffer was flushed as it filled")
    want = b"*42\r\n$5\r\nRPUSH\r\n$4\r\nlist\r\n" + b"".join(b"$%d\r\n%d\r\n" % (len(b"%d" % i), i) for i in range(40))
    eq(s.data(), want)


def test_large_value_is_sent_uncopied():
    # few 1 KB blocks at once (a 64 KiB heap through mpremote is fragmented): the value filled in place, and the
    # frame checked piece by piece as the sink got it rather than joined
    import gc
    gc.collect()
    s = Sink()
    e = Encoder(bytearray(64), s)
    big = bytearray(1000)
    for i in range(1000):
        big[i] = 120  # "x"
    e.command([b"SET", b"k", big])
    e.flush()
    ok(any(o is big for o in s.objs), "the value object itself went to the sink")
    head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n"
    eq(sum(len(p) for p in s.out), len(head) + 1002)
    eq(s.out[0][:len(head)], head)
    eq(sum(p.count(b"x") for p in s.out), 1000)
    eq(s.out[-1][-2:], b"\r\n")


def test_without_sink_a_too_large_command_is_a_value_error():
    e = Encoder(bytearray(16))
    raises(ValueError, e.command, [b"SET", b"key", b"value that does not fit"])


def test_raw_prefix():
    s = Sink()
    e = Encoder(bytearray(64), s)
    e.raw(b"*2\r\n$3\r\nGET\r\n")
    e.arg(b"k")
    e.flush()
    eq(s.data(), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")


def test_only_byte_sized_views_pass_check():
    # len() of a view counts items: a wide view would go out with a short length header and its surplus bytes
    # would reach the server as commands. MicroPython has no memoryview.itemsize, so this exercises the fallback.
    try:
        import array
    except ImportError:
        return
    s = Sink()
    for cap in (64, 512):  # copied into the buffer, and sent uncopied
        e = Encoder(bytearray(cap), s)
        wide = memoryview(array.array("H", range(100)))
        raises(TypeError, e.command, [b"SET", b"k", wide])
        raises(TypeError, e.command, [b"SET", b"k", memoryview(array.array("i", [1]))])
        raises(TypeError, e.command, [b"SET", b"k", array.array("B", [1])])
        eq((e.n, s.out), (0, []))
    eq(encode(memoryview(b"ro"), memoryview(array.array("b", [104, 105])), memoryview(bytearray(b"xyz"))[1:]),
       b"*3\r\n$2\r\nro\r\n$2\r\nhi\r\n$2\r\nyz\r\n")
