# Reconnect, resubscribe and health check (h.retry(), h.health_check(); retry.py) against a real redis-server.
# Plain MicroPython; runs under CPython too.
import cfg
from tinytest import eq, ok, raises, skip, allocs, IS_MICROPYTHON, now_ms, since, sleep_ms
from devkit import handler, admin, client_list, count_calls
import microredis as mr

P = b"t_retry:"
DOWN = ("127.0.0.1", 1)  # nothing listens there: a dial is refused at once


def kill(c):
    # the server drops c's connection (CLIENT KILL from another connection)
    cid = c.command(b"CLIENT", b"ID").wait()
    a = admin()
    eq(a.command(b"CLIENT", b"KILL", b"ID", cid).wait(), 1)
    a.close()


def test_without_retry_a_lost_client_stays_closed():
    h = handler()
    c = h.connect()
    kill(c)
    raises(mr.ConnectionError, lambda: c.get(P + b"x").wait())
    e = raises(mr.ConnectionError, c.get, P + b"x")
    ok("closed" in str(e), str(e))
    eq(getattr(h, "reconnects", 0), 0)
    eq(getattr(h, "retry_policy", None), None)


def test_client_kill_then_next_command_redials():
    h = handler().retry(backoff_ms=100)
    ok(h.retry_policy is not None)
    c = h.connect()
    eq(c.set(P + b"k", b"v1").wait(), True)
    kill(c)
    # the command in flight when the connection dies fails (its reply cannot come): nothing is re-sent silently
    raises(mr.ConnectionError, lambda: c.get(P + b"k").wait())
    eq(h.reconnects, 0)
    eq(c.get(P + b"k").wait(), b"v1")  # the next command re-dials: the same Client, a new connection
    eq(h.reconnects, 1)
    ok(h.last_error is not None)
    kill(c)
    raises(mr.ConnectionError, lambda: c.get(P + b"k").wait())
    eq(c.incr(P + b"n").wait() > 0, True)
    eq(h.reconnects, 2)
    c.command(b"DEL", P + b"k", P + b"n").wait()
    c.close()


def test_pending_futures_of_the_lost_connection_fail():
    h = handler().retry()
    c = h.connect()
    kill(c)
    with c.pipeline():
        f1 = c.set(P + b"a", b"1")
        f2 = c.set(P + b"b", b"2")
    raises(mr.RedisError, f1.wait)
    raises(mr.RedisError, f2.wait)
    eq(c.command(b"PING").wait(), b"PONG")
    eq(h.reconnects, 1)
    c.close()


def test_closed_client_is_not_revived():
    h = handler().retry()
    c = h.connect()
    c.close()
    e = raises(mr.ConnectionError, c.get, P + b"x")
    ok("closed" in str(e), str(e))
    c2 = h.connect()
    c3 = h.connect()  # closes c2: only the client handed out last may re-dial
    raises(mr.ConnectionError, c2.get, P + b"x")
    eq(c3.command(b"PING").wait(), b"PONG")
    eq(h.reconnects, 0)
    c3.close()


def test_on_reconnect_callback_and_push_handler_kept():
    seen = []
    h = handler().retry(on_reconnect=lambda hh: seen.append(hh.reconnects))
    c = h.connect()
    ph = lambda v: None  # noqa: E731
    c.push_handler = ph
    kill(c)
    raises(mr.ConnectionError, lambda: c.get(P + b"x").wait())
    eq(c.command(b"PING").wait(), b"PONG")
    eq(seen, [1])
    ok(c.push_handler is ph)
    c.close()


def test_fail_fast_between_attempts_with_the_server_down():
    h = handler(tmo=300).retry(backoff_ms=400, max_backoff_ms=1000, jitter=False)
    c = h.connect()
    h.address = DOWN  # the server "goes away": every dial is refused
    kill(c)
    raises(mr.ConnectionError, lambda: c.get(P + b"x").wait())
    t = now_ms()
    e = raises(mr.ConnectionError, c.get, P + b"x")  # the re-dial fails
    ok("next attempt in 400 ms" in str(e), str(e))
    for _ in range(5):  # between attempts: at once, no dial
        e = raises(mr.ConnectionError, c.get, P + b"x")
        ok("next attempt in" in str(e), str(e))
    ok(since(t) < 300, "fail-fast took %d ms" % since(t))
    ok(h.last_error is not None)
    sleep_ms(420)
    e = raises(mr.ConnectionError, c.get, P + b"x")  # the second re-dial: the backoff doubles
    ok("next attempt in 800 ms" in str(e), str(e))
    h.address = cfg.server()  # back
    e = raises(mr.ConnectionError, c.get, P + b"x")
    ok("next attempt in" in str(e), str(e))
    sleep_ms(820)
    eq(c.command(b"PING").wait(), b"PONG")
    eq(h.reconnects, 1)
    eq(h.retry_policy.fails, 0)  # reset by the successful dial
    c.close()


