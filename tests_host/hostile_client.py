"""The client side of the hostile-server cases (tests_host/hostile_server.py), portable: CPython imports it
(tests_host/test_hostile.py), MicroPython runs it as a script:

    HOSTILE_PORT=<port> HOSTILE_RUN=mp micropython tests_host/hostile_client.py [case ...]

and prints one line per case: "CASE <name> <PASS|FAIL> <details>".

Every case: a fresh handler names the case in AUTH (user "<run>:<case>"), connects, sends ECHO A, the case's command
X and ECHO B in one pipelined write, then waits X, A and B. It passes when
- each outcome is the command's own correct value (X: the case's `good` predicate; A/B: their own token) or a
  documented error (a microredis.RedisError subclass); anything else (TypeError, IndexError, MemoryError, a
  neighbour's value) fails;
- every wait() returned within its deadline plus a margin (TIMEOUT_MS + MARGIN_MS after the command was sent);
- the receive buffer never holds more than memory_limit (checked after the case) and, on MicroPython, the heap did
  not keep more than a bounded amount (gc.mem_alloc() delta);
- afterwards a fresh ECHO (on the same client when it is still usable, then on a new connect()) gets its own value.
"""

import gc
import sys

import microredis as mr
from mstime import ms as _ms, since as _since  # tests_host/, next to this script

TIMEOUT_MS = 400
MARGIN_MS = 900
BUFFER = 128
LIMIT = 2048
HEAP_DELTA = 16384  # retained bytes allowed after a case (MicroPython), caches and interned strings included


def _isfloat(v):
    return type(v) is float


def _time_ok(v):
    return type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int


def _scan_ok(v):
    return type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is list


def _pairlist_ok(v):
    if type(v) is not list:
        return False
    for p in v:
        if type(p) is not tuple or len(p) != 2 or type(p[1]) is not float:
            return False
    return True


def _entries_ok(v):
    if type(v) is not list:
        return False
    for e in v:
        if type(e) is not tuple or len(e) != 2 or not (e[1] is None or type(e[1]) is dict):
            return False
    return True


def _never(v):
    return False


class Sub:
    # subscribe() wrapped like a future: its outcome is that of subscribe() and of one receive()
    def __init__(self, c):
        self.c = c

    def wait(self):
        sub = self.c.subscribe(b"ch")
        m = sub.receive(200)
        return ("sub", m)


def _sub_ok(v):
    # a confirmed subscription; the message received (if any) is a Message with bytes channel and payload
    if type(v) is not tuple or v[0] != "sub":
        return False
    m = v[1]
    return m is None or (isinstance(m, mr.Message) and type(m.channel) is bytes and type(m.payload) is bytes)


def _getinto(c):
    buf = bytearray(64)
    c._hostile_buf = buf
    return c.get_into(b"k", buf)


