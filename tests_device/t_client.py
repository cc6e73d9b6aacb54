# ConnectionHandler / Client / Future against a real redis-server: auth, handshake, deadlines, slots, fire and
# forget, memory limit, dead sockets; and (an in-process transport) deadlines kept while pushes keep arriving. Plain
# MicroPython; runs under CPython too.
import cfg
from tinytest import eq, ok, raises, skip, now_ms, since, sleep_ms
from devkit import handler, admin, counting, Chunks, chunked_client, outcome
import microredis as mr
from microredis.clock import PeriodicTicks

P = b"t_client:"


def test_password_only_auth_and_wrong_password():
    a = admin()
    a.command(b"CONFIG", b"SET", b"requirepass", b"s3cret-pw").wait()
    try:
        h = handler().auth(mr.Credentials.password_only(b"s3cret-pw"))
        c = h.connect()
        eq(c.command(b"PING").wait(), b"PONG")
        h.disconnect()
        h = handler().auth(mr.Credentials.password_only("wrong-pw-123"))
        e = raises(mr.AuthenticationError, h.connect)
        ok("wrong-pw-123" not in str(e) and "wrong-pw-123" not in repr(e), str(e))
        ok("wrong-pw-123" not in repr(h) and "wrong-pw-123" not in repr(h._creds))
        eq(h._conn, None)
        # no credentials at all against a server that wants them
        raises(mr.AuthenticationError, handler().connect)
    finally:
        a.command(b"CONFIG", b"SET", b"requirepass", b"").wait()


def test_acl_user():
    a = admin()
    a.command(b"ACL", b"SETUSER", b"t_client_u", b"on", b">secret123!", b"~*", b"+@all").wait()
    try:
        for proto in (2, 3):
            c = handler(proto).auth(mr.Credentials.acl(b"t_client_u", b"secret123!")).connect()
            eq(c.command(b"ACL", b"WHOAMI").wait(), b"t_client_u")
        h = handler().auth(mr.Credentials.acl("t_client_u", "not-it"))
        e = raises(mr.AuthenticationError, h.connect)
        ok("not-it" not in str(e))
    finally:
        a.command(b"ACL", b"DELUSER", b"t_client_u").wait()


def test_acl_no_permission():
    a = admin()
    a.command(b"ACL", b"SETUSER", b"t_client_ro", b"on", b">pw", b"~*", b"+@all", b"-set").wait()
    try:
        c = handler().auth(mr.Credentials.acl(b"t_client_ro", b"pw")).connect()
        raises(mr.NoPermissionError, c.set(P + b"x", b"1").wait)
        eq(c.command(b"PING").wait(), b"PONG")
    finally:
        a.command(b"ACL", b"DELUSER", b"t_client_ro").wait()


def test_hello_rejected_clear_error_or_fallback():
    # needs a server without HELLO: tests_host starts one (rename-command) and passes its port as nohello_port
    port = cfg.get("nohello_port") or cfg.getenv("MICROREDIS_TEST_NOHELLO_PORT")
    if not port:
        skip("no server without HELLO configured")
    addr = (cfg.server()[0], int(port))
    e = raises(mr.ConnectionError, mr.ConnectionHandler.resp3(addr).timeout(2000).connect)
    ok("does not know HELLO" in str(e) and "resp2(" in str(e) and "fallback=True" in str(e), str(e))
    h = mr.ConnectionHandler.resp3(addr, fallback=True).timeout(2000)
    c = h.connect()
    eq(h._conn.protocol, 2)
    c.command(b"HSET", P + b"h", b"f", b"v").wait()
    eq(c.command(b"HGETALL", P + b"h").wait(), [b"f", b"v"])
    c.command(b"DEL", P + b"h").wait()
    eq(mr.ConnectionHandler.resp2(addr).timeout(2000).connect().command(b"PING").wait(), b"PONG")


def _refused(cls, h, *words):
    # connect() fails with cls, whose text names every word (the cause and its fix), and no secret
    e = raises(cls, h.connect)
    for w in words:
        ok(w in str(e), "%r not in %r" % (w, str(e)))
    ok("pw-t_client" not in str(e) and "pw-t_client" not in repr(e), str(e))
    ok("RESP3" not in str(e), str(e))  # not the old "server does not support RESP3" for every refusal
    eq(h._conn, None)
    return e