def test_connect_fails_fast_between_attempts():
    h = mr.ConnectionHandler.resp3(DOWN).timeout(300).retry(backoff_ms=300, jitter=True)
    raises(mr.ConnectionError, h.connect)
    t = now_ms()
    e = raises(mr.ConnectionError, h.connect)
    ok("next attempt in" in str(e), str(e))
    ok(since(t) < 200)
    d = h.retry_policy.delay
    ok(150 <= d <= 300, "jittered delay %d" % d)


def test_backoff_is_capped():
    h = mr.ConnectionHandler.resp3(DOWN).timeout(300).retry(backoff_ms=10, max_backoff_ms=40, jitter=False)
    for i in range(6):
        raises(mr.ConnectionError, h.connect)
        sleep_ms(h.retry_policy.delay + 5)
    eq(h.retry_policy.delay, 40)


def test_auth_failure_is_not_retried():
    a = admin()
    a.command(b"ACL", b"SETUSER", b"t_retry_u", b"reset", b"on", b">pw1", b"~*", b"+@all").wait()
    try:
        h = handler().auth(mr.Credentials.acl(b"t_retry_u", b"pw1")).retry(backoff_ms=10)
        c = h.connect()
        eq(c.command(b"PING").wait(), b"PONG")
        a.command(b"ACL", b"SETUSER", b"t_retry_u", b"resetpass", b">pw2").wait()
        kill(c)
        raises(mr.ConnectionError, lambda: c.get(P + b"x").wait())
        dials = count_calls(h, "_dial")
        e = raises(mr.AuthenticationError, c.get, P + b"x")
        ok("pw1" not in str(e) and "pw2" not in str(e))
        eq(len(dials), 1)
        sleep_ms(50)
        for _ in range(3):  # stopped: no dial, however long the backoff was
            e = raises(mr.AuthenticationError, c.get, P + b"x")
            ok("h.auth" in str(e), str(e))
        eq(len(dials), 1)
        ok(isinstance(h.last_error, mr.AuthenticationError))
        h.auth(mr.Credentials.acl(b"t_retry_u", b"pw2"))  # fixed credentials: the next command re-dials
        eq(c.command(b"PING").wait(), b"PONG")
        eq(len(dials), 2)
        eq(h.reconnects, 1)
        c.close()
    finally:
        a.command(b"ACL", b"DELUSER", b"t_retry_u").wait()
        a.close()


def _resubscribe(proto):
    name = b"t_retry_sub%d" % proto
    h = handler(proto).retry(backoff_ms=50).client_name(name)
    c = h.connect()
    gaps = []
    sub = c.subscribe(P + b"ch1", P + b"ch2")
    sub.psubscribe(P + b"pat*")
    sub.on_gap = lambda s: gaps.append(s.gaps)
    pub = admin()
    eq(pub.publish(P + b"ch1", b"before").wait(), 1)
    m = sub.receive(1000)
    eq(m.payload, b"before")
    kill_named(name)
    eq(sub.receive(200), None)  # lost while waiting: re-dialled and subscribed again inside receive()
    eq(sub.gaps, 1)
    eq(gaps, [1])
    eq(h.reconnects, 1)
    eq(pub.publish(P + b"ch2", b"after").wait(), 1)
    eq(pub.publish(P + b"patx", b"by pattern").wait(), 1)
    m = sub.receive(1000)
    eq((m.channel, m.payload), (P + b"ch2", b"after"))
    m = sub.receive(1000)
    eq((m.kind, m.pattern, m.payload), (b"pmessage", P + b"pat*", b"by pattern"))
    eq(sorted(sub.channels), [P + b"ch1", P + b"ch2"])
    eq(sorted(sub.patterns), [P + b"pat*"])
    # receive_into() too
    kill_named(name)
    buf = bytearray(32)
    eq(sub.receive_into(buf, 200), None)
    eq(sub.gaps, 2)
    eq(pub.publish(P + b"ch1", b"into").wait(), 1)
    n = sub.receive_into(buf, 1000)
    eq(bytes(buf[:n]), b"into")
    ok(sub.channel_is(P + b"ch1"))
    sub.close()
    if proto == 3:
        eq(c.command(b"PING").wait(), b"PONG")
    pub.close()
    c.close()


