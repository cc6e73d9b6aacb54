# Pub/Sub and raw-stream edge cases: leftovers of send_raw(), frames a real server never sends (injected into the
# reader), oversized messages and long channel names in receive_into(), a RESP2 PING over memory_limit. Plain
# MicroPython; runs under CPython too.
from tinytest import eq, ok, raises, IS_MICROPYTHON
from devkit import handler, admin as publisher, chunked_client
import microredis as mr

P = b"t_pubsub_edges:"


def _heap_growth(fn, arg):
    # MicroPython: bytes allocated by fn(arg) with the collector off (CPython: None)
    if not IS_MICROPYTHON:
        fn(arg)
        return None
    import gc
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        fn(arg)
        return gc.mem_alloc() - before
    finally:
        gc.enable()


def inject(c, data):
    # bytes a real server never sends, placed ahead of whatever the socket delivers next
    c._reader.feed(data)


# ---- 1. send_raw() leftovers never reach the next client --------------------------------------------------------
def test_unread_raw_reply_does_not_reach_the_next_client():
    h = handler(3)
    c = h.connect()
    c.send_raw([b"ECHO", b"old"])  # its reply is never read
    c.close()
    c2 = h.connect()
    eq(c2.echo(b"mine").wait(), b"mine")
    eq(c2.echo(b"again").wait(), b"again")
    h.disconnect()


def test_unread_raw_bytes_do_not_reach_the_next_client():
    h = handler(2)
    c = h.connect()
    c.send_raw(b"ECHO old1\r\nECHO old2\r\n")
    h.connect()  # closes c
    c3 = h.connect()
    eq(c3.echo(b"mine").wait(), b"mine")
    h.disconnect()


def test_monitor_lines_do_not_reach_the_next_client():
    h = handler(3)
    c = h.connect()
    c.send_raw([b"MONITOR"])
    publisher().set(P + b"mon", b"x").wait()  # a MONITOR line for c, never read
    c.close()
    c2 = h.connect()
    eq(c2.echo(b"mine").wait(), b"mine")
    eq(c2.set(P + b"mon2", b"v").wait(), True)
    c2.command(b"DEL", P + b"mon", P + b"mon2").wait()
    h.disconnect()


def test_raw_client_keeps_working_until_the_next_connect():
    h = handler(3)
    c = h.connect()
    c.send_raw([b"ECHO", b"one"])
    eq(c.read_raw(1000), b"one")
    eq(c.echo(b"two").wait(), b"two")  # the current client is unaffected
    old = h._conn
    c.close()
    c2 = h.connect()
    ok(h._conn is not old, "a connection that carried raw traffic is dialled again")
    eq(c2.echo(b"three").wait(), b"three")
    h.disconnect()


def test_subscription_refuses_while_raw_replies_are_unread():
    c = handler(3).connect()
    c.send_raw([b"ECHO", b"pending"])
    raises(mr.RedisError, c.subscribe, P + b"raw")
    eq(c.read_raw(1000), b"pending")
    sub = c.subscribe(P + b"raw")
    eq(sub.channels, {P + b"raw"})
    sub.close()
    eq(c.echo(b"ok").wait(), b"ok")


def test_same_client_refuses_commands_while_raw_replies_are_unread():
    # the unread raw reply would otherwise be taken for the next command's
    h = handler(3)
    c = h.connect()
    c.send_raw([b"ECHO", b"raw1"])
    raises(mr.RedisError, c.echo, b"mine")
    eq(c.read_raw(1000), b"raw1")
    eq(c.echo(b"mine").wait(), b"mine")
    c.send_raw(b"ECHO raw2\r\n")  # protocol bytes: how many replies is unknown
    e = raises(mr.RedisError, c.get, P + b"x")
    ok("connect()" in str(e), str(e))
    c2 = h.connect()
    eq(c2.echo(b"fresh").wait(), b"fresh")
    h.disconnect()


def test_send_raw_rejects_non_buffers_before_sending():
    c = handler(3).connect()
    raises(TypeError, c.send_raw, 5)
    raises(TypeError, c.send_raw, [b"ECHO", None])
    eq(c.echo(b"fine").wait(), b"fine")


# ---- 2. malformed push / RESP2 pub/sub frames ------------------------------------------------------------------
_BIG_COUNT = b">3\r\n$9\r\nsubscribe\r\n:200000000\r\n:2\r\n"