def test_handshake_refusals_name_their_cause_and_fix():
    # each state a server can refuse the handshake in, on the test server itself: NOAUTH (no credentials given),
    # WRONGPASS (wrong ones), NOPERM (an ACL user without SELECT, CLIENT SETNAME)
    a = admin()
    a.command(b"ACL", b"SETUSER", b"t_client_np", b"on", b">pw-t_client", b"~*", b"+@all", b"-select",
              b"-client").wait()
    acl = mr.Credentials.acl(b"t_client_np", b"pw-t_client")
    locked = False
    try:
        e = _refused(mr.NoPermissionError, handler(2).auth(acl).select(1), "SELECT", "+select", "h.select()")
        eq(e.code, "NOPERM")
        e = _refused(mr.NoPermissionError, handler().auth(acl).client_name(b"x"), "CLIENT SETNAME",
                     "+client|setname", "h.client_name()")
        eq(e.code, "NOPERM")
        e = _refused(mr.AuthenticationError, handler().auth(mr.Credentials.acl(b"t_client_np", b"pw-t_client!")),
                     "WRONGPASS", "h.auth()", "enabled")
        eq(e.code, "WRONGPASS")
        a.command(b"CONFIG", b"SET", b"requirepass", b"pw-t_client-default").wait()
        locked = True
        for h in (handler(), handler(2).select(1), handler(2).client_name(b"x")):
            e = _refused(mr.AuthenticationError, h, "NOAUTH", "h.auth(Credentials.password_only(password))")
            eq(e.code, "NOAUTH")
        e = _refused(mr.AuthenticationError, handler().auth(mr.Credentials.password_only(b"pw-t_client")),
                     "WRONGPASS", "h.auth()")
        h = handler().auth(mr.Credentials.password_only(b"pw-t_client")).retry(0, 0)
        _refused(mr.AuthenticationError, h, "WRONGPASS")
        _refused(mr.AuthenticationError, h, "WRONGPASS", "re-dialling stopped")  # named again, never retried
    finally:
        if locked:
            a = handler(2).auth(mr.Credentials.password_only(b"pw-t_client-default")).connect()
            a.command(b"CONFIG", b"SET", b"requirepass", b"").wait()
        a.command(b"ACL", b"DELUSER", b"t_client_np").wait()


def test_protected_mode_refusal_names_its_cause_and_fix():
    # needs a server in protected mode that counts this client as remote: tests_host passes its port as
    # denied_port (Redis 7 reached from 127.0.0.2, or a server sending Redis 6.2's exact refusal)
    port = cfg.get("denied_port") or cfg.getenv("MICROREDIS_TEST_DENIED_PORT")
    if not port:
        skip("no server in protected mode configured")
    addr = (cfg.server()[0], int(port))
    words = ("protected mode", "password", "bind", "--protected-mode no")
    R = mr.ConnectionHandler
    # whichever handshake command goes first gets the refusal as its reply; fallback=True does not take it for a
    # server without HELLO; the board programs' handler (resp3 with fallback, a name, retry()) names it too
    for h in (R.resp3(addr), R.resp3(addr, True), R.resp3(addr).auth(mr.Credentials.password_only(b"pw-t_client")),
              R.resp2(addr).client_name(b"x"), R.resp2(addr).select(2)):
        _refused(mr.ConnectionError, h.timeout(2000), *words)
    h = R.resp3(addr, True).client_name(b"x").timeout(2000).retry(0, 0)
    e = _refused(mr.ConnectionError, h, *words)
    ok(str(e).startswith("dial failed: "), str(e))
    ok("protected mode" in str(h.last_error), str(h.last_error))
    e = _refused(mr.ConnectionError, h, *words)  # each re-dial meets it again


def _says_denied(e, words):
    for w in words:
        ok(w in str(e), "%r not in %r" % (w, str(e)))
    ok(isinstance(e, mr.ConnectionError) and "Redis is running" in str(e), repr(e))  # the server's words, quoted