def kill_named(name, kind=b"pubsub"):
    # kill the (subscribed) connection named `name`: a RESP2 subscriber cannot ask its own CLIENT ID
    a = admin()
    found = 0
    for line in client_list(kind):
        if (b" name=" + name + b" ") in line:
            eq(a.command(b"CLIENT", b"KILL", b"ID", line.split(b" ")[0][3:]).wait(), 1)
            found += 1
    a.close()
    eq(found, 1, "subscribed connection %r" % name)


def test_kill_named_finds_its_connection_on_a_crowded_server():
    # CLIENT LIST grows with every connection open on the server (about 217 bytes each on Redis 6.2, 333 on Valkey
    # 8.1), and other modules leave some: the helpers read it whole, so a crowded server cannot make a kill fail
    import sys
    if sys.platform not in ("linux", "darwin"):
        skip("a board has no sockets for 80 connections")
    crowd = [handler().connect() for _ in range(80)]
    try:
        name = b"t_retry_crowd%d" % IS_MICROPYTHON
        h = handler().client_name(name)
        c = h.connect()
        ok(len(b"\n".join(client_list())) > 16384, "the listing is larger than the default memory_limit")
        kill_named(name, b"normal")
        raises(mr.ConnectionError, lambda: c.command(b"PING").wait())
        h.disconnect()
    finally:
        for x in crowd:
            x.close()


def test_subscription_survives_a_redial_resp3():
    _resubscribe(3)


def test_subscription_survives_a_redial_resp2():
    _resubscribe(2)


def test_subscription_resubscribes_on_the_next_command_resp3():
    h = handler(3).retry()
    c = h.connect()
    sub = c.subscribe(P + b"cmd")
    kill(c)
    raises(mr.ConnectionError, lambda: c.command(b"PING").wait())
    eq(c.command(b"PING").wait(), b"PONG")  # re-dialled, and the subscription is back
    eq(sub.gaps, 1)
    pub = admin()
    eq(pub.publish(P + b"cmd", b"x").wait(), 1)
    eq(sub.receive(1000).payload, b"x")
    pub.close()
    c.close()


# ---- permissions change under a subscription (ACL channel permissions, Redis >= 6.2) ---------------------------
ACL_USER = b"t_retry_acl"


def _acl(a, *rules):
    eq(a.command(b"ACL", b"SETUSER", ACL_USER, *rules).wait(), b"OK")


def _numsub(a, *chs):
    # subscribers the server counts per channel (from another connection): what sub.channels must match
    v = a.command(b"PUBSUB", b"NUMSUB", *chs).wait()
    return [v[i] for i in range(1, len(v), 2)]


def _line(a, name):
    # the CLIENT LIST line of the connection named `name` (None: it is gone)
    for line in client_list():
        if (b" name=" + name + b" ") in line:
            return line
    return None


def _dropped(a, name):
    # Redis (6.2.14 and 7 alike, measured on the 6.2 one) drops a client subscribed to a channel its user may no
    # longer access; a server that would not is made to (CLIENT KILL), so what follows is the re-dial either way
    line = _line(a, name)
    if line is None:
        return True
    eq(a.command(b"CLIENT", b"KILL", b"ID", line.split(b" ")[0][3:]).wait(), 1)
    return False


def _until(sub, cond, ms=2000):
    # receive() until cond() (the retries happen inside it); the messages it returns are kept
    got = []
    t = now_ms()
    while not cond() and since(t) < ms:
        m = sub.receive(20)
        if m is not None:
            got.append(m)
    ok(cond(), "not within %d ms" % ms)
    return got