# name -> (call(client) -> Future or Sub, good(value) -> bool, options)
# options: "r2" RESP2 handler, "dec" decode_responses, "fb" resp3 with fallback, "conn" the case is in connect()
CASES = {
    "time_int": (lambda c: c.time(), _time_ok, ""),
    "time_short": (lambda c: c.time(), _time_ok, ""),
    "time_text": (lambda c: c.time(), _time_ok, ""),
    "time_null": (lambda c: c.time(), _time_ok, ""),
    "time_good": (lambda c: c.time(), lambda v: v == (1700000000, 123456), ""),
    "scan_int": (lambda c: c.scan(0), _scan_ok, ""),
    "scan_short": (lambda c: c.scan(0), _scan_ok, ""),
    "scan_badcursor": (lambda c: c.scan(0), _scan_ok, ""),
    "scan_null": (lambda c: c.scan(0), _scan_ok, ""),
    "scan_good": (lambda c: c.scan(0), lambda v: v == (7, [b"k"]), ""),
    # a non-dict reply passed through unconverted is the command's own reply, so it is accepted (not a misdelivery)
    "hgetall_listkey_r2": (lambda c: c.hgetall(b"h"), lambda v: type(v) is dict, "r2"),
    "hgetall_int": (lambda c: c.hgetall(b"h"), lambda v: type(v) is dict or v == 5, ""),
    "hgetall_map_listkey": (lambda c: c.hgetall(b"h"), lambda v: type(v) is dict, ""),
    "hgetall_good_r2": (lambda c: c.hgetall(b"h"), lambda v: v == {b"f": b"v"}, "r2"),
    "smembers_lists": (lambda c: c.smembers(b"s"), lambda v: type(v) is set, ""),
    "smembers_set_lists": (lambda c: c.smembers(b"s"), lambda v: type(v) is set, ""),
    "smembers_int": (lambda c: c.smembers(b"s"), lambda v: type(v) is set or v == 5, ""),
    "incrbyfloat_text": (lambda c: c.incrbyfloat(b"f", 1.5), _isfloat, ""),
    "incrbyfloat_list": (lambda c: c.incrbyfloat(b"f", 1.5), _isfloat, ""),
    "incrbyfloat_map": (lambda c: c.incrbyfloat(b"f", 1.5), _isfloat, ""),
    "incrbyfloat_good": (lambda c: c.incrbyfloat(b"f", 1.5), lambda v: v == 2.5, ""),
    "hincrbyfloat_text": (lambda c: c.hincrbyfloat(b"h", b"f", 1.5), _isfloat, ""),
    "zscore_list": (lambda c: c.zscore(b"z", b"m"), lambda v: v is None or _isfloat(v), ""),
    "zincrby_text": (lambda c: c.zincrby(b"z", 1, b"m"), _isfloat, ""),
    "zadd_incr_text": (lambda c: c.zadd(b"z", {b"m": 1}, incr=True), lambda v: v is None or _isfloat(v), ""),
    "zrange_ws_short": (lambda c: c.zrange(b"z", 0, -1, withscores=True), _pairlist_ok, ""),
    "zrange_ws_text": (lambda c: c.zrange(b"z", 0, -1, withscores=True), _pairlist_ok, ""),
    "zrange_ws_flat_text_r2": (lambda c: c.zrange(b"z", 0, -1, withscores=True), _pairlist_ok, "r2"),
    "zrange_ws_nested_int": (lambda c: c.zrange(b"z", 0, -1, withscores=True), _pairlist_ok, ""),
    "zrange_ws_good": (lambda c: c.zrange(b"z", 0, -1, withscores=True), lambda v: v == [(b"a", 1.5)], ""),
    "xrange_int_entry": (lambda c: c.xrange(b"x"), _entries_ok, ""),
    "xrange_short_entry": (lambda c: c.xrange(b"x"), _entries_ok, ""),
    "xrange_listkey_fields": (lambda c: c.xrange(b"x"), _entries_ok, ""),
    "xrange_good": (lambda c: c.xrange(b"x"), lambda v: v == [(b"1-1", {b"f": b"v"})], ""),
    # "b1": BLPOP's 1 s server timeout extends its deadline (and that of the replies queued behind it)
    "blpop_int": (lambda c: c.blpop(b"l", 1),
                  lambda v: v is None or (type(v) is tuple and len(v) == 2), "b1"),
    "blpop_short": (lambda c: c.blpop(b"l", 1),
                    lambda v: v is None or (type(v) is tuple and len(v) == 2), "b1"),
    "expire_text": (lambda c: c.expire(b"k", 10), lambda v: type(v) is bool or v == b"no", ""),
    "set_int": (lambda c: c.set(b"k", b"v"), lambda v: v is True or v is None or v == 1, ""),
    # an undecodable value: a documented error, or the raw bytes; never UnicodeError
    "get_decode_bad": (lambda c: c.get(b"k"), lambda v: v == b"\xff\xfe", "dec"),
    "get_decode_bad_simple": (lambda c: c.get(b"k"), lambda v: v == b"\xff\xfe", "dec"),
    "get_decode_bad_err": (lambda c: c.get(b"k"), _never, "dec"),
    "hgetall_decode_bad_key": (lambda c: c.hgetall(b"h"), lambda v: type(v) is dict, "dec"),
    "get_into_too_long": (_getinto, _never, ""),
    "get_into_aggregate": (_getinto, lambda v: v is None or type(v) is int, ""),
    "get_into_map": (_getinto, lambda v: v is None or type(v) is int, ""),
    "get_into_int": (_getinto, _never, ""),  # an integer is not a length: nothing was copied
    "get_into_ok": (_getinto, _never, ""),
    "get_into_attr_int": (_getinto, _never, ""),
    "huge_bulk": (lambda c: c.get(b"k"), _never, ""),
    "huge_array": (lambda c: c.get(b"k"), _never, ""),
    "huge_array_flood": (lambda c: c.get(b"k"), _never, ""),
    "huge_map_flood": (lambda c: c.get(b"k"), _never, ""),
    "endless_stream_agg": (lambda c: c.get(b"k"), _never, ""),
    "endless_stream_str": (lambda c: c.get(b"k"), _never, ""),
    "endless_trickle_bulk": (lambda c: c.get(b"k"), _never, ""),
    "negative_len": (lambda c: c.get(b"k"), _never, ""),
    "garbage_line": (lambda c: c.get(b"k"), _never, ""),
    "bad_int": (lambda c: c.incr(b"n"), _never, ""),
    "over_limit_bulk": (lambda c: c.get(b"k"), _never, ""),
    "deep_nesting": (lambda c: c.get(b"k"), _never, ""),
    "reset_mid_reply": (lambda c: c.get(b"k"), _never, ""),
    "fin_mid_reply": (lambda c: c.get(b"k"), _never, ""),
    "push_before_reply": (lambda c: c.get(b"k"), lambda v: v == b"val", ""),
    "oversized_push_get_into": (_getinto, lambda v: v == 5, ""),
    "oversized_push_get": (lambda c: c.get(b"k"), lambda v: v == b"hello", ""),
    # "ph": a push_handler that raises; its own exception may surface from the wait() that read the push
    "push_handler_raises": (lambda c: c.get(b"k"), lambda v: v == b"val", "ph"),
    "push_int_kind": (lambda c: c.get(b"k"), lambda v: v == b"val", ""),
    "push_empty": (lambda c: c.get(b"k"), lambda v: v == b"val", ""),
    "push_sub_bigint": (Sub, _sub_ok, ""),
    "push_sub_nullchan": (Sub, _sub_ok, ""),
    "push_sub_listchan": (Sub, _sub_ok, ""),
    "push_msg_intpayload": (Sub, _sub_ok, ""),
    "push_msg_nullchan": (Sub, _sub_ok, ""),
    "push_msg_bigint_payload": (Sub, _sub_ok, ""),
    "push_pmsg_short": (Sub, _sub_ok, ""),
    "r2_sub_bigint": (Sub, _sub_ok, "r2"),
    "r2_msg_intpayload": (Sub, _sub_ok, "r2"),
    "get_into_huge": (_getinto, _never, ""),
    "hello_err": (None, _never, "conn"),
    "hello_err_fallback": (lambda c: c.get(b"k"), lambda v: v is None, "fb"),
    "hello_noauth": (None, _never, "conn"),
    "hello_int": (lambda c: c.get(b"k"), lambda v: v is None, ""),
    "hello_hang": (None, _never, "conn"),
    "hello_huge": (None, _never, "conn"),
    "hello_reset": (lambda c: c.get(b"k"), _never, ""),
    "hello_fin": (lambda c: c.get(b"k"), _never, ""),
    "auth_err": (None, _never, "conn"),
    "pre_auth_reply": (lambda c: c.get(b"k"), lambda v: v is None, ""),
    "after_hello_early": (lambda c: c.get(b"k"), lambda v: v is None, ""),
}