def test_protected_mode_refusal_without_a_handshake():
    # A RESP2 handler with nothing to send at the dial (no auth, select, client_name) connects without a word from
    # the server; protected mode's refusal then answers the first command, or lies where a reset hid it (MicroPython
    # loses the count of what a reset interrupted; a second write meets the reset first): every way the first
    # commands can meet it names the cause and the fix, and the connection is dropped at once
    port = cfg.get("denied_port") or cfg.getenv("MICROREDIS_TEST_DENIED_PORT")
    if not port:
        skip("no server in protected mode configured")
    addr = (cfg.server()[0], int(port))
    words = ("protected mode", "password", "bind", "--protected-mode no")
    R = mr.ConnectionHandler
    for pause in (0, 50, 0):  # (which way a command meets it depends on timing: each round may take another)
        h = R.resp2(addr).timeout(2000)
        c = h.connect()  # nothing was sent, nothing refused yet
        _says_denied(raises(mr.ConnectionError, c.set(P + b"denied", b"1").wait), words)
        ok(not h._conn.ok)  # dropped: the next connect() dials again
        e = raises(mr.ConnectionError, c.get, P + b"denied")
        ok(str(e).startswith("client is closed"), str(e))
        # two commands written before either is waited: the second write may meet the reset (after a pause it
        # does: what the server sent is then read by the failed send)
        c = R.resp2(addr).timeout(2000).connect()
        try:
            f1 = c.set(P + b"denied", b"1")
            sleep_ms(pause)
            f2 = c.incr(P + b"n")
        except mr.ConnectionError as err:
            _says_denied(err, words)
        else:
            _says_denied(raises(mr.ConnectionError, f1.wait), words)
            e = raises(mr.RedisError, f2.wait)  # InvalidFuture (the reply cannot be matched) names it too
            ok("protected mode" in str(e), repr(e))
        # one write of two (pipeline), and ready() polling rather than wait()
        c = R.resp2(addr).timeout(2000).connect()
        with c.pipeline():
            f1 = c.set(P + b"denied", b"1")
            f2 = c.get(P + b"denied")
        while not f1.ready():
            pass
        _says_denied(raises(mr.ConnectionError, f1.wait), words)
        ok("protected mode" in str(raises(mr.RedisError, f2.wait)))
    # a subscriber: the refusal answers SUBSCRIBE
    c = R.resp2(addr).timeout(2000).connect()
    _says_denied(raises(mr.ConnectionError, c.subscribe, P + b"ch"), words)
    # h.retry(): the refusal is h.last_error, and the next dial waits its backoff as after a refused handshake
    h = R.resp2(addr).timeout(2000).retry(100, 100, False)
    c = h.connect()
    _says_denied(raises(mr.ConnectionError, c.set(P + b"denied", b"1").wait), words)
    ok("protected mode" in str(h.last_error), str(h.last_error))
    e = raises(mr.ConnectionError, c.set, P + b"denied", b"1")  # no dial: within the backoff
    ok(str(e).startswith("not connected") and "protected mode" in str(e), str(e))
    sleep_ms(120)
    _says_denied(raises(mr.ConnectionError, c.set(P + b"denied", b"1").wait), words)  # dialed again, refused again
    try:
        import asyncio
        from microredis import aio
    except ImportError:
        return  # (MicroPython without its asyncio)

    async def first():
        a = await aio.connect(R.resp2(addr).timeout(2000))
        try:
            return await a.set(P + b"denied", b"1")
        finally:
            await a.aclose()

    _says_denied(raises(mr.ConnectionError, asyncio.run, first()), words)


def test_max_clients_refusal_is_the_servers_error_not_a_fallback():
    # needs a server with maxclients 1 (tests_host passes its port as full_port): it refuses on accept like protected
    # mode; fallback=True must not take that for a server without HELLO (RESP2, then "connection closed")
    port = cfg.get("full_port") or cfg.getenv("MICROREDIS_TEST_FULL_PORT")
    if not port:
        skip("no server with maxclients 1 configured")
    addr = (cfg.server()[0], int(port))
    hold = mr.ConnectionHandler.resp2(addr).timeout(2000)
    eq(hold.connect().command(b"PING").wait(), b"PONG")
    try:
        for h in (mr.ConnectionHandler.resp3(addr, True), mr.ConnectionHandler.resp3(addr)):
            e = raises(mr.ReplyError, h.timeout(2000).connect)
            ok("max number of clients" in str(e), str(e))
    finally:
        hold.disconnect()