def _acl_revoke_restore(proto):
    a = admin()
    ch1, ch2, ch3, ch4 = P + b"acl1", P + b"acl2", P + b"acl3", P + b"acl4"
    pat = P + b"aclp*"
    _acl(a, b"reset", b"on", b">pw", b"~*", b"+@all", b"allchannels")
    try:
        name = b"t_retry_acl%d" % proto
        h = handler(proto).auth(mr.Credentials.acl(ACL_USER, b"pw")).client_name(name)
        h.retry(backoff_ms=40, max_backoff_ms=160, jitter=False)
        c = h.connect()
        sub = c.subscribe(ch1, ch2)
        sub.psubscribe(pat)
        seen = []
        sub.on_gap = lambda s: seen.append((s.gaps, sorted(s.channels), sorted(s.refused_channels)))
        # revoke ch2 and the pattern: the subscriber is dropped, the re-dial's re-subscription refused for them
        _acl(a, b"resetchannels", b"&" + ch1)
        ok(_dropped(a, name), "Redis 6.2 dropped the subscriber")
        eq(sub.receive(100), None)  # re-dialled inside receive(): no NoPermissionError, no silence
        eq(h.reconnects, 1)
        eq(sub.gaps, 1)
        eq(seen, [(1, [ch1], [ch2])])  # on_gap sees what was refused
        eq(sorted(sub.channels), [ch1])
        eq(sorted(sub.refused_channels), [ch2])
        eq(sub.patterns, set())
        eq(sorted(sub.refused_patterns), [pat])
        ok(isinstance(sub.last_error, mr.NoPermissionError), repr(sub.last_error))
        eq(_numsub(a, ch1, ch2), [1, 0])  # sub.channels says what the server has
        eq(a.command(b"PUBSUB", b"NUMPAT").wait(), 0)
        eq(a.publish(ch1, b"still").wait(), 1)
        eq(sub.receive(1000).payload, b"still")
        # still refused: asked again on the backoff (40, 80, 160, 160 ms), receive() never waits past its timeout
        n = h.retry_policy.refusals.fails  # refused attempts in a row
        t = now_ms()
        for _ in range(6):
            eq(sub.receive(100), None)
        ok(since(t) < 900, "6 x receive(100) took %d ms" % since(t))
        n = h.retry_policy.refusals.fails - n
        ok(2 <= n <= 6, "%d attempts in %d ms" % (n, since(t)))
        eq(h.retry_policy.refusals.delay, 160)  # doubled up to max_backoff_ms
        eq(sub.gaps, 1)  # a refusal repeated is the same window
        eq(sorted(sub.refused_channels), [ch2])
        eq(h.reconnects, 1)
        # restored: the next attempt subscribes, on the same connection; messages published after it arrive
        _acl(a, b"allchannels")
        _until(sub, lambda: not (sub.refused_channels or sub.refused_patterns))
        eq(sub.gaps, 2)
        eq(seen[-1], (2, [ch1, ch2], []))
        eq(sorted(sub.patterns), [pat])
        eq(_numsub(a, ch1, ch2), [1, 1])
        eq(a.command(b"PUBSUB", b"NUMPAT").wait(), 1)
        eq(a.publish(ch2, b"back").wait(), 1)
        eq(a.publish(P + b"aclpx", b"by pattern").wait(), 1)
        m = sub.receive(1000)
        eq((m.channel, m.payload), (ch2, b"back"))
        m = sub.receive(1000)
        eq((m.pattern, m.payload), (pat, b"by pattern"))
        eq(h.reconnects, 1)
        # everything revoked: a live connection subscribed to nothing, that keeps asking
        _acl(a, b"resetchannels")
        ok(_dropped(a, name))
        if proto == 3:
            # the next command re-dials (the first one learns of the loss): the refusal does not fail it
            raises(mr.ConnectionError, lambda: c.command(b"PING").wait())
            eq(c.command(b"PING").wait(), b"PONG")
        else:
            eq(sub.receive(100), None)
        eq(h.reconnects, 2)
        eq(sub.gaps, 3)
        eq((sub.channels, sub.patterns), (set(), set()))
        eq(sorted(sub.refused_channels), [ch1, ch2])
        ok(_line(a, name) is not None, "the connection is alive")
        ok(b" sub=0 psub=0 " in _line(a, name), _line(a, name))
        eq(_numsub(a, ch1, ch2), [0, 0])
        _acl(a, b"&" + ch1)  # one channel back: it alone is confirmed (the others stay refused)
        t = now_ms()
        eq(sub.receive(500), None)  # woke up inside for the attempt (at most 160 ms away)
        ok(since(t) < 700, "receive(500) took %d ms" % since(t))
        eq(sub.channels, {ch1})
        eq(sorted(sub.refused_channels), [ch2])
        eq(sorted(sub.refused_patterns), [pat])
        eq(_numsub(a, ch1, ch2), [1, 0])
        eq(a.publish(ch1, b"one back").wait(), 1)
        eq(sub.receive(1000).payload, b"one back")
        _acl(a, b"allchannels")
        _until(sub, lambda: not sub._owes())
        eq(_numsub(a, ch1, ch2), [1, 1])
        # a subscribe() on the live connection refused for one of its names: raised; the allowed one confirmed, the
        # other kept and asked again before the client's next command
        _acl(a, b"resetchannels", b"&" + ch1, b"&" + ch2, b"&" + ch3, b"&" + pat)
        ok(_line(a, name) is not None, "still allowed: not dropped")
        gaps = sub.gaps
        e = raises(mr.NoPermissionError, sub.subscribe, ch3, ch4)
        ok("NOPERM" in str(e), str(e))
        eq(sorted(sub.channels), [ch1, ch2, ch3])
        eq(sorted(sub.refused_channels), [ch4])
        eq(_numsub(a, ch3, ch4), [1, 0])
        eq(sub.gaps, gaps)
        _acl(a, b"allchannels")
        sleep_ms(h.retry_policy.rwait_ms(c._clock) + 5)
        if proto == 3:
            eq(c.command(b"PING").wait(), b"PONG")  # asked again before it
        else:
            eq(sub.ping(), b"PONG")  # RESP2 subscribed mode: PING is the command the client may send
        eq(sub.refused_channels, set())
        eq(sub.gaps, gaps + 1)
        eq(_numsub(a, ch4), [1])
        eq(a.publish(ch4, b"four").wait(), 1)
        eq(sub.receive(1000).payload, b"four")
        eq(h.reconnects, 2)
        sub.close()
        eq(_numsub(a, ch1, ch2, ch3, ch4), [0, 0, 0, 0])
        if proto == 3:
            eq(c.command(b"PING").wait(), b"PONG")
        c.close()
    finally:
        a.command(b"ACL", b"DELUSER", ACL_USER).wait()
        a.close()


