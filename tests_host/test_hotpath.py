"""The core client's read path (resp.py fast/_consume and the reader's scanner), differentially: a real
redis-server's reply stream, synthetic replies of every shape, and pub/sub streams, replayed through an in-process
transport (tests_device/devkit.py Chunks) split at random points, must give every future exactly what the unsplit
stream gives it (and the unsplit replay is checked against what the commands did). CPython only (hypothesis); the
cases found this way are in tests_device/t_hotpath.py, which MicroPython runs too."""
import os
import socket
import sys

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tests_device"))

import microredis as mr  # noqa: E402
from microredis.resp import Reader, MemoryParameters, NEED_DATA  # noqa: E402
from microredis.encoder import encode  # noqa: E402
from devkit import bulk, chunked_client  # noqa: E402

KEYS = [b"rv:a", b"rv:b", b"rv:c"]
VALUES = st.one_of(st.binary(max_size=12), st.binary(min_size=60, max_size=300),
                   st.sampled_from([b"", b"OK", b"\r\n", b"+OK\r\n", b":1\r\n", b"$-1\r\n", "é€".encode()]))
OPS = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(KEYS), VALUES),
    st.tuples(st.just("get"), st.sampled_from(KEYS + [b"rv:missing"])),
    st.tuples(st.just("get_into"), st.sampled_from(KEYS + [b"rv:missing"]), st.sampled_from([0, 1, 5, 64, 400])),
    st.tuples(st.just("incrby"), st.just(b"rv:n"),
              st.sampled_from([1, 7, 999999, 123456789, 1234567890, -5, 10 ** 17])),
    st.tuples(st.just("ping")),
    st.tuples(st.just("echo"), VALUES),
    st.tuples(st.just("hget"), st.just(b"rv:nohash")),
    st.tuples(st.just("lrange"), st.just(b"rv:nolist")),
    st.tuples(st.just("strlen"), st.sampled_from(KEYS)),
    st.tuples(st.just("err"),),
)


def _args(op):
    k = op[0]
    if k == "set":
        return [b"SET", op[1], op[2]]
    if k in ("get", "get_into"):
        return [b"GET", op[1]]
    if k == "incrby":
        return [b"INCRBY", op[1], op[2]]
    if k == "ping":
        return [b"PING"]
    if k == "echo":
        return [b"ECHO", op[1]]
    if k == "hget":
        return [b"HGET", op[1], b"f"]
    if k == "lrange":
        return [b"LRANGE", op[1], 0, -1]
    if k == "strlen":
        return [b"STRLEN", op[1]]
    return [b"GET"]  # wrong number of arguments: an error reply


def record(server, ops, protocol):
    # the server's reply bytes for ops (after FLUSHDB and, for RESP3, HELLO 3: both read off first)
    s = socket.create_connection(server.address, timeout=5)
    try:
        pre = encode(b"HELLO", 3) if protocol == 3 else b""
        s.sendall(pre + encode(b"FLUSHDB") + b"".join(encode(*_args(o)) for o in ops))
        r = Reader(MemoryParameters(4096, 8, None))
        want = len(ops) + 1 + (protocol == 3)
        skip = 1 + (protocol == 3)
        data = b""
        got = 0
        start = None
        while got < want:
            chunk = s.recv(65536)
            assert chunk, "server closed"
            r.feed(chunk)
            data += chunk
            while True:
                before = r.pending()
                v = r.gets()
                if v is NEED_DATA:
                    break
                got += 1
                if got == skip:
                    start = len(data) - r.pending()
        return data[start:]
    finally:
        s.close()


def outcome(c, ops, waits):
    fs = []
    bufs = []
    for o in ops:
        k = o[0]
        buf = None
        if k == "set":
            f = c.set(o[1], o[2])
        elif k == "get":
            f = c.get(o[1])
        elif k == "get_into":
            buf = bytearray(o[2])
            f = c.get_into(o[1], buf)
        elif k == "incrby":
            f = c.command(b"INCRBY", o[1], o[2])
        else:
            f = c.command(*_args(o))
        fs.append(f)
        bufs.append(buf)
    res = []
    for i, f in enumerate(fs):
        if waits and waits[i % len(waits)]:
            f.ready()
        try:
            v = f.wait()
            if bufs[i] is not None and v is not None:
                v = ("into", v, bytes(bufs[i][:v]))
        except mr.RedisError as e:
            v = type(e).__name__
        res.append(v)
    return res


def split(data, cuts):
    pts = sorted(set(min(x, len(data)) for x in cuts))
    out = []
    p = 0
    for q in pts:
        if q > p:
            out.append(data[p:q])
            p = q
    out.append(data[p:])
    return [x for x in out if x]


def replay(chunks, ops, protocol, decode, bs, waits):
    c, t = chunked_client(protocol=protocol, decode=decode, buffer_size=bs, limit=1024, timeout=600)
    c._cap  # frame_capacity 8: more ops are read as the ring fills
    t.add(*chunks)
    return outcome(c, ops, waits)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=st.lists(OPS, min_size=1, max_size=14), protocol=st.sampled_from([2, 3]), decode=st.booleans(),
       bs=st.sampled_from([64, 128]), cuts=st.lists(st.integers(0, 2000), max_size=12),
       waits=st.lists(st.booleans(), max_size=4))
def test_random_chunking_gives_every_future_its_own_reply(redis_server, ops, protocol, decode, bs, cuts, waits):
    data = record(redis_server, ops, protocol)
    whole = replay([data], ops, protocol, decode, bs, waits)
    pieces = replay(split(data, cuts), ops, protocol, decode, bs, waits)
    assert pieces == whole, (split(data, cuts), ops)
    bytewise = replay([data[i:i + 1] for i in range(len(data))], ops, protocol, decode, bs, waits)
    assert bytewise == whole, ops