def test_a_closed_client_says_the_way_back():
    # "client is closed" alone left a board's author guessing: the text names h.connect() and h.retry()
    h = handler()
    c = h.connect()
    cid = c.command(b"CLIENT", b"ID").wait()
    admin().command(b"CLIENT", b"KILL", b"ID", cid).wait()
    raises(mr.ConnectionError, c.command(b"PING").wait)  # the connection is lost (no retry())
    e = raises(mr.ConnectionError, c.set, P + b"closed", b"1")
    ok(str(e).startswith("client is closed") and "h.connect()" in str(e) and "h.retry()" in str(e), str(e))
    eq(h.connect().command(b"PING").wait(), b"PONG")  # the way back it names
    h.retry(0, 0)
    old = h.connect()
    h.connect()  # replaces it: only the newest client re-dials
    e = raises(mr.ConnectionError, old.set, P + b"closed", b"1")
    ok(str(e).startswith("client is closed") and "h.connect()" in str(e) and "replaced" in str(e), str(e))


def test_resp3_handshake_reports_server():
    h = handler()
    h.connect()
    eq(h._conn.protocol, 3)
    eq(h._conn.server[b"proto"], 3)
    eq(sorted(h._conn.server), [b"proto", b"version"])  # the rest of the HELLO map is not kept


def test_connect_hands_out_the_client_that_made_the_handshake():
    # no throwaway client (its reply slots and futures) during connect(client=...): the handshake's replies resolved
    # here (the default full Client is made after the dial, so a failed dial never imports the catalogue)
    h = handler()
    c = h.connect(client=mr.CoreClient)
    ok(c._resolved_count > 0)
    eq(c.command(b"PING").wait(), b"PONG")
    c2 = h.connect()  # the cached socket: a new client, the first one closed
    eq(c2._resolved_count, 0)
    eq(c2.command(b"PING").wait(), b"PONG")


def test_select_and_client_name():
    h = handler().select(3).client_name(b"board-7")
    c = h.connect()
    eq(c.command(b"CLIENT", b"GETNAME").wait(), b"board-7")
    c.set(P + b"db", b"three").wait()
    eq(admin().get(P + b"db").wait(), None)
    eq(c.get(P + b"db").wait(), b"three")
    c.command(b"DEL", P + b"db").wait()


def test_futures_waited_out_of_order():
    c = handler().connect()
    fs = [c.set(P + b"o%d" % i, i) for i in range(6)]
    gs = [c.get(P + b"o%d" % i) for i in range(6)]
    for i in (5, 0, 3, 1, 4, 2):
        eq(gs[i].wait(), b"%d" % i)
    for f in reversed(fs):
        eq(f.wait(), True)


def test_more_in_flight_than_frame_capacity():
    h = handler().memory(mr.MemoryParameters(buffer_size=128, frame_capacity=2, memory_limit=1024))
    c = h.connect()
    fs = [c.incr(P + b"cap") for _ in range(9)]
    ok(c._pending <= 2)
    got = [f.wait() for f in reversed(fs)]
    eq(got, list(range(9, 0, -1)))
    c.command(b"DEL", P + b"cap").wait()


def test_pipeline_is_one_send_and_round_trip_is_one_send_one_recv():
    c = handler().connect()
    w = counting(c)
    eq(c.set(P + b"rt", b"v").wait(), True)
    eq((w.sends, w.recvs), (1, 1))
    w.sends = w.recvs = 0
    eq(c.get(P + b"rt").wait(), b"v")
    eq((w.sends, w.recvs), (1, 1))
    w.sends = w.recvs = 0
    with c.pipeline():
        fs = [c.set(P + b"b%d" % i, i) for i in range(6)]
        eq(w.sends, 0)
    eq(w.sends, 1)
    for f in fs:
        eq(f.wait(), True)
    ok(w.recvs <= 2, "recvs %d" % w.recvs)
    c.flush()