def test_a_subscriber_through_an_acl_revoke_and_restore_resp3():
    _acl_revoke_restore(3)


def test_a_subscriber_through_an_acl_revoke_and_restore_resp2():
    _acl_revoke_restore(2)


def test_a_refused_name_unsubscribed_is_no_longer_asked_for():
    a = admin()
    ch1, ch2 = P + b"aclu1", P + b"aclu2"
    _acl(a, b"reset", b"on", b">pw", b"~*", b"+@all", b"resetchannels", b"&" + ch1)
    try:
        h = handler().auth(mr.Credentials.acl(ACL_USER, b"pw")).retry(backoff_ms=20, jitter=False)
        c = h.connect()
        sub = c.subscribe(ch1)
        raises(mr.NoPermissionError, c.subscribe, ch2)  # on the client: the same subscription
        eq(sorted(sub.refused_channels), [ch2])
        sub.unsubscribe(ch2)
        eq(sub.refused_channels, set())
        _acl(a, b"allchannels")
        sleep_ms(50)
        eq(c.command(b"PING").wait(), b"PONG")
        eq(sub.receive(50), None)
        eq(h.retry_policy.owed, None)
        eq(_numsub(a, ch1, ch2), [1, 0])
        sub.close()
        c.close()
    finally:
        a.command(b"ACL", b"DELUSER", ACL_USER).wait()
        a.close()


def test_without_retry_a_refusal_is_only_raised():
    a = admin()
    ch1, ch2 = P + b"aclw1", P + b"aclw2"
    _acl(a, b"reset", b"on", b">pw", b"~*", b"+@all", b"resetchannels", b"&" + ch1)
    try:
        for h in (handler(), handler().retry()):
            h.auth(mr.Credentials.acl(ACL_USER, b"pw"))
            c = h.connect()
            # the first call refused leaves no subscription, retry or not: there is nothing to receive from
            raises(mr.NoPermissionError, c.subscribe, ch2)
            eq(c._sub, None)
            sub = c.subscribe(ch1)
            eq(sub.refused_channels, set())
            c.close()
        h = handler().auth(mr.Credentials.acl(ACL_USER, b"pw"))
        c = h.connect()
        sub = c.subscribe(ch1)
        raises(mr.NoPermissionError, sub.subscribe, ch2)
        eq((sub.channels, sub.refused_channels, sub.last_error), ({ch1}, set(), None))  # nothing kept
        _acl(a, b"allchannels")
        eq(c.command(b"PING").wait(), b"PONG")
        eq(sub.receive(50), None)
        eq(_numsub(a, ch2), [0])  # never asked again
        sub.close()
        c.close()
    finally:
        a.command(b"ACL", b"DELUSER", ACL_USER).wait()
        a.close()


def test_receive_returns_none_while_the_server_is_down():
    h = handler(3, tmo=300).retry(backoff_ms=100, jitter=False)
    c = h.connect()
    sub = c.subscribe(P + b"down")
    h.address = DOWN
    kill(c)
    t = now_ms()
    eq(sub.receive(0), None)  # never raises for the outage, never blocks with timeout 0
    eq(sub.receive(250), None)
    ok(since(t) < 600, "took %d ms" % since(t))
    ok(h.retry_policy.fails >= 2)
    h.address = cfg.server()
    sleep_ms(h.retry_policy.wait_ms(c._clock) + 10)
    eq(sub.receive(100), None)
    eq(sub.gaps, 1)
    pub = admin()
    eq(pub.publish(P + b"down", b"back").wait(), 1)
    eq(sub.receive(1000).payload, b"back")
    pub.close()
    c.close()


class _Spy:
    # counts the PINGs a transport writes (wraps its send)
    def __init__(self, t):
        self.t = t
        self.real = t.send
        self.pings = 0
        t.send = self.send

    def send(self, buf, n):
        if b"PING" in bytes(buf[:n]):
            self.pings += 1
        return self.real(buf, n)