# the connect() of these must fail (with a documented error)
MUST_FAIL_CONNECT = ("hello_err", "hello_noauth", "hello_hang", "hello_huge", "auth_err")


def _name(e):
    return ("mr." if isinstance(e, mr.RedisError) else "") + type(e).__name__


def _short(v):
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def handler(addr, run, name, opts):
    if "r2" in opts:
        h = mr.ConnectionHandler.resp2(addr)
    else:
        h = mr.ConnectionHandler.resp3(addr, "fb" in opts)
    h.auth(mr.Credentials.acl(run + ":" + name, "pw"))
    h.timeout(TIMEOUT_MS)
    h.memory(mr.MemoryParameters(buffer_size=BUFFER, frame_capacity=4, memory_limit=LIMIT))
    if "dec" in opts:
        h.decode_responses(True)
    return h


class HandlerError(Exception):
    pass


def _raising_handler(push):
    raise HandlerError("push_handler raised on purpose")


class Outcome:
    def __init__(self):
        self.fails = []
        self.seen = []
        self.allow = None  # an exception class the case accepts besides documented errors

    def fail(self, what):
        self.fails.append(what)


def _timed_wait(out, label, f, sent_at, good, extra=0):
    # waits f; records the outcome; returns (ok, value or exception)
    try:
        v = f.wait()
        err = None
    except Exception as e:  # noqa: BLE001 - every kind is judged below
        v = None
        err = e
    ms = _since(sent_at)
    if ms > TIMEOUT_MS + extra + MARGIN_MS:
        out.fail("%s took %d ms (deadline %d + margin %d)" % (label, ms, TIMEOUT_MS + extra, MARGIN_MS))
    if err is not None:
        out.seen.append("%s=%s" % (label, _name(err)))
        if not isinstance(err, mr.RedisError) and not (out.allow and isinstance(err, out.allow)):
            out.fail("%s raised %s: %s" % (label, _name(err), _short(str(err))))
        return False, err
    out.seen.append("%s=%s" % (label, _short(v)))
    if not good(v):
        out.fail("%s returned %s" % (label, _short(v)))
    return True, v