def test_confirmation_with_an_integer_channel_allocates_nothing_big():
    mem = mr.MemoryParameters(buffer_size=256, frame_capacity=4, memory_limit=4096)
    c = handler(3, mem=mem).connect()
    sub = c.subscribe(P + b"m1")
    inject(c, _BIG_COUNT)
    grew = _heap_growth(sub.receive, 0)
    ok(grew is None or grew < 4096, "%d bytes allocated for one frame" % (grew or 0))
    eq(sub.malformed, 1)
    eq(sub.channels, {P + b"m1"})
    eq(c.echo(b"after").wait(), b"after")
    sub.close()


def test_message_with_wrong_types_is_dropped_and_counted():
    c = handler(3).connect()
    pub = publisher()
    sub = c.subscribe(P + b"m2")
    f = c.echo(b"pending")
    inject(c, b">3\r\n$7\r\nmessage\r\n:1\r\n$1\r\nx\r\n")  # integer channel
    inject(c, b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n_\r\n")  # null payload
    inject(c, b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n*1\r\n$1\r\nx\r\n")  # array payload
    inject(c, b">4\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n$1\r\ny\r\n")  # one element too many
    inject(c, b">3\r\n$8\r\npmessage\r\n$1\r\np\r\n$1\r\nx\r\n")  # pmessage without payload
    inject(c, b">4\r\n$8\r\npmessage\r\n_\r\n$1\r\nc\r\n$1\r\nx\r\n")  # null pattern
    eq(f.wait(), b"pending")  # no other future affected
    eq(sub.malformed, 6)
    pub.publish(P + b"m2", b"real").wait()
    m = sub.receive(1000)
    eq((m.channel, m.payload), (P + b"m2", b"real"))
    eq(sub.receive(0), None)
    sub.close()


def test_confirmation_with_wrong_types_keeps_the_subscription_consistent():
    c = handler(3).connect()
    sub = c.subscribe(P + b"m3")
    inject(c, b">3\r\n$11\r\nunsubscribe\r\n*0\r\n:0\r\n")  # array channel
    inject(c, b">3\r\n$9\r\nsubscribe\r\n$1\r\nz\r\n$1\r\n1\r\n")  # count not an int
    inject(c, b">2\r\n$9\r\nsubscribe\r\n$1\r\nz\r\n")  # too short
    seen = []
    c.push_handler = seen.append
    eq(sub.receive(0), None)
    eq(sub.malformed, 3)
    eq(len(seen), 0)
    eq(sub.channels, {P + b"m3"})
    sub.close()
    eq(sub.channels, set())
    eq(c.echo(b"ok").wait(), b"ok")


def test_resp2_malformed_frames_never_resolve_a_future():
    c = handler(2).connect()
    pub = publisher()
    sub = c.subscribe(P + b"r2m")
    inject(c, b"*3\r\n$7\r\nmessage\r\n:7\r\n$1\r\nx\r\n")
    inject(c, b"*3\r\n$9\r\nsubscribe\r\n:200000000\r\n:2\r\n")
    inject(c, b"*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n")  # too short: still a pub/sub frame, never a reply
    eq(sub.ping(b"hi"), b"hi")
    eq(sub.malformed, 3)
    pub.publish(P + b"r2m", b"real").wait()
    eq(sub.receive(1000).payload, b"real")
    sub.close()
    eq(c.set(P + b"r2m", b"v").wait(), True)
    c.command(b"DEL", P + b"r2m").wait()


def test_null_unsubscribe_confirmation_ends_the_wait():
    # a server with nothing subscribed confirms an UNSUBSCRIBE once, with a null channel: the bookkeeping then
    # agrees with it instead of waiting for confirmations that never come
    c = handler(3, tmo=1000).connect()
    sub = c.subscribe(P + b"n1")
    sub.unsubscribe(P + b"n1")
    eq(sub.channels, set())
    sub.channels.add(P + b"ghost1")  # bookkeeping drifted: it claims two channels, the server has none
    sub.channels.add(P + b"ghost2")
    sub.unsubscribe()
    eq(sub.channels, set())
    eq(c.echo(b"ok").wait(), b"ok")
    sub.close()


# ---- 3. receive_into() counts an oversized message and keeps going ------------------------------------------------
def test_receive_into_oversized_is_counted_zero_copy_path():
    c = handler(3).connect()
    pub = publisher()
    sub = c.subscribe(P + b"big")
    buf = bytearray(8)
    pub.publish(P + b"big", b"much too long").wait()
    pub.publish(P + b"big", b"fits").wait()
    eq(sub.receive_into(buf, 1000), 4)
    eq(bytes(buf[:4]), b"fits")
    eq(sub.dropped, 1)
    pub.publish(P + b"big", b"also too long").wait()
    eq(sub.receive_into(buf, 200), None)  # nothing else arrives: None on timeout, not MemoryFull
    eq(sub.dropped, 2)
    eq(sub.receive_into(buf, 0), None)
    sub.close()


def test_receive_into_oversized_is_counted_queued_path():
    c = handler(3).connect()
    pub = publisher()
    sub = c.subscribe(P + b"bigq")
    pub.publish(P + b"bigq", b"much too long").wait()
    pub.publish(P + b"bigq", b"fits").wait()
    eq(c.echo(b"x").wait(), b"x")  # reads (and queues) both messages
    eq(sub._qn, 2)
    buf = bytearray(8)
    eq(sub.receive_into(buf, 1000), 4)
    eq(bytes(buf[:4]), b"fits")
    eq(sub.dropped, 1)
    pub.publish(P + b"bigq", b"also too long").wait()
    eq(c.echo(b"y").wait(), b"y")
    eq(sub.receive_into(buf, 0), None)
    eq(sub.dropped, 2)
    sub.close()


def test_receive_into_with_decode_responses():
    c = handler(3).decode_responses().connect()
    pub = publisher()
    sub = c.subscribe(P + b"dec")
    pub.publish(P + b"dec", "caf\u00e9").wait()
    eq(c.echo(b"x").wait(), "x")  # the message is queued as str
    buf = bytearray(16)
    n = sub.receive_into(buf, 1000)
    eq(bytes(buf[:n]), "caf\u00e9".encode())
    ok(sub.channel_is(P + b"dec") and sub.channel_is((P + b"dec").decode()))
    sub.close()


# ---- 4. channel names longer than channel_buffer ----------------------------------------------------------------
def test_long_channel_name_is_never_cut():
    c = handler(3).connect()
    pub = publisher()
    long_ch = P + b"L" * 100
    sub = c.subscribe(long_ch, P + b"short")
    buf = bytearray(16)
    pub.publish(long_ch, b"v1").wait()
    eq(sub.receive_into(buf, 1000), 2)
    eq(sub.channel_len, len(long_ch))
    eq(bytes(sub.channel_buf[:sub.channel_len]), long_ch)
    ok(sub.channel_is(long_ch))
    ok(not sub.channel_is(long_ch[:64]))
    pub.publish(P + b"short", b"v2").wait()
    eq(sub.receive_into(buf, 1000), 2)
    ok(sub.channel_is(P + b"short"))
    eq(len(sub.channel_buf), 64)  # back to the buffer allocated once
    # queued path too
    pub.publish(long_ch, b"v3").wait()
    eq(c.echo(b"x").wait(), b"x")
    eq(sub.receive_into(buf, 1000), 2)
    ok(sub.channel_is(long_ch))
    sub.close()


# ---- 5. the rest ---------------------------------------------------------------------------------------------------
def test_queue_accounts_str_payloads_in_bytes():
    mem = mr.MemoryParameters(buffer_size=256, frame_capacity=4, memory_limit=1024)
    c = handler(3, mem=mem).decode_responses().connect()
    pub = publisher()
    sub = c.subscribe(P + b"q")
    with pub.pipeline():
        for i in range(10):
            pub.publish(P + b"q", "\u20ac" * 100)  # 100 characters, 300 bytes
    pub.command(b"PING").wait()
    eq(c.echo(b"x").wait(), "x")
    ok(sub._qbytes <= 1024, "%d bytes queued" % sub._qbytes)
    ok(sub._qn <= 3, "%d queued" % sub._qn)
    got = 0
    while sub.receive(0) is not None:
        got += 1
    eq(got + sub.dropped, 10)
    eq(sub._qbytes, 0)
    sub.close()


def test_oversized_queue_entry_does_not_evict_the_queue():
    c = handler(3).connect()
    sub = c.subscribe(P + b"ev")
    sub._qlimit = 100
    inject(c, b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\na\r\n")
    inject(c, b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nb\r\n")
    inject(c, b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$200\r\n" + b"x" * 200 + b"\r\n")
    eq(c.echo(b"x").wait(), b"x")
    eq(sub.dropped, 1)
    eq([m.payload for m in (sub.receive(0), sub.receive(0))], [b"a", b"b"])
    sub.close()


def test_channel_name_too_long_for_memory_limit_is_refused_before_sending():
    mem = mr.MemoryParameters(buffer_size=128, frame_capacity=4, memory_limit=512)
    c = handler(3, mem=mem).connect()
    raises(ValueError, c.subscribe, P + b"x" * 600)
    eq(c._sub, None)
    sub = c.subscribe(P + b"ok")
    raises(ValueError, sub.psubscribe, P + b"x" * 600)
    eq(sub.patterns, set())
    sub.close()
    eq(c.echo(b"ok").wait(), b"ok")


def test_resp2_ping_reply_of_the_wrong_shape():
    h = handler(2)
    c = h.connect()
    sub = c.subscribe(P + b"pg")
    # a real server answers PING in subscribed mode with [b"pong", b""]; a shorter array is a protocol error
    inject(c, b"*1\r\n$4\r\npong\r\n")
    raises(mr.ProtocolError, sub.ping, b"x")
    h.disconnect()


def test_resp2_two_element_message_is_not_taken_for_a_pong():
    h = handler(2)
    c = h.connect()
    sub = c.subscribe(P + b"pg2")
    inject(c, b"*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n")  # a short pub/sub frame: counted, never the ping's reply
    eq(sub.ping(b"hi"), b"hi")
    eq(sub.malformed, 1)
    h.disconnect()


def test_resp3_short_pubsub_push_is_malformed():
    c = handler(3).connect()
    seen = []
    c.push_handler = seen.append
    sub = c.subscribe(P + b"short")
    inject(c, b">2\r\n$7\r\nmessage\r\n$1\r\nx\r\n")
    inject(c, b">1\r\n$11\r\nunsubscribe\r\n")
    inject(c, b">2\r\n$10\r\ninvalidate\r\n_\r\n")  # not pub/sub: the push handler's
    eq(c.echo(b"x").wait(), b"x")
    eq(sub.malformed, 2)
    eq(len(seen), 1)
    sub.close()


def test_unsolicited_oversized_reply_during_subscribe_breaks_the_connection():
    # a reply over memory_limit with no command pending answers nothing: it is not the subscribe's error (which
    # would leave the confirmation that follows to be taken as a later command's reply)
    mem = mr.MemoryParameters(buffer_size=128, frame_capacity=4, memory_limit=512)
    h = handler(2, mem=mem)
    c = h.connect()
    inject(c, b"$2000\r\n" + b"x" * 2000 + b"\r\n")
    raises(mr.ProtocolError, c.subscribe, P + b"u")
    raises(mr.ConnectionError, c.echo, b"x")
    eq(h.connect().echo(b"fresh").wait(), b"fresh")
    h.disconnect()


def test_subscribe_on_a_closed_client():
    c = handler(3).connect()
    c.close()
    raises(mr.ConnectionError, c.subscribe, P + b"c")
    raises(mr.ConnectionError, c.psubscribe, P + b"c*")


def test_failed_close_drops_the_connection():
    # RESP2: a subscription that could not be closed leaves the server in subscribed mode, so its frames could be
    # taken for replies: the connection is dropped instead
    h = handler(2)
    c = h.connect()
    sub = c.subscribe(P + b"fc")
    c.send_raw([b"ECHO", b"y"])  # refused in subscribed mode: an error reply nobody has read yet
    raises(mr.RedisError, sub.close)
    raises(mr.ConnectionError, c.echo, b"x")
    eq(h.connect().echo(b"fresh").wait(), b"fresh")
    h.disconnect()


def test_resp2_close_after_a_malformed_confirmation_drops_the_connection():
    # the malformed frame stood in for the real confirmation, which is still on its way: after close() it would be
    # taken for a command's reply, so the connection is dropped instead of leaving subscribed mode blind
    h = handler(2)
    c = h.connect()
    inject(c, b"*3\r\n$9\r\nsubscribe\r\n:1\r\n:1\r\n")
    sub = c.subscribe(P + b"mc")
    eq(sub.malformed, 1)
    raises(mr.ConnectionError, sub.close)
    raises(mr.ConnectionError, c.echo, b"x")
    eq(h.connect().echo(b"fresh").wait(), b"fresh")
    h.disconnect()


def test_receive_refuses_while_raw_replies_are_unread():
    c = handler(3).connect()
    sub = c.subscribe(P + b"rr")
    c.send_raw([b"ECHO", b"raw"])
    raises(mr.RedisError, sub.receive, 0)
    raises(mr.RedisError, sub.receive_into, bytearray(8), 0)
    raises(mr.RedisError, sub.ping)
    eq(c.read_raw(1000), b"raw")
    eq(sub.receive(0), None)
    sub.close()
    eq(c.echo(b"ok").wait(), b"ok")


def test_unsolicited_subscribe_confirmation_is_not_believed():
    # the channel sets only ever hold what was asked for: a server cannot grow them frame by frame
    c = handler(3).connect()
    sub = c.subscribe(P + b"us")
    for i in range(5):
        inject(c, b">3\r\n$9\r\nsubscribe\r\n$6\r\nghost%d\r\n:2\r\n" % i)
    inject(c, b">3\r\n$11\r\nunsubscribe\r\n$" + b"%d" % len(P + b"us") + b"\r\n" + P + b"us\r\n:0\r\n")
    eq(sub.receive(0), None)
    eq(sub.malformed, 5)
    eq(sub.channels, set())  # an unsolicited unsubscribe is believed
    sub.close()
    eq(c.echo(b"ok").wait(), b"ok")


def _no_room():
    raise mr.MemoryFull("no memory to grow the receive buffer")


def test_receive_into_when_the_receive_buffer_cannot_grow():
    # that MemoryFull drops the connection (nothing was discarded in sync): it is raised, not counted as a message
    c = handler(3).connect()
    sub = c.subscribe(P + b"ng")
    c._reader.space = _no_room
    raises(mr.MemoryFull, sub.receive_into, bytearray(8), 100)
    eq(sub.dropped, 0)
    raises(mr.ConnectionError, sub.receive_into, bytearray(8), 0)


def test_tracking_invalidations_redirected_to_a_subscription():
    # the one real message whose payload is not a string: a list of keys (None after a flush). Redis sends it to a
    # RESP2 client subscribed to __redis__:invalidate (a RESP3 one gets `invalidate` pushes instead)
    c = handler(2).connect()
    cid = c.command(b"CLIENT", b"ID").wait()
    sub = c.subscribe(b"__redis__:invalidate")
    tracker = publisher()
    tracker.command(b"CLIENT", b"TRACKING", b"on", b"REDIRECT", cid).wait()
    tracker.set(P + b"inv", b"1").wait()
    tracker.get(P + b"inv").wait()
    publisher().set(P + b"inv", b"2").wait()
    m = sub.receive(1000)
    ok(m is not None, "no invalidation message")
    eq((m.kind, m.channel, m.payload), (b"message", b"__redis__:invalidate", [P + b"inv"]))
    eq(sub.malformed, 0)
    tracker.get(P + b"inv").wait()
    publisher().set(P + b"inv", b"3").wait()
    eq(sub.receive_into(bytearray(64), 1000), None)  # not a byte string: dropped there, and counted
    eq(sub.dropped, 1)
    eq(sub.malformed, 0)
    sub.close()
    tracker.command(b"DEL", P + b"inv").wait()


# ---- 6. a RESP2 subscribed ping over memory_limit (an in-process transport) --------------------------------------
def test_resp2_subscribed_ping_over_memory_limit_is_refused_and_keeps_the_connection():
    # its reply (an array) must not be discarded as if it were a pub/sub frame (client._get: skipped_type 42 in
    # subscribed mode), which left the PING's future to wait out its deadline and dropped the connection: refused
    # before sending (ValueError, as _send() refuses channel names over memory_limit) or MemoryFull for that PING
    # with the connection kept
    c, t = chunked_client(protocol=2, buffer_size=64, limit=256, timeout=300)
    t.add(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
    s = c.subscribe(b"ch")
    t.add(b"*2\r\n$4\r\npong\r\n$300\r\n" + b"x" * 300 + b"\r\n")
    try:
        s.ping(b"x" * 300)
        got = "no error"
    except (ValueError, mr.RedisError) as e:
        got = type(e).__name__
    ok(got in ("ValueError", "MemoryFull"), got)
    ok(c._conn is not None, "the connection was dropped")
