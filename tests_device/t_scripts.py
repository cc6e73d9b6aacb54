# Lua scripts (scripts.py) and Redis 7 functions against a real redis-server: EVALSHA first, EVAL on NOSCRIPT, the
# SHA-1 computed on the board (and from the server, SCRIPT LOAD, where hashlib has no sha1), a script's error as a
# ReplyError, scripts inside a transaction, the NOSCRIPT fallback (a script's own NOSCRIPT error, reused arguments,
# ^C, runs never waited), FCALL/FCALL_RO (Redis 7; skipped on older servers). Plain MicroPython; runs under CPython
# too.
try:
    import hashlib as _REAL_HASHLIB
except ImportError:  # a board built without hashlib
    _REAL_HASHLIB = None

import microredis as mr
import microredis.scripts as scripts  # (MicroPython: `from microredis import scripts` asks the package first)
from tinytest import eq, ok, raises, skip
from devkit import handler, admin, counting, interrupt

P = b"t_scripts:"
INCR_BY = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


def _client(proto=3):
    h = handler(proto)
    c = h.connect()
    c.test_handler = h
    return c


def _close(c):
    c.close()
    c.test_handler.disconnect()


def _each(fn):
    for proto in (3, 2):
        c = _client(proto)
        try:
            c.delete(P + b"n", P + b"l").wait()
            fn(c)
            eq(c.ping().wait(), True)  # usable after whatever fn did
            eq(c._pending, 0)
        finally:
            _close(c)