def _buf_len(c):
    r = getattr(c, "_r", None)
    return 0 if r is None else len(r.buf)


def run_case(addr, run, name, check_heap=None):
    """Runs one case; returns (verdict "PASS"/"FAIL", details)."""
    call, good, opts = CASES[name]
    out = Outcome()
    tok = run + ":" + name
    if check_heap is None:
        check_heap = hasattr(gc, "mem_alloc")
    gc.collect()
    heap0 = gc.mem_alloc() if check_heap else 0
    h = handler(addr, run, name, opts)
    c = None
    t0 = _ms()
    try:
        c = h.connect()
        out.seen.append("connect=ok")
    except Exception as e:  # noqa: BLE001
        out.seen.append("connect=%s" % _name(e))
        if not isinstance(e, mr.RedisError):
            out.fail("connect() raised %s: %s" % (_name(e), _short(str(e))))
    ms = _since(t0)
    if ms > 2 * TIMEOUT_MS + MARGIN_MS:
        out.fail("connect() took %d ms" % ms)
    if c is None and name not in MUST_FAIL_CONNECT:
        # tolerated only as a documented error (checked above); the recovery check below still runs
        pass
    if c is not None and name in MUST_FAIL_CONNECT:
        out.fail("connect() succeeded although the handshake failed")
    if c is not None and "ph" in opts:
        c.push_handler = _raising_handler
        out.allow = HandlerError
    if c is not None and call is not None:
        try:
            sent = _ms()
            with c.pipeline():
                fa = c.echo(tok + ":A")
                fx = call(c)
                fb = c.echo(tok + ":B")
        except Exception as e:  # noqa: BLE001 - a send can only fail with a documented error
            out.seen.append("send=%s" % _name(e))
            if not isinstance(e, mr.RedisError):
                out.fail("sending raised %s: %s" % (_name(e), _short(str(e))))
            fa = fx = fb = None
        if fx is not None:
            if isinstance(fx, Sub):
                sent = _ms()
            extra = 1000 if "b1" in opts else 0
            ok, v = _timed_wait(out, "X", fx, sent, good, extra)
            if not ok and out.allow and isinstance(v, out.allow):
                # the handler's own exception interrupted the wait: the future is still its command's
                _timed_wait(out, "X2", fx, sent, good, extra)
            if hasattr(c, "_hostile_buf") and name == "oversized_push_get_into":
                if bytes(c._hostile_buf[:5]) != b"hello":
                    out.fail("get_into buffer holds %r" % bytes(c._hostile_buf[:5]))
            want_a = tok + ":A"
            want_b = tok + ":B"
            if "dec" not in opts:
                want_a = want_a.encode()
                want_b = want_b.encode()
            _timed_wait(out, "A", fa, sent, lambda v: v == want_a, extra)
            _timed_wait(out, "B", fb, sent, lambda v: v == want_b, extra)
        n = _buf_len(c)
        if n > LIMIT:
            out.fail("receive buffer grew to %d bytes (memory_limit %d)" % (n, LIMIT))
        # the same client, if it is still usable, must give a fresh command its own value
        want = tok + ":C"
        if "dec" not in opts:
            want = want.encode()
        try:
            sent = _ms()
            f = c.echo(tok + ":C")
            _timed_wait(out, "C", f, sent, lambda v: v == want)
        except Exception as e:  # noqa: BLE001
            out.seen.append("C=%s" % _name(e))
            if not isinstance(e, mr.RedisError):
                out.fail("echo C raised %s" % _name(e))
    # a new connect() (re-dial or the cached connection) must work and give its own value
    try:
        if c is not None:
            try:
                c.close()
            except Exception as e:  # noqa: BLE001
                if not isinstance(e, mr.RedisError):
                    out.fail("close() raised %s: %s" % (_name(e), _short(str(e))))
        c2 = h.connect()
        want = tok + ":D"
        if "dec" not in opts:
            want = want.encode()
        sent = _ms()
        ok, v = _timed_wait(out, "D", c2.echo(tok + ":D"), sent, lambda v: v == want)
        if not ok:
            out.fail("a fresh connection failed: %s" % _name(v))
        c2.close()
    except Exception as e:  # noqa: BLE001
        out.fail("fresh connect/echo raised %s: %s" % (_name(e), _short(str(e))))
    try:
        h.disconnect()
    except Exception as e:  # noqa: BLE001
        out.fail("disconnect() raised %s" % _name(e))
    c = c2 = f = fa = fb = fx = h = None
    if check_heap:
        gc.collect()
        d = gc.mem_alloc() - heap0
        if d > HEAP_DELTA:
            out.fail("heap kept %d bytes after the case" % d)
    return ("FAIL" if out.fails else "PASS"), " ".join(out.seen) + (" | " + "; ".join(out.fails) if out.fails
                                                                    else "")


def main(argv):
    import os
    port = int(os.getenv("HOSTILE_PORT"))
    run = os.getenv("HOSTILE_RUN") or "mp"
    names = argv[1:] or sorted(CASES)
    # load the library's lazily imported modules first, so the first case's heap delta does not count them
    run_case(("127.0.0.1", port), run + "warm", "time_good", False)
    run_case(("127.0.0.1", port), run + "warm", "push_sub_nullchan", False)
    # and the error paths' texts (a refused handshake's, a wrong reply's), which a case would otherwise be charged for
    # the first time it meets one (and, by how the interned-name pool grows, sometimes for a step of that pool)
    __import__("microredis.rare")
    __import__("microredis.texts")
    for name in names:
        try:
            verdict, details = run_case(("127.0.0.1", port), run, name)
        except BaseException as e:  # noqa: BLE001 - a crash of one case must not hide the others
            if isinstance(e, KeyboardInterrupt):
                raise
            verdict, details = "FAIL", "crashed: %s %s" % (_name(e), _short(str(e)))
        print("CASE %s %s %s" % (name, verdict, details))
    print("DONE")


if __name__ == "__main__":
    main(sys.argv)