def test_health_check_pings_only_after_the_idle_interval():
    h = handler().health_check(150)
    eq(h.retry_policy, None)  # a health check alone does not re-dial
    c = h.connect()
    spy = _Spy(c._transport)
    for _ in range(5):
        c.set(P + b"hc", b"1").wait()
    eq(spy.pings, 0)
    sleep_ms(200)
    eq(c.get(P + b"hc").wait(), b"1")
    eq(spy.pings, 1)
    eq(c.get(P + b"hc").wait(), b"1")
    eq(spy.pings, 1)
    sleep_ms(200)
    with c.pipeline():
        f1 = c.get(P + b"hc")
        f2 = c.get(P + b"hc")
    eq((f1.wait(), f2.wait()), (b"1", b"1"))
    eq(spy.pings, 2)  # one PING before the batch, not one per command
    c.command(b"DEL", P + b"hc").wait()
    c.close()


def test_health_check_while_receiving():
    # a quiet subscription PINGs once per interval while it waits, so a dead socket is found there too
    for proto in (3, 2):
        h = handler(proto).health_check(100)
        c = h.connect()
        sub = c.subscribe(P + b"quiet")
        spy = _Spy(c._transport)
        eq(sub.receive(350), None)
        ok(2 <= spy.pings <= 4, "%d PINGs in 350 ms" % spy.pings)
        pub = admin()
        n = spy.pings
        for _ in range(5):
            eq(pub.publish(P + b"quiet", b"m").wait(), 1)
            eq(sub.receive(1000).payload, b"m")
        eq(spy.pings, n)  # messages arriving: no PING needed
        pub.close()
        sub.close()
        c.close()


def test_health_check_fails_the_command_before_it_is_written():
    h = handler().health_check(100)
    c = h.connect()
    kill(c)  # the socket is dead and nobody has noticed yet
    sleep_ms(150)
    e = raises(mr.ConnectionError, c.set, P + b"never", b"1")
    ok("health check" in str(e), str(e))
    a = admin()
    eq(a.command(b"EXISTS", P + b"never").wait(), 0)
    a.close()


def test_health_check_with_retry_redials_the_dead_socket():
    h = handler().retry().health_check(100)
    c = h.connect()
    kill(c)
    sleep_ms(150)
    eq(c.set(P + b"hr", b"1").wait(), True)  # the PING found it dead, the re-dial sent the command
    eq(h.reconnects, 1)
    c.command(b"DEL", P + b"hr").wait()
    c.close()


class _S:
    pass


S = _S()


def _rounds():
    c = S.c
    for _ in range(50):
        S.res[0] = c.set(S.key, S.val).wait()
        S.res[1] = c.get_into(S.key, S.buf).wait()
        c.incr(S.ctr).wait()


def test_retry_and_health_check_allocate_nothing_in_the_steady_state():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    h = handler().retry().health_check(60000)
    h.memory(mr.MemoryParameters(buffer_size=256, frame_capacity=16, memory_limit=1024))
    S.c = c = h.connect()
    S.key = P + b"alloc"
    S.ctr = P + b"allocn"
    S.val = bytearray(b"21.5")
    S.buf = bytearray(16)
    S.res = [None, None]
    ok(c._retry is not None)
    for _ in range(3):
        _rounds()
    eq(allocs(_rounds), 0)
    eq(S.res, [True, 4])
    c.command(b"DEL", S.key, S.ctr).wait()
    c.close()


def test_receive_into_with_retry_allocates_nothing():
    if not IS_MICROPYTHON:
        skip("allocation is measured on MicroPython")
    h = handler().retry()
    c = h.connect()
    sub = c.subscribe(P + b"za")
    pub = admin()
    buf = bytearray(16)
    out = [0]

    def one():
        out[0] = sub.receive_into(buf, 1000)
    for _ in range(3):
        pub.publish(P + b"za", b"hello").wait()
        one()
    pub.publish(P + b"za", b"hello").wait()
    eq(allocs(one), 0)
    eq(out[0], 5)
    pub.close()
    c.close()


def test_outbox_uses_the_handler_policy():
    h = handler(3, tmo=300).retry(backoff_ms=1000, jitter=False)
    key = P + b"box"
    a = admin()
    a.command(b"DEL", key).wait()
    box = mr.Outbox(h, key)
    box.add({b"i": 1})
    eq(box.pump(), 1)
    h.address = DOWN
    kill(box._c)
    box.add({b"i": 2})
    t = now_ms()
    for _ in range(4):
        eq(box.pump(), 0)  # one refused dial, then fail-fast: never waits
    ok(since(t) < 800, "4 pumps took %d ms" % since(t))  # (slow imports under mpremote mount: generous)
    ok(box.last_error is not None)
    h.address = cfg.server()
    sleep_ms(1020)
    eq(box.pump(), 1)
    eq(h.reconnects, 1)
    eq(a.command(b"XLEN", key).wait(), 2)
    a.command(b"DEL", key).wait()
    a.close()