def test_timeout_invalidates_others_and_next_connect_redials():
    h = handler(tmo=200)
    c = h.connect()
    t0 = now_ms()
    f = c.command(b"DEBUG", b"SLEEP", b"1.0")
    g = c.command(b"PING")
    e = raises(mr.TimeoutError, f.wait)
    dt = since(t0)
    ok(150 <= dt < 900, "timed out after %d ms" % dt)  # well before the server woke up
    ok("200" in str(e))
    raises(mr.InvalidFuture, g.wait)
    raises(mr.ConnectionError, c.get, P + b"x")
    sleep_ms(1000)
    c2 = h.connect()
    eq(c2.command(b"PING").wait(), b"PONG")


def test_timeout_while_waiting_a_newer_future():
    # the waited future raises TimeoutError when its own deadline has passed too, as does the oldest (the one
    # detected); a future sent later, whose deadline has not passed, raises InvalidFuture
    h = handler(tmo=250)
    c = h.connect()
    f = c.command(b"DEBUG", b"SLEEP", b"0.6")
    g = c.command(b"PING")
    sleep_ms(120)
    late = c.command(b"PING")
    raises(mr.TimeoutError, g.wait)
    raises(mr.TimeoutError, f.wait)
    raises(mr.InvalidFuture, late.wait)
    sleep_ms(500)
    eq(h.connect().command(b"PING").wait(), b"PONG")


def test_deadline_survives_a_wrapping_clock():
    # a 29-bit tick counter (CircuitPython's) that wraps 100 ms into the wait
    period = 1 << 29
    base = now_ms()

    def ticks():
        return (period - 100 + since(base)) % period

    clock = PeriodicTicks(ticks, period)
    h = handler(tmo=300)
    c = h.connect(clock=clock)
    t0 = now_ms()
    raises(mr.TimeoutError, c.command(b"DEBUG", b"SLEEP", b"1.0").wait)
    dt = since(t0)
    ok(250 <= dt < 900, "deadline took %d ms across the wrap" % dt)
    sleep_ms(900)
    eq(h.connect(clock=clock).command(b"PING").wait(), b"PONG")


def test_no_timeout_means_wait():
    c = handler(tmo=0).connect()
    eq(c.command(b"DEBUG", b"SLEEP", b"0.3").wait(), b"OK")


def test_reply_over_memory_limit_then_connection_still_works():
    h = handler().memory(mr.MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=256))
    c = h.connect()
    big = b"z" * 3000
    c.set(P + b"big", big).wait()  # a large *argument* goes out uncopied; limits apply to replies
    f = c.get(P + b"big")
    g = c.command(b"PING")
    raises(mr.MemoryFull, f.wait)
    eq(g.wait(), b"PONG")
    eq(c.command(b"STRLEN", P + b"big").wait(), 3000)
    ok(len(h._conn.reader.buf) <= 256)
    c.command(b"DEL", P + b"big").wait()


def test_get_into():
    c = handler().connect()
    c.set(P + b"gi", b"21.5C").wait()
    buf = bytearray(8)
    eq(c.get_into(P + b"gi", buf).wait(), 5)
    eq(bytes(buf[:5]), b"21.5C")
    eq(c.get_into(P + b"missing", buf).wait(), None)
    c.set(P + b"gi", b"0123456789").wait()
    raises(mr.MemoryFull, c.get_into(P + b"gi", buf).wait)
    eq(c.get(P + b"gi").wait(), b"0123456789")
    raises(TypeError, c.get_into, P + b"gi", b"immutable")
    c.command(b"DEL", P + b"gi").wait()


def test_bad_arguments_raise_before_anything_is_sent():
    c = handler().connect()
    w = counting(c)
    for bad in (None, True, [1], {"a": 1}, (1,), object()):
        raises(TypeError, c.set, P + b"k", bad)
        raises(TypeError, c.command, b"SET", P + b"k", bad)
    raises(TypeError, c.get, None)
    raises(ValueError, c.set, P + b"k", b"v", ex=-1)
    raises(ValueError, c.set, P + b"k", b"v", nx=True, xx=True)
    eq(w.sends, 0)
    eq(c._pending, 0)
    eq(c._encoder.n, 0)
    eq(c.set(P + b"k", "caf\u00e9").wait(), True)
    eq(c.get(P + b"k").wait(), "caf\u00e9".encode())
    eq(c.command(b"STRLEN", P + b"k").wait(), 5)
    c.command(b"DEL", P + b"k").wait()