def test_whole_stream_matches_the_commands(redis_server):
    # the unsplit replay is right (so the differential above compares against a right answer)
    ops = [("set", b"rv:a", b"x" * 70), ("get", b"rv:a"), ("get_into", b"rv:a", 5), ("get_into", b"rv:a", 80),
           ("incrby", b"rv:n", 1234567890), ("ping",), ("hget", b"rv:nohash"), ("err",), ("get", b"rv:missing")]
    for protocol in (2, 3):
        data = record(redis_server, ops, protocol)
        got = replay([data], ops, protocol, False, 64, [])
        assert got == [True, b"x" * 70, "MemoryFull", ("into", 70, b"x" * 70), 1234567890,
                       b"PONG", None, "ReplyError", None], got


# ---- synthetic RESP2/RESP3 replies of every shape (tests_host/fuzzgen.py), whole vs split -----------------
import random  # noqa: E402
import fuzzgen  # noqa: E402
from microredis.resp import Push  # noqa: E402


def _synthetic(seed, n):
    rnd = random.Random(seed)
    pick = rnd.randrange
    frames = []
    replies = 0
    for _ in range(n):
        v = fuzzgen.gen_value(pick, False)
        frames.append(fuzzgen.wire(v, pick, False))
        if not isinstance(v, Push):
            replies += 1
    return b"".join(frames), replies


def _run_synthetic(chunks, replies, decode, bs, into, waits):
    c, t = chunked_client(protocol=3, decode=decode, buffer_size=bs, limit=1024, timeout=600)
    pushes = []
    c.push_handler = pushes.append
    t.add(*chunks)
    fs = []
    bufs = []
    for i in range(replies):
        if into and i % 3 == 0:
            b = bytearray(into)
            fs.append(c.get_into(b"k", b))
            bufs.append(b)
        else:
            fs.append(c.command(b"X"))
            bufs.append(None)
    res = []
    for i, f in enumerate(fs):
        if waits and waits[i % len(waits)]:
            f.ready()
        try:
            v = f.wait()
            if bufs[i] is not None and v is not None:
                v = ("into", v, bytes(bufs[i][:v]))
            v = repr(v)  # nan != nan
        except mr.RedisError as e:
            v = type(e).__name__ + (": " + str(e) if type(e).__name__ in ("ReplyError",) else "")
        res.append(v)
    return res, len(pushes)


@settings(max_examples=4000, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2 ** 32), n=st.integers(1, 10), decode=st.booleans(), bs=st.sampled_from([64, 128]),
       into=st.sampled_from([0, 4, 300]), cuts=st.lists(st.integers(0, 4000), max_size=10),
       waits=st.lists(st.booleans(), max_size=3))
def test_synthetic_replies_split_anywhere_give_what_the_whole_stream_gives(seed, n, decode, bs, into, cuts, waits):
    data, replies = _synthetic(seed, n)
    whole = _run_synthetic([data], replies, decode, bs, into, waits)
    pieces = _run_synthetic(split(data, cuts), replies, decode, bs, into, waits)
    assert pieces == whole, (data, split(data, cuts))


# ---- pub/sub (RESP2 subscribed mode and RESP3 pushes) with PINGs, whole vs split ---------------------------
def _pubsub_stream(protocol, items):
    head = b">" if protocol == 3 else b"*"
    out = head + b"3\r\n" + bulk(b"subscribe") + bulk(b"ch") + b":1\r\n"
    for kind, x in items:
        if kind == "msg":
            out += head + b"3\r\n" + bulk(b"message") + bulk(b"ch") + bulk(x)
        elif kind == "pmsg":
            out += head + b"4\r\n" + bulk(b"pmessage") + bulk(b"c*") + bulk(b"ch") + bulk(x)
        else:  # the reply to a PING
            out += (b"*2\r\n" + bulk(b"pong") + bulk(x)) if protocol == 2 else bulk(x)
    return out


def _run_pubsub(protocol, chunks, items, ops, decode):
    c, t = chunked_client(protocol=protocol, decode=decode, buffer_size=64, limit=256, timeout=150)
    t.add(*chunks)
    res = []
    try:
        sub = c.subscribe(b"ch")
        pings = [x for k, x in items if k == "ping"]
        for op, arg in ops:
            if op == "ping":
                if not pings:
                    continue
                res.append(("ping", sub.ping(pings.pop(0))))
            elif op == "recv":
                m = sub.receive(20)
                res.append(("recv", None if m is None else (m.kind, m.channel, m.pattern, m.payload)))
            else:
                b = bytearray(arg)
                n = sub.receive_into(b, 20)
                res.append(("into", n, None if n is None else bytes(b[:n]), sub.kind, sub.dropped))
    except (mr.RedisError, ValueError) as e:  # ValueError: a RESP2 ping message over memory_limit, before sending
        res.append(type(e).__name__)
    return res


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(protocol=st.sampled_from([2, 3]), decode=st.booleans(),
       items=st.lists(st.tuples(st.sampled_from(["msg", "pmsg", "ping"]),
                                st.sampled_from([b"", b"x", b"+OK\r\n", b"y" * 40, b"z" * 300])), max_size=8),
       ops=st.lists(st.tuples(st.sampled_from(["ping", "recv", "into"]), st.sampled_from([0, 3, 64])),
                    max_size=10),
       cuts=st.lists(st.integers(0, 1500), max_size=10))
def test_pubsub_split_anywhere(protocol, decode, items, ops, cuts):
    data = _pubsub_stream(protocol, items)
    whole = _run_pubsub(protocol, [data], items, ops, decode)
    pieces = _run_pubsub(protocol, split(data, cuts), items, ops, decode)
    assert pieces == whole, (data, split(data, cuts), whole)