def test_disconnect_counts_as_a_loss():
    h = handler().retry()
    c = h.connect()
    h.disconnect()
    eq(c.command(b"PING").wait(), b"PONG")
    eq(h.reconnects, 1)
    c.close()


def test_retry_after_connect_takes_the_client_already_handed_out():
    h = handler()
    c = h.connect()
    h.retry()
    kill(c)
    raises(mr.ConnectionError, lambda: c.get(P + b"x").wait())
    eq(c.command(b"PING").wait(), b"PONG")
    eq(h.reconnects, 1)
    c.close()


def test_outbox_blocked_by_auth_resumes_after_new_credentials():
    a = admin()
    a.command(b"ACL", b"SETUSER", b"t_retry_o", b"reset", b"on", b">pw1", b"~*", b"+@all").wait()
    key = P + b"obox"
    a.command(b"DEL", key).wait()
    try:
        h = handler(3, tmo=500).auth(mr.Credentials.acl(b"t_retry_o", b"pw1")).retry(backoff_ms=10)
        box = mr.Outbox(h, key)
        box.add({b"i": 1})
        eq(box.pump(), 1)
        a.command(b"ACL", b"SETUSER", b"t_retry_o", b"resetpass", b">pw2").wait()
        kill(box._c)
        box.add({b"i": 2})
        eq(box.pump(), 0)  # finds the connection lost
        eq(box.pump(), 0)  # the re-dial is refused
        ok(box.blocked and isinstance(box.last_error, mr.AuthenticationError))
        box.resume()
        eq(box.pump(), 0)  # the handler's policy is stopped: no dial with the same credentials
        ok(box.blocked)
        h.auth(mr.Credentials.acl(b"t_retry_o", b"pw2"))
        box.resume()
        eq(box.pump(), 1)
        eq(a.command(b"XLEN", key).wait(), 2)
    finally:
        a.command(b"ACL", b"DELUSER", b"t_retry_o").wait()
        a.command(b"DEL", key).wait()
        a.close()


def test_tcp_keepalive_is_on_where_the_stack_names_it():
    c = handler().health_check(60000).connect()  # set by retry.py: a handler that opts in to neither pays nothing
    s = getattr(c._transport, "_sock", None)
    if s is None or not hasattr(s, "getsockopt"):
        c.close()
        skip("the socket has no getsockopt to read the option back")
    import socket
    if not hasattr(socket, "SO_KEEPALIVE"):
        c.close()
        skip("the stack does not name SO_KEEPALIVE")
    ok(s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0)
    c.close()


# ---- retry_on: pending reads of a lost connection re-sent once after the re-dial ------------------------------
def _blocked(c):
    # a BLPOP holds the connection, so the commands queued behind it are sent but unanswered when it is killed;
    # returns its future and a function that kills the connection (by the CLIENT ID asked before)
    cid = c.command(b"CLIENT", b"ID").wait()
    return c.command(b"BLPOP", P + b"nolist", b"5"), lambda: _kill_id(cid)


def _kill_id(cid):
    a = admin()
    eq(a.command(b"CLIENT", b"KILL", b"ID", cid).wait(), 1)
    a.close()


def test_retry_on_resends_a_pending_get_after_the_redial():
    h = handler().retry(backoff_ms=100, retry_on=(b"GET", "hgetall"))
    c = h.connect()
    eq(c.set(P + b"r", b"v1").wait(), True)
    b, kill_it = _blocked(c)
    n = c.incr(P + b"cnt")
    f = c.get(P + b"r")
    g = c.get_into(P + b"r", bytearray(8))
    kill_it()
    eq(f.wait(), b"v1")  # re-dialled inside wait() and read again
    eq(h.reconnects, 1)
    eq(g.wait(), 2)
    raises(mr.RedisError, b.wait)
    raises(mr.RedisError, n.wait)  # a write is never re-sent
    eq(c.get(P + b"cnt").wait(), None)  # it never ran (it was queued behind the BLPOP), and it was not sent again
    c.command(b"DEL", P + b"r").wait()
    c.close()