def test_argument_kinds():
    c = handler().connect()
    for v, want in ((b"b", b"b"), (bytearray(b"ba"), b"ba"), (memoryview(b"mv"), b"mv"), ("s", b"s"),
                    (-12, b"-12"), (0, b"0"), (2 ** 40, b"1099511627776"), (1.5, b"1.5")):
        c.set(P + b"kind", v).wait()
        eq(c.get(P + b"kind").wait(), want)
    c.command(b"DEL", P + b"kind").wait()


def test_set_options():
    c = handler().connect()
    k = P + b"opt"
    eq(c.set(k, b"1", ex=100).wait(), True)
    ok(90 < c.command(b"TTL", k).wait() <= 100)
    eq(c.set(k, b"2", nx=True).wait(), None)
    eq(c.set(k, b"3", xx=True, keepttl=True).wait(), True)
    ok(c.command(b"TTL", k).wait() > 0)
    eq(c.set(k, b"4", get=True).wait(), b"3")
    eq(c.set(k, b"5", px=50000).wait(), True)
    c.command(b"DEL", k).wait()


def test_fire_and_forget_errors_are_counted_and_close_drains():
    h = handler()
    c = h.connect()
    c.set(P + b"ff", b"text").wait()
    c.command(b"NOSUCHCOMMAND")
    c.incr(P + b"ff")  # WRONG... not an integer
    for i in range(5):
        c.set(P + b"ff%d" % i, i)
    eq(c.command(b"PING").wait(), b"PONG")
    eq(c.unwaited_errors, 2)
    ok(isinstance(c.last_unwaited_error, mr.ReplyError))
    f = c.set(P + b"ff9", b"x")
    t = h._conn.transport
    c.close()
    eq(c._pending, 0)
    eq(f.wait(), True)  # its reply was read by close() and kept
    c2 = h.connect()
    ok(h._conn.transport is t, "close() left the socket usable, so connect() reuses it")
    eq(c2.get(P + b"ff3").wait(), b"3")
    c2.command(b"DEL", P + b"ff", P + b"ff9", *[P + b"ff%d" % i for i in range(5)]).wait()


def test_waiting_an_unwaited_error_clears_the_count():
    c = handler().connect()
    f = c.command(b"NOSUCHCOMMAND")
    c.command(b"PING").wait()
    eq(c.unwaited_errors, 1)
    raises(mr.ReplyError, f.wait)
    eq(c.unwaited_errors, 0)
    eq(c.last_unwaited_error, None)


def test_stale_future_is_detected():
    h = handler().memory(mr.MemoryParameters(buffer_size=128, frame_capacity=4, memory_limit=1024))
    c = h.connect()
    f = c.get(P + b"none")
    eq(f.wait(), None)
    raises(mr.InvalidFuture, f.wait)
    ok(f.ready())
    # waited futures are reissued oldest first: a kept handle stays detectably stale while others come and go
    for i in range(3):
        g = c.incr(P + b"stale")
        ok(g is not f)
        eq(g.wait(), i + 1)
        raises(mr.InvalidFuture, f.wait)
    c.command(b"DEL", P + b"stale").wait()
    # a future of a connection that broke raises InvalidFuture, not a later reply
    c2 = handler(tmo=150).connect()
    a = c2.command(b"DEBUG", b"SLEEP", b"0.3")
    b = c2.command(b"PING")
    raises(mr.TimeoutError, a.wait)
    raises(mr.InvalidFuture, b.wait)
    raises(mr.InvalidFuture, b.wait)
    sleep_ms(300)


def test_ready_never_blocks():
    c = handler().connect()
    f = c.command(b"DEBUG", b"SLEEP", b"0.2")
    t0 = now_ms()
    eq(f.ready(), False)
    ok(since(t0) < 250)
    while not f.ready():
        sleep_ms(10)
    eq(f.wait(), b"OK")


def test_connect_reuses_cached_socket():
    h = handler()
    c = h.connect()
    cid = c.command(b"CLIENT", b"ID").wait()
    for _ in range(3):
        c = h.connect()
        eq(c.command(b"CLIENT", b"ID").wait(), cid)
    h.disconnect()
    ok(h.connect().command(b"CLIENT", b"ID").wait() != cid)


