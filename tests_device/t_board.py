# What a telemetry board does, compactly, for small heaps: connect with auth, SET/PUBLISH/XADD telemetry, read a
# setting, take a command over pub/sub, meet a timeout, and allocate nothing in the steady state. Uses the core
# client only (no command catalogue), as a RAM-tight board would.
import cfg
from tinytest import eq, ok, raises, skip, allocs, IS_MICROPYTHON
import microredis as mr
from microredis.client import CoreClient

SMALL_HEAP = "frozen"  # 64k heap with the library frozen in (firmware); .mpy of it needs more on x64

DEV = b"t_board:dev1"


class _S:
    pass


S = _S()


def _handler(tmo=2000):
    h = mr.ConnectionHandler.resp3(cfg.server()).timeout(tmo)
    return h.memory(mr.MemoryParameters(buffer_size=256, frame_capacity=4, memory_limit=2048))


_OPEN = []


def _admin():
    return _connect(_handler())


def _connect(h):
    _OPEN.append(h)
    return h.connect(client=CoreClient)


def _close_all():
    # a small heap has no room for the buffers of connections left to the garbage collector
    while _OPEN:
        _OPEN.pop().disconnect()
    import gc
    gc.collect()


def test_connect_with_acl_user_and_wrong_password():
    a = _admin()
    a.command(b"ACL", b"SETUSER", b"t_board_u", b"on", b">board-pw", b"~t_board:*", b"&*", b"+@all").wait()
    try:
        h = _handler().auth(mr.Credentials.acl(b"t_board_u", b"board-pw"))
        c = _connect(h)
        eq(c.command(b"ACL", b"WHOAMI").wait(), b"t_board_u")
        h.disconnect()
        c = h = None
        raises(mr.AuthenticationError, _handler().auth(mr.Credentials.acl(b"t_board_u", b"nope")).connect)
    finally:
        a.command(b"ACL", b"DELUSER", b"t_board_u").wait()
        _close_all()


def test_telemetry_set_publish_xadd_and_settings():
    c = _connect(_handler())
    with c.pipeline():
        f1 = c.command(b"SET", DEV + b":temp", b"21.5", b"EX", 60)
        f2 = c.publish(DEV + b":telemetry", b"21.5")
        f3 = c.command(b"XADD", DEV + b":stream", b"MAXLEN", b"~", 100, b"*", b"temp", b"21.5")
        f4 = c.command(b"HSET", DEV + b":cfg", b"interval", 5)
        f5 = c.command(b"HGETALL", DEV + b":cfg")
    eq(f1.wait(), b"OK")
    eq(f2.wait(), 0)
    ok(b"-" in f3.wait())
    ok(f4.wait() in (0, 1))
    eq(f5.wait(), {b"interval": b"5"})
    ok(0 < c.command(b"TTL", DEV + b":temp").wait() <= 60)
    c.command(b"DEL", DEV + b":temp", DEV + b":stream", DEV + b":cfg").wait()
    _close_all()


def test_command_over_pubsub():
    c = _connect(_handler())
    pub = _admin()
    sub = c.subscribe(DEV + b":cmd")
    buf = bytearray(32)
    eq(sub.receive_into(buf, 0), None)
    pub.publish(DEV + b":cmd", b"led on").wait()
    n = sub.receive_into(buf, 1000)
    eq(bytes(buf[:n]), b"led on")
    ok(sub.channel_is(DEV + b":cmd"))
    eq(c.set(DEV + b":led", b"on").wait(), True)  # RESP3: commands still work while subscribed
    sub.close()
    c.command(b"DEL", DEV + b":led").wait()
    _close_all()


def test_timeout_then_recovery():
    h = _handler(150)
    c = _connect(h)
    raises(mr.TimeoutError, c.command(b"DEBUG", b"SLEEP", b"0.4").wait)
    c2 = None
    for _ in range(50):
        try:
            c2 = h.connect(client=CoreClient)
            break
        except mr.TimeoutError:
            pass
    eq(c2.command(b"PING").wait(), b"PONG")
    _close_all()


def _cycle():
    # the board's connection sends telemetry and listens (RESP3); the command comes from another client. (A
    # message that arrives while a command is waited is queued, which allocates: receive_into reads it uncopied
    # only when it is read straight off the wire.)
    c = S.c
    S.res[0] = c.set(S.key, S.val).wait()
    S.res[1] = c.publish(S.ch, S.val).wait()
    S.res[2] = c.get_into(S.key, S.buf).wait()
    S.pub.publish(S.cmd, S.val).wait()
    S.res[3] = S.sub.receive_into(S.buf, 1000)


def test_steady_state_allocates_nothing():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    S.c = _connect(_handler())
    S.pub = _admin()
    S.ch = DEV + b":telemetry"
    S.key = DEV + b":t"
    S.cmd = DEV + b":cmd2"
    S.val = b"21.5"
    S.buf = bytearray(16)
    S.res = [0, 0, 0, 0]
    S.sub = S.c.subscribe(S.cmd)
    for _ in range(3):
        _cycle()
    eq(allocs(_cycle), 0)
    eq(S.res, [True, 0, 4, 4])
    S.sub.close()
    S.c.command(b"DEL", S.key).wait()
    S.c = S.sub = S.pub = None
    _close_all()