def test_sha1_is_computed_on_the_board():
    if scripts.sha1 is None:
        skip("this port's hashlib has no SHA-1 (test_without_hashlib_sha1_the_server_computes_it covers that)")
    c = _client()
    try:
        s = c.register_script("return 1")
        eq(s.sha, b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db")  # SHA-1 of b"return 1"
        eq(c.command(b"SCRIPT", b"LOAD", b"return 1").wait(), s.sha)  # what the server computes
        eq(c.register_script(b"return 1").sha, s.sha)  # bytes or str alike
        raises(TypeError, c.register_script, 1)
    finally:
        _close(c)


def test_run_evalsha_with_keys_and_args():
    def run(c):
        s = c.register_script(INCR_BY)
        c.command(b"SCRIPT", b"LOAD", INCR_BY).wait()
        w = counting(c)
        r = s.run([P + b"n"], [5])
        eq(r.wait(), 5)
        eq(w.sends, 1)  # EVALSHA only: the server had it
        raises(mr.InvalidFuture, r.wait)  # handed over once, like a Future
        r1 = s.run(keys=(P + b"n",), args=(2,))  # pipelined like any command
        r2 = s.run([P + b"n"], [3])
        eq((r1.wait(), r2.wait()), (7, 10))
        raises(TypeError, s.run, P + b"n")  # keys must be a list or tuple
        raises(TypeError, s.run, [P + b"n"], [object()])  # checked before anything is sent
    _each(run)


def test_noscript_falls_back_to_eval():
    def run(c):
        s = c.register_script(INCR_BY)
        eq(c.command(b"SCRIPT", b"FLUSH").wait(), b"OK")
        w = counting(c)
        r1 = s.run([P + b"n"], [1])
        r2 = s.run([P + b"n"], [10])  # both EVALSHA answered NOSCRIPT; each is re-sent as EVAL when waited
        eq(r1.wait(), 1)
        while not r2.ready():
            pass
        eq(r2.wait(), 11)
        eq(w.sends, 4)  # two EVALSHA (NOSCRIPT), two EVAL
        eq(c.command(b"SCRIPT", b"EXISTS", s.sha).wait(), [1])  # EVAL cached it: EVALSHA works again
        w.sends = 0
        eq(s.run([P + b"n"], [1]).wait(), 12)
        eq(w.sends, 1)
        eq(c.unwaited_errors, 0)  # the NOSCRIPT replies were handled, not lost
    _each(run)


def test_script_error_is_a_reply_error():
    def run(c):
        c.rpush(P + b"l", b"x").wait()
        s = c.register_script(INCR_BY)
        e = raises(mr.ReplyError, s.run([P + b"l"], [1]).wait)  # WRONGTYPE raised inside the script
        ok("WRONGTYPE" in e.message, e.message)
        bad = c.register_script("return redis.error_reply('MYERR custom')")
        eq(raises(mr.ReplyError, bad.run().wait).code, "MYERR")
        eq(c.register_script("return {1, 'two', {3}}").run().wait(), [1, b"two", [3]])
    _each(run)


def test_without_hashlib_sha1_the_server_computes_it():
    # a port built without SHA-1: register_script() sends SCRIPT LOAD, the first run() takes the server's answer
    keep = scripts.sha1
    scripts.sha1 = None
    try:
        def run(c):
            w = counting(c)
            s = c.register_script(INCR_BY)
            eq(s.sha, None)
            eq(w.sends, 1)  # SCRIPT LOAD, pipelined: registering does not wait
            eq(s.run([P + b"n"], [4]).wait(), 4)
            eq(len(s.sha), 40)
            eq(s.sha, c.command(b"SCRIPT", b"LOAD", INCR_BY).wait())
            eq(s.run([P + b"n"], [1]).wait(), 5)
            eq(w.sends, 4)  # SCRIPT LOAD, EVALSHA, our own SCRIPT LOAD, EVALSHA
        _each(run)
    finally:
        scripts.sha1 = keep


def test_script_inside_a_transaction_goes_as_eval():
    def run(c):
        s = c.register_script(INCR_BY)
        c.command(b"SCRIPT", b"FLUSH").wait()
        with c.transaction() as t:
            a = s.run([P + b"n"], [2], client=t)
            b = t.incr(P + b"n")
        eq((a.wait(), b.wait()), (2, 3))
    _each(run)


def _major(c):
    info = c.info("server").wait()
    return int(info.split(b"redis_version:")[1].split(b".")[0])


LIB = """#!lua name=t_scripts
redis.register_function('t_add', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)
redis.register_function{function_name='t_get', callback=function(keys, args) return redis.call('GET', keys[1]) end,
                        flags={'no-writes'}}
"""


def test_fcall_on_redis7():
    c = _client()
    try:
        if _major(c) < 7:
            skip("FCALL needs Redis 7 (tests_host/test_server_matrix.py runs this module against Redis 7 and Valkey)")
        eq(c.command(b"FUNCTION", b"LOAD", b"REPLACE", LIB).wait(), b"t_scripts")
        c.delete(P + b"f").wait()
        eq(c.fcall("t_add", 1, P + b"f", 5).wait(), 5)
        eq(c.fcall_ro("t_get", 1, P + b"f").wait(), b"5")
        e = raises(mr.ReplyError, c.fcall_ro("t_add", 1, P + b"f", 1).wait)  # a writing function, read-only call
        ok(e.message, e.message)
        with c.transaction() as t:
            a = t.fcall("t_add", 1, P + b"f", 1)
        eq(a.wait(), 6)
        raises(TypeError, c.fcall, "t_add", "1", P + b"f")
        eq(c.command(b"FUNCTION", b"DELETE", b"t_scripts").wait(), b"OK")
        c.delete(P + b"f").wait()
    finally:
        _close(c)


class _NewOnly:
    # CircuitPython's hashlib: new(name, data) and no sha1 attribute
    @staticmethod
    def new(name, data=b""):
        h = _REAL_HASHLIB
        return h.new(name, data) if hasattr(h, "new") else h.sha1(data)


def test_circuitpython_hashlib_with_only_new():
    import sys
    if _REAL_HASHLIB is None or not (hasattr(_REAL_HASHLIB, "new") or hasattr(_REAL_HASHLIB, "sha1")):
        skip("no SHA-1 on this port to stand behind a CircuitPython-shaped hashlib")
    keep_h = sys.modules.get("hashlib")  # (None on MicroPython: built-in modules are not in sys.modules)
    keep_s = sys.modules["microredis.scripts"]
    sys.modules["hashlib"] = _NewOnly()
    del sys.modules["microredis.scripts"]
    try:
        s2 = __import__("microredis.scripts", None, None, ["scripts"])  # imported again, under that hashlib
        ok(s2 is not keep_s)
        c = _client()
        try:
            w = counting(c)
            s = c.register_script("return 1")
            ok(isinstance(s, s2.Script))
            eq((s.sha, w.sends), (b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0))  # computed here, nothing sent
            eq(s.run().wait(), 1)
        finally:
            _close(c)
    finally:
        if keep_h is None:
            del sys.modules["hashlib"]
        else:
            sys.modules["hashlib"] = keep_h
        sys.modules["microredis.scripts"] = keep_s
        setattr(mr, "scripts", keep_s)


def test_a_hashlib_that_refuses_sha1_falls_back_to_script_load():
    def refuse(data):
        raise ValueError("unsupported hash type")  # hashlib.new("sha1") where it is not built in, FIPS CPython
    keep = scripts.sha1
    scripts.sha1 = refuse
    try:
        c = _client()
        try:
            w = counting(c)
            s = c.register_script("return 1")
            eq((s.sha, w.sends), (None, 1))  # SCRIPT LOAD went out instead
            eq(s.run().wait(), 1)
            eq(s.sha, b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        finally:
            _close(c)
    finally:
        scripts.sha1 = keep


# ---- the NOSCRIPT fallback: a script's own errors, arguments reused, interruptions, runs never waited -------------
def test_script_error_that_looks_like_noscript_does_not_run_it_twice():
    # a script's own error_reply("NOSCRIPT ...") is not the server's NOSCRIPT: EVAL must not run the script again
    a = admin(P + b"k", P + b"n")
    c = handler().connect()
    try:
        s = c.register_script("redis.call('INCR', KEYS[1]); return redis.error_reply('NOSCRIPT of my own')")
        c.command(b"SCRIPT", b"LOAD", s.script).wait()
        e = raises(mr.ReplyError, s.run([P + b"n"]).wait)
        eq(e.message, "NOSCRIPT of my own")
        eq(c.get(P + b"n").wait(), b"1")  # ran once
        c.command(b"SCRIPT", b"FLUSH").wait()
        raises(mr.ReplyError, s.run([P + b"n"]).wait)  # the server's NOSCRIPT still falls back to EVAL
        eq(c.get(P + b"n").wait(), b"2")
    finally:
        c.close()
        a.close()


def test_script_noscript_fallback_sends_the_arguments_run_was_given():
    # a bytearray argument reused by the caller after run() (a board's buffer): the EVAL sent after NOSCRIPT carries
    # what run() was given, not the buffer's new content
    a = admin(P + b"k", P + b"n")
    c = handler().connect()
    try:
        s = c.register_script("return {KEYS[1], ARGV[1]}")
        c.command(b"SCRIPT", b"FLUSH").wait()
        key = bytearray(P + b"k")
        buf = bytearray(b"1")
        r = s.run([memoryview(key)], [buf])
        buf[0] = 50
        key[0] = 88
        eq(r.wait(), [P + b"k", b"1"])
    finally:
        c.close()
        a.close()


def test_script_interrupted_eval_after_noscript_fails_the_result_clearly():
    # ^C while the EVAL after NOSCRIPT is written: the next wait() raises ConnectionError (it raised AttributeError,
    # 'NoneType' ... 'wait')
    a = admin(P + b"k", P + b"n")
    h = handler()
    c = h.connect()
    try:
        s = c.register_script("return 7")
        c.command(b"SCRIPT", b"FLUSH").wait()
        w = interrupt(c)
        r = s.run()
        w.send_fail = KeyboardInterrupt()
        raises(KeyboardInterrupt, r.wait)
        raises(mr.ConnectionError, r.wait)
        c = h.connect()
        # the same, ^C while the NOSCRIPT reply itself is read
        c.command(b"SCRIPT", b"FLUSH").wait()
        w = interrupt(c)
        r = s.run(client=c)
        w.recv_fail = KeyboardInterrupt()
        raises(KeyboardInterrupt, r.wait)
        raises(mr.ConnectionError, r.wait)
        c = h.connect()
        eq(s.run(client=c).wait(), 7)
    finally:
        c.close()
        h.disconnect()
        a.close()


def test_script_run_never_waited_still_runs_after_noscript():
    # fire and forget: after NOSCRIPT the EVAL must go out even if nobody waits the run (it went out only from
    # wait()/ready(), so an unwaited run never ran and the script was never loaded again: after a server restart, a
    # board's counter script silently stopped counting)
    a = admin(P + b"k", P + b"n")
    c = handler().connect()
    try:
        s = c.register_script("return redis.call('INCR', KEYS[1])")
        c.command(b"SCRIPT", b"FLUSH").wait()
        s.run([P + b"n"])  # never waited
        eq(c.ping().wait(), True)  # its NOSCRIPT is read here
        s.run([P + b"n"])  # sends the first run's EVAL, then its own EVALSHA
        eq(c.ping().wait(), True)
        eq(c.get(P + b"n").wait(), b"2")
        eq(c.unwaited_errors, 0)  # the NOSCRIPT was handled, not an error left for the application
        r = s.run([P + b"n"])
        eq(r.wait(), 3)
        for _ in range(20):  # many runs in flight, none waited: the list of runs to look at stays short
            s.run([P + b"n"])
        ok(len(s._runs) <= 9, len(s._runs))
        eq(c.ping().wait(), True)
        s.run([P + b"n"])
        eq(c.ping().wait(), True)
        eq(c.get(P + b"n").wait(), b"24")
    finally:
        c.close()
        a.close()