def test_client_kill_then_use_ping_redials():
    h = handler().use_ping()
    c = h.connect()
    cid = c.command(b"CLIENT", b"ID").wait()
    eq(admin().command(b"CLIENT", b"KILL", b"ID", cid).wait(), 1)
    sleep_ms(50)
    c = h.connect()
    cid2 = c.command(b"CLIENT", b"ID").wait()
    ok(cid2 != cid)
    # without use_ping the dead socket shows on the next command, and the connect() after that re-dials
    h = handler()
    c = h.connect()
    cid = c.command(b"CLIENT", b"ID").wait()
    admin().command(b"CLIENT", b"KILL", b"ID", cid).wait()
    sleep_ms(50)
    c = h.connect()
    raises(mr.ConnectionError, c.command(b"PING").wait)
    eq(h.connect().command(b"PING").wait(), b"PONG")


def test_connect_redials_when_draining_the_previous_client_fails():
    h = handler(tmo=200)
    c = h.connect()
    c.command(b"DEBUG", b"SLEEP", b"0.5")  # never waited: connect() must drain it, and times out doing so
    sleep_ms(10)
    c2 = None
    t0 = now_ms()
    while c2 is None:
        try:
            c2 = h.connect()
        except mr.TimeoutError:
            ok(since(t0) < 2000)  # the re-dial's handshake may also meet the sleeping server
    eq(c2.command(b"PING").wait(), b"PONG")


def test_connection_refused_is_connection_error():
    host, port = cfg.server()
    h = mr.ConnectionHandler.resp3((host, 1)).timeout(1000)
    raises(mr.ConnectionError, h.connect)


def test_from_url():
    h = mr.from_url("redis://u%40x:p%3Ass@example.invalid:6390/4?protocol=2")
    eq(h.address, ("example.invalid", 6390))
    eq(h.protocol, 2)
    eq(h._db, 4)
    eq(h._creds.username, "u@x")
    eq(h._creds.password, "p:ss")
    ok("p:ss" not in repr(h))
    h = mr.from_url("redis://:only@h")
    eq((h.address, h._creds.username, h._creds.password), (("h", 6379), None, "only"))
    h = mr.from_url("rediss://h:7000")
    eq((h.address, h._tls, h._sni), (("h", 7000), True, "h"))
    h = mr.from_url("redis://[::1]:7001/0")
    eq(h.address, ("::1", 7001))
    raises(ValueError, mr.from_url, "http://h")
    raises(ValueError, mr.from_url, "redis://")
    host, port = cfg.server()
    c = mr.from_url("redis://%s:%d/1" % (host, port)).connect()
    eq(c.command(b"PING").wait(), b"PONG")


def test_commands_that_would_break_reply_matching_are_refused():
    c = handler().connect()
    w = counting(c)
    raises(ValueError, c.command)
    for args in ((b"SUBSCRIBE", b"x"), ("psubscribe", "x*"), (b"MONITOR",), (b"reset",), (b"HELLO", b"2"),
                 (b"QUIT",), (b"CLIENT", b"REPLY", b"SKIP"), ("client", "reply", "off"), (b"UNSUBSCRIBE",),
                 (b"SYNC",), ("psync", "?", "-1")):
        e = raises(ValueError, c.command, *args)
        ok("command()" in str(e), str(e))
    eq((w.sends, c._pending, c._encoder.n), (0, 0, 0))
    eq(c.command(b"CLIENT", b"ID").wait() > 0, True)  # other CLIENT subcommands pass


def test_failed_encoding_leaves_the_connection_usable():
    c = handler().connect()
    k = P + b"enc"
    eq(c.set(k, 10 ** 60).wait(), True)  # a long int goes out as its digits
    eq(c.get(k).wait(), b"1" + b"0" * 60)
    eq(c.set(k, -(10 ** 30)).wait(), True)
    eq(c.get(k).wait(), b"-1" + b"0" * 30)
    try:
        import array
        wide = memoryview(array.array("H", [0x4142, 0x4344]))
        if hasattr(wide, "itemsize"):
            raises(TypeError, c.set, k, wide)
    except ImportError:
        pass
    raises(TypeError, c.get_into, k, memoryview(b"read-only"))
    eq((c._pending, c._encoder.n), (0, 0))
    eq(c.get(k).wait(), b"-1" + b"0" * 30)
    c.command(b"DEL", k).wait()