def test_retry_on_resends_on_the_next_command_too():
    h = handler().retry(backoff_ms=100, retry_on=b"GET")
    c = h.connect()
    eq(c.set(P + b"r", b"v2").wait(), True)
    b, kill_it = _blocked(c)
    f = c.get(P + b"r")
    kill_it()
    raises(mr.RedisError, b.wait)  # its read finds the connection lost; f is kept
    eq(c.set(P + b"r", b"v3").wait(), True)  # re-dials, re-sends the GET first
    eq(f.wait(), b"v2")
    c.command(b"DEL", P + b"r").wait()
    c.close()


def test_without_retry_on_a_pending_get_fails():
    h = handler().retry(backoff_ms=100)
    c = h.connect()
    b, kill_it = _blocked(c)
    f = c.get(P + b"r3")
    kill_it()
    raises(mr.RedisError, f.wait)
    raises(mr.RedisError, b.wait)
    eq(c.get(P + b"r3").wait(), None)
    c.close()


def test_retry_on_with_the_server_down_fails_the_kept_read():
    h = handler().retry(backoff_ms=100, retry_on=(b"GET",))
    c = h.connect()
    b, kill_it = _blocked(c)
    f = c.get(P + b"r")
    h.address = DOWN  # the re-dial is refused
    kill_it()
    raises(mr.RedisError, b.wait)
    e = raises(mr.InvalidFuture, f.wait)
    ok("not re-sent" in str(e), str(e))
    c.close()


def test_retry_on_refuses_writes_and_unknown_names():
    raises(ValueError, lambda: handler().retry(retry_on=(b"SET",)))
    raises(ValueError, lambda: handler().retry(retry_on=("incr",)))
    raises(ValueError, lambda: handler().retry(retry_on=(b"EXISTS",)))  # many keys: its slot does not hold them
    h = handler().retry(retry_on=("get", b"ttl"))
    eq(h.retry_policy.retry_on, (b"GET", b"TTL"))


def test_retry_on_resends_only_once():
    name = ("t_retry_once_%d_%d" % (IS_MICROPYTHON, now_ms())).encode()  # CPython and the unix port may run at once
    h = handler().client_name(name).retry(backoff_ms=100, retry_on=(b"GET",))
    c = h.connect()
    b, kill_it = _blocked(c)
    f = c.get(P + b"r")
    kill_it()
    raises(mr.RedisError, b.wait)
    killed = None
    try:
        with c.pipeline():
            c.set(P + b"r", b"x")  # re-dials: the re-sent GET and this SET wait in the send buffer
            try:
                kill_named(name, b"normal")
                killed = True
            except Exception as e:  # the kill's own failure is not the send's below: never swallowed by it
                killed = e
    except mr.RedisError:
        pass  # the send found the socket closed
    ok(killed is True, "the connection was not killed: %r" % (killed,))
    raises(mr.RedisError, f.wait)  # lost again: not re-sent a second time
    eq(h.reconnects, 1)
    c.command(b"DEL", P + b"r").wait()
    eq(h.reconnects, 2)
    c.close()


def test_retry_on_catalogue_reads_keep_their_conversion():
    h = handler().retry(backoff_ms=100, retry_on=("hgetall", "ttl", b"strlen"))
    c = h.connect()
    c.command(b"HSET", P + b"hh", b"f", b"v").wait()
    eq(c.set(P + b"s", b"abc").wait(), True)
    b, kill_it = _blocked(c)
    hg = c.hgetall(P + b"hh")
    t = c.ttl(P + b"s")
    sl = c.command("strlen", P + b"s")  # a name in any case, through command()
    kill_it()
    raises(mr.RedisError, b.wait)
    eq(hg.wait(), c.hgetall(P + b"hh").wait())  # the catalogue's conversion is applied to the re-sent reply too
    eq(t.wait(), -1)
    eq(sl.wait(), 3)
    eq(h.reconnects, 1)
    c.command(b"DEL", P + b"hh", P + b"s").wait()
    c.close()


def test_an_incr_in_flight_is_never_sent_twice():
    h = handler().retry(backoff_ms=100, retry_on=(b"GET",))
    c = h.connect()
    c.command(b"DEL", P + b"cnt2").wait()
    cid = c.command(b"CLIENT", b"ID").wait()
    n = c.incr(P + b"cnt2")  # it may reach the server before the kill, or not
    f = c.get(P + b"cnt2")
    _kill_id(cid)
    try:
        n.wait()
        v = None  # its reply arrived before the kill
    except mr.RedisError:
        v = f.wait()  # the GET, re-sent if it was lost with the INCR
    got = c.get(P + b"cnt2").wait()
    ok(got in (None, b"1"), got)  # 0 or 1, never 2
    if v is not None:
        eq(v, got)
    c.command(b"DEL", P + b"cnt2").wait()
    c.close()