def test_ready_loop_ends_at_the_deadline():
    h = handler(tmo=150)
    c = h.connect()
    f = c.command(b"DEBUG", b"SLEEP", b"0.4")
    t0 = now_ms()
    while not f.ready():
        ok(since(t0) < 1000, "ready() never saw the deadline")
        sleep_ms(10)
    raises(mr.TimeoutError, f.wait)
    sleep_ms(400)
    eq(h.connect().command(b"PING").wait(), b"PONG")


def test_from_url_errors_do_not_quote_the_url():
    for url in ("redis://user:s3cr/et@localhost:6379/0", "redis://:my?secret@localhost"):
        h = mr.from_url(url)
        eq(h.address, ("localhost", 6379))
    eq(mr.from_url("redis://user:s3cr/et@localhost:6379/0")._creds.password, "s3cr/et")
    eq(mr.from_url("redis://:my?secret@localhost")._creds.password, "my?secret")
    for url in ("redis://u:ab%zzSECRET@h", "redis://u:SECRET@h:notaport", "redis://u:SECRET@h/xdb",
                "redis://u:SECRET@h?protocol=x"):
        e = raises(ValueError, mr.from_url, url)
        ok("SECRET" not in str(e) and "zz" not in str(e), str(e))


def test_configuration_validation():
    raises(TypeError, mr.ConnectionHandler.resp3, "host:6379")
    h = handler()
    raises(ValueError, h.timeout, -1)
    raises(TypeError, h.memory, {"buffer_size": 10})
    raises(TypeError, h.auth, "password")
    raises(ValueError, h.select, -1)
    ok(h.use_ping() is h and h.timeout(10) is h and h.select(0) is h and h.client_name(b"x") is h)


# ---- deadlines while pushes keep arriving (an in-process transport) ----------------------------------------------
# Out-of-band frames must count against the deadline too: wait() (_step()), and ready() and close() (_read1()), not
# only when a receive brought nothing. A server (or a busy RESP3 subscription / tracking stream) that keeps sending
# pushes while the reply does not come must not keep wait() past its deadline nor make ready() block.
class PushStream(Chunks):
    # a push on every receive for `secs` seconds (a receive that may wait takes 20 ms), then the reply
    def __init__(self, secs, reply):
        Chunks.__init__(self)
        self.t0 = now_ms()
        self.span = int(secs * 1000)
        self.reply = reply

    def recv_into(self, buf, start, ms):
        if self.reply is None or self.chunks:
            return Chunks.recv_into(self, buf, start, ms)
        if since(self.t0) < self.span:
            if ms != 0:
                sleep_ms(20)
            p = b">2\r\n$10\r\ninvalidate\r\n$1\r\nk\r\n"
        else:
            p = self.reply
            self.reply = None
        buf[start:start + len(p)] = p
        return len(p)


def _push_client(secs):
    c, t = chunked_client(protocol=3, timeout=300)
    s = PushStream(secs, b":5\r\n")
    c._transport = s
    c.push_handler = lambda v: None
    return c


def test_wait_keeps_its_deadline_while_pushes_arrive():
    c = _push_client(1.5)
    t0 = now_ms()
    f = c.incr(b"n")
    got = outcome(f)
    took = since(t0) / 1000
    eq((got, took < 1.0), ("TimeoutError", True), "took %.2f s" % took)


def test_ready_never_blocks_while_pushes_arrive():
    c = _push_client(1.5)
    f = c.incr(b"n")
    t0 = now_ms()
    f.ready()
    took = since(t0) / 1000
    ok(took < 0.5, "ready() blocked %.2f s (deadline 0.3 s)" % took)


def test_close_keeps_the_deadline_while_pushes_arrive():
    # close() drains the pending futures through _read1(None): the same loop
    c = _push_client(1.5)
    c.incr(b"n")
    t0 = now_ms()
    try:
        c.close()
    except mr.RedisError:
        pass
    took = since(t0) / 1000
    ok(took < 1.0, "close() took %.2f s (deadline 0.3 s)" % took)
