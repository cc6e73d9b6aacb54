# The Redis Cluster client (mr.Cluster, cluster.py) against a real cluster of 3 primaries: slots, routing, pipelines,
# MOVED and ASK across a live slot migration. Plain MicroPython; runs under CPython too (tests_host/test_shared.py
# starts the cluster for modules with CLUSTER = True and passes its nodes in MICROREDIS_CLUSTER_NODES).
import cfg
from tinytest import eq, ok, raises, allocs, IS_MICROPYTHON, SkipTest, now_ms, since
import microredis as mr
from microredis.cluster import crc16, key_slot, command_slot, parse_map, SLOTS

CLUSTER = True
P = b"{t_cluster}"  # (only the tests that do not care where keys go use this one tag)


def cluster():
    return mr.Cluster(cfg.cluster()).timeout(3000)


def admin(addr):
    # a plain client of one node (no routing): what the node itself holds
    return mr.ConnectionHandler(addr).timeout(3000).connect()


# ---- slots (no server) ---------------------------------------------------------------------------------------------
def test_crc16_xmodem_check_value():
    eq(crc16(b"123456789"), 0x31C3)
    eq(crc16(b""), 0)
    eq(crc16(bytearray(b"123456789")), 0x31C3)
    eq(crc16(memoryview(b"xx123456789")[2:]), 0x31C3)


def test_key_slot_vectors_of_the_cluster_spec():
    eq(key_slot(b"123456789"), 0x31C3)  # 12739
    eq(key_slot(b"foo"), 12182)
    eq(key_slot(b"bar"), 5061)
    eq(key_slot(b"hello"), 866)
    eq(key_slot("foo"), 12182)  # str, bytearray, memoryview: their bytes
    eq(key_slot(bytearray(b"foo")), 12182)
    eq(key_slot(memoryview(b"foo")), 12182)
    # hash tags: the part between the first { and the first } after it, when not empty
    eq(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"))
    eq(key_slot(b"{user1000}.following"), key_slot(b"user1000"))
    eq(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 0x3FFF)  # empty tag: the whole key
    eq(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"))
    eq(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"))
    eq(key_slot(b"{}"), crc16(b"{}") & 0x3FFF)
    eq(key_slot(b"foo{"), crc16(b"foo{") & 0x3FFF)
    eq(key_slot(42), key_slot(b"42"))
    raises(TypeError, key_slot, [1])


def test_command_slot_finds_the_keys_and_refuses_crossslot():
    eq(command_slot(("GET", b"foo")), 12182)
    eq(command_slot((b"ping",)), -1)
    eq(command_slot(("ECHO", b"foo")), -1)
    eq(command_slot(["MGET", b"{a}1", b"{a}2", b"{a}3"]), key_slot(b"a"))
    eq(command_slot(["MSET", b"{a}1", b"foo", b"{a}2", b"bar"]), key_slot(b"a"))  # values are not keys
    eq(command_slot(("EVAL", b"return 1", 2, b"{a}x", b"{a}y", b"foo")), key_slot(b"a"))
    eq(command_slot(("EVAL", b"return 1", 0, b"foo")), -1)
    eq(command_slot(("ZUNIONSTORE", b"{a}d", 2, b"{a}x", b"{a}y", b"WEIGHTS", 1, 2)), key_slot(b"a"))
    eq(command_slot(("XREAD", b"COUNT", 2, b"STREAMS", b"{a}s", b"{a}t", b"0", b"0")), key_slot(b"a"))
    eq(command_slot(("BLPOP", b"{a}l", b"{a}m", 0)), key_slot(b"a"))
    eq(command_slot(("SMOVE", b"{a}s", b"{a}t", b"member")), key_slot(b"a"))
    eq(command_slot(("OBJECT", b"ENCODING", b"foo")), 12182)
    for args in (["MGET", b"foo", b"bar"], ["DEL", b"{a}1", b"{b}1"], ["MSET", b"foo", b"1", b"bar", b"2"],
                 ("EVAL", b"", 2, b"foo", b"bar"), ("XREAD", b"STREAMS", b"foo", b"bar", b"0", b"0")):
        e = raises(ValueError, command_slot, args)
        ok("hash tag" in str(e), str(e))


def test_parse_map_of_cluster_slots_adopts_only_a_whole_map():
    n = [b"10.0.0.1", 7000, b"id"]
    whole = [[5461, 16383, [b"10.0.0.2", 7001, b"id2"]], [0, 5460, n]]
    eq(parse_map(whole, "x"), [(0, 5460, ("10.0.0.1", 7000)), (5461, 16383, ("10.0.0.2", 7001))])
    eq(parse_map([], "x"), None)  # empty
    eq(parse_map([[0, 5460, n]], "x"), None)  # partial
    eq(parse_map([[0, 5460, n], [5460, 16383, n]], "x"), None)  # overlapping
    eq(parse_map([[0, 5459, n], [5461, 16383, n]], "x"), None)  # a hole
    eq(parse_map([[0, SLOTS, n]], "x"), None)  # past the last slot
    eq(parse_map([[0, 16383, [b"", 7000]]], "10.9.9.9"), [(0, 16383, ("10.9.9.9", 7000))])  # the address asked
    eq(parse_map(b"ERR", "x"), None)


def _node(host, port, role, flat=False, **more):
    # one node of a CLUSTER SHARDS reply: a dict (RESP3) or a flat list (RESP2)
    d = {b"id": b"x" * 40, b"port": port, b"ip": host, b"endpoint": host, b"role": role, b"health": b"online"}
    for k in more:
        d[k.replace("_", "-").encode()] = more[k]
    if not flat:
        return d
    out = []
    for k in d:
        out.append(k)
        out.append(d[k])
    return out


def _shard(slots, nodes, flat=False):
    return [b"slots", slots, b"nodes", nodes] if flat else {b"slots": slots, b"nodes": nodes}


def test_parse_map_of_cluster_shards_adopts_only_a_whole_map():
    for flat in (False, True):
        a = _node(b"10.0.0.1", 7000, b"master", flat)
        r = _node(b"10.0.0.4", 7003, b"replica", flat)
        b = _node(b"10.0.0.2", 7001, b"master", flat)
        whole = [_shard([5461, 10000, 0, 5460], [r, a], flat), _shard([10001, 16383], [b], flat)]
        eq(parse_map(whole, "x"), [(0, 5460, ("10.0.0.1", 7000)), (5461, 10000, ("10.0.0.1", 7000)),
                                      (10001, 16383, ("10.0.0.2", 7001))], flat)
        eq(parse_map(whole + [_shard([], [_node(b"10.0.0.9", 1, b"master", flat)], flat)], "x"),
           parse_map(whole, "x"))  # a shard without slots owns nothing
        eq(parse_map(whole[:1], "x"), None)  # partial
        eq(parse_map([_shard([0, 16383], [r], flat)], "x"), None)  # slots without a primary
        eq(parse_map([_shard([0, 16383, 5], [a], flat)], "x"), None)  # an odd slot list
        eq(parse_map([_shard([0, 16383], [a], flat), _shard([0, 1], [b], flat)], "x"), None)  # overlapping
        eq(parse_map([_shard([0, b"16383"], [a], flat)], "x"), None)
        eq(parse_map([], "x"), None)
        eq(parse_map(b"ERR", "x"), None)
        eq(parse_map([b"slots"], "x"), None)
        # endpoint "?" (cluster-preferred-endpoint-type unknown-endpoint): the ip; neither: the address asked
        q = _node(b"10.0.0.1", 7000, b"master", flat, endpoint=b"?")
        eq(parse_map([_shard([0, 16383], [q], flat)], "h"), [(0, 16383, ("10.0.0.1", 7000))])
        q = _node(b"", 7000, b"master", flat, endpoint=b"")
        eq(parse_map([_shard([0, 16383], [q], flat)], "h"), [(0, 16383, ("h", 7000))])
        # a hostname endpoint wins over the ip; TLS: the tls-port
        q = _node(b"10.0.0.1", 7000, b"master", flat, endpoint=b"node1.example", tls_port=7100)
        eq(parse_map([_shard([0, 16383], [q], flat)], "h"), [(0, 16383, ("node1.example", 7000))])
        eq(parse_map([_shard([0, 16383], [q], flat)], "h", True), [(0, 16383, ("node1.example", 7100))])
    # decode_responses: names as str
    d = {"slots": [0, 16383], "nodes": [{"ip": "10.0.0.1", "port": 7000, "role": "master", "endpoint": "10.0.0.1"}]}
    eq(parse_map([d], "h"), [(0, 16383, ("10.0.0.1", 7000))])


def test_bad_arguments_are_refused_before_any_dial():
    raises(ValueError, mr.Cluster, [])
    raises(TypeError, mr.Cluster, ["127.0.0.1:7000"])
    raises(ValueError, mr.Cluster, [("127.0.0.1", 7000)], 3, 0)
    raises(TypeError, mr.Cluster([("127.0.0.1", 7000)]).timeout, "5")
    raises(TypeError, mr.Cluster([("127.0.0.1", 7000)]).memory, 512)


# ---- against the cluster --------------------------------------------------------------------------------------------
def test_the_map_is_read_from_any_startup_node():
    nodes = cfg.cluster()
    cl = mr.Cluster([("127.0.0.1", 1)] + nodes[-1:]).timeout(3000)  # the first startup node is down
    c = cl.connect()
    eq(cl.refreshes, 1)
    eq(len(cl.nodes), 3)  # the primaries (a replica among the startup nodes owns no slot)
    for a in cl.nodes:
        ok(a in nodes, a)
    r = cl.ranges()
    eq(r[0][0], 0)
    eq(r[-1][1], SLOTS - 1)
    ok(len(r) <= 8, r)  # a range table, not a slot list
    eq(c.ping().wait(), True)
    c.close()


def _stats(addrs):
    # [calls of CLUSTER SHARDS, calls of CLUSTER SLOTS, failed CLUSTER calls], summed over the nodes (INFO
    # commandstats: Redis 7+ and Valkey count each subcommand, Redis 6 only "cluster")
    out = [0, 0, 0]
    for a in addrs:
        x = admin(a)
        info = x.command(b"INFO", b"commandstats").wait()
        x.close()
        for ln in info.decode().split("\r\n"):
            if ln.startswith("cmdstat_cluster"):
                name, rest = ln.split(":", 1)
                f = {}
                for kv in rest.split(","):
                    k, v = kv.split("=")
                    f[k] = v
                out[0] += int(f["calls"]) if name == "cmdstat_cluster|shards" else 0
                out[1] += int(f["calls"]) if name == "cmdstat_cluster|slots" else 0
                out[2] += int(f.get("failed_calls", "0"))
    return out


def test_the_map_comes_from_cluster_shards_where_the_server_has_it():
    nodes = cfg.cluster()
    a = admin(nodes[0])
    try:
        shards = a.command(b"CLUSTER", b"SHARDS").wait()
    except mr.ReplyError:
        shards = None  # Redis 6
    want = parse_map(a.command(b"CLUSTER", b"SLOTS").wait(), nodes[0][0])
    a.close()
    if shards is not None:
        eq(parse_map(shards, nodes[0][0]), want)
    s0 = _stats(nodes)
    cl = cluster()
    cl.connect()
    cl.refresh()
    s1 = _stats(nodes)
    eq(cl.ranges(), want)
    eq(cl.refreshes, 2)
    if shards is not None:  # CLUSTER SHARDS both times, CLUSTER SLOTS never
        eq((s1[0] - s0[0], s1[1] - s0[1], s1[2] - s0[2]), (2, 0, 0))
    else:  # SHARDS refused once, then CLUSTER SLOTS (not asked for SHARDS again)
        eq(s1[2] - s0[2], 1)
    cl.close()


def test_key_slot_matches_the_servers_keyslot():
    a = admin(cfg.cluster()[0])
    for k in (b"foo", b"{dev42}:temp", b"a{b}c", b"{}x", b"x{y", "\u00e9t\u00e9", b"\xff\x00\x01", b"k" * 100):
        eq(key_slot(k), a.command(b"CLUSTER", b"KEYSLOT", k).wait(), repr(k))
    a.close()


def test_every_key_reaches_its_slots_owner():
    cl = cluster()
    c = cl.connect()
    keys = [b"t_cluster:route:%d" % i for i in range(40)]
    for k in keys:
        eq(c.set(k, k + b"!").wait(), True)
    for k in keys:
        eq(c.get(k).wait(), k + b"!")
    eq(cl.redirects, 0)
    # each node holds exactly the keys of its own slots
    per = {}
    for a in cl.nodes:
        adm = admin(a)
        n = 0
        for k in keys:
            mine = cl.slot_owner(key_slot(k)) == a
            if mine:
                eq(adm.exists(k).wait(), 1, repr(k))
                n += 1
            else:
                e = raises(mr.ReplyError, adm.exists(k).wait)
                eq(e.code, "MOVED")
        per[a] = n
        adm.close()
    eq(sum(per.values()), len(keys))
    ok(min(per.values()) > 0, per)  # 40 keys spread over every node
    eq(c.delete(*keys[:1]).wait(), 1)
    c.close()


def test_catalogue_commands_route_and_convert():
    c = cluster().connect()
    k = b"{t_cluster:cat}"
    c.delete(k + b"h", k + b"l", k + b"s", k + b"z", k + b"n").wait()
    eq(c.hset(k + b"h", mapping={b"a": b"1", b"b": b"2"}).wait(), 2)
    eq(c.hgetall(k + b"h").wait(), {b"a": b"1", b"b": b"2"})
    eq(c.rpush(k + b"l", b"x", b"y").wait(), 2)
    eq(c.lrange(k + b"l", 0, -1).wait(), [b"x", b"y"])
    eq(c.sadd(k + b"s", b"m").wait(), 1)
    eq(c.smembers(k + b"s").wait(), {b"m"})
    eq(c.zadd(k + b"z", {b"m": 2}).wait(), 1)
    eq(c.incr(k + b"n").wait(), 1)
    eq(c.incrby(k + b"n", 4).wait(), 5)
    eq(c.mset({k + b"1": b"a", k + b"2": b"b"}).wait(), True)
    eq(c.mget([k + b"1", k + b"2", k + b"3"]).wait(), [b"a", b"b", None])
    eq(c.set(k + b"1", b"z", get=True).wait(), b"a")  # set() with options: the catalogue's path
    buf = bytearray(8)
    eq(c.get_into(k + b"1", buf).wait(), 1)
    eq(bytes(buf[:1]), b"z")
    eq(c.command(b"GET", k + b"2").wait(), b"b")
    eq(c.echo(b"hi").wait(), b"hi")
    eq(c.publish(b"t_cluster:ch", b"m").wait(), 0)
    eq(c.delete(k + b"h", k + b"l", k + b"s", k + b"z", k + b"n", k + b"1", k + b"2").wait(), 7)
    c.close()


def test_crossslot_is_refused_before_anything_is_sent():
    cl = cluster()
    c = cl.connect()
    e = raises(ValueError, c.mget, [b"foo", b"bar"])
    ok("hash tag" in str(e) and "{" in str(e), str(e))
    raises(ValueError, c.delete, b"{x}1", b"{y}1")
    raises(ValueError, c.mset, {b"foo": 1, b"bar": 2})
    raises(TypeError, c.set, b"k", [1])
    raises(TypeError, c.command, b"GET", None)
    # nothing was half-sent: the connections still answer in step
    eq(c.set(P + b"after", b"1").wait(), True)
    eq(c.get(P + b"after").wait(), b"1")
    c.close()


def test_a_pipeline_across_nodes_answers_every_future_with_its_own_reply():
    cl = cluster()
    c = cl.connect()
    keys = [b"t_cluster:pipe:%d" % i for i in range(24)]
    with c.pipeline():
        fs = [c.set(k, b"v" + k) for k in keys]
        gs = [c.get(k) for k in keys]
        ns = [c.incr(k + b":n") for k in keys]
    eq([f.wait() for f in fs], [True] * len(keys))
    eq([g.wait() for g in gs], [b"v" + k for k in keys])
    eq(len([n.wait() for n in ns]), len(keys))
    # waited out of order, and with ready()
    with c.pipeline():
        gs = [c.get(k) for k in keys]
    for g in reversed(gs[12:]):
        eq(g.ready() or g.ready() or True, True)
    eq([g.wait() for g in reversed(gs)], [b"v" + k for k in reversed(keys)])
    raises(mr.InvalidFuture, gs[0].wait)  # a future hands its value over once
    a = c.get(keys[0])
    b = c.get(keys[1])
    ok(a is not b)  # (the one waited twice went back to the pool once)
    eq((a.wait(), b.wait()), (b"v" + keys[0], b"v" + keys[1]))
    c.delete(*[k + b":n" for k in keys if key_slot(k + b":n") == key_slot(keys[0] + b":n")])
    c.close()


def test_connections_are_capped_and_opened_lazily():
    cl = mr.Cluster(cfg.cluster(), 3, 1).timeout(3000)  # one connection at a time
    c = cl.connect()
    keys = [b"t_cluster:cap:%d" % i for i in range(12)]
    for k in keys:
        eq(c.set(k, k).wait(), True)
    with c.pipeline():  # a pipeline that touches every node: each is closed (its replies read) for the next
        fs = [c.get(k) for k in keys]
    eq([f.wait() for f in fs], keys)
    c.close()


_C = None
_K = b"{dev42}:temp"
_BUF = bytearray(8)


def _rounds():
    c = _C
    for _ in range(4):
        c.set(_K, b"21.5").wait()
        c.get_into(_K, _BUF).wait()
        c.incr(b"{dev42}:n").wait()


def test_routed_hot_commands_allocate_nothing_once_warm():
    global _C
    c = _C = cluster().connect()
    _rounds()
    _rounds()
    n = allocs(_rounds)
    if IS_MICROPYTHON:
        eq(n, 0)
    eq(bytes(_BUF[:4]), b"21.5")
    c.delete(b"{dev42}:n").wait()
    c.close()
    _C = None


def _ops(c, n):
    # the hot commands and one of the catalogue, n times each
    for _ in range(n):
        c.set(_K, b"21.5").wait()
        c.get(_K).wait()
        c.get_into(_K, _BUF).wait()
        c.incr(b"{dev42}:n").wait()
        c.hset(b"{dev42}:h", b"t", b"21.5").wait()


def _heap(c, n):
    # transient heap of n rounds of _ops (micropython.mem_total(): every allocation, heap frames included)
    import gc
    import micropython
    gc.collect()
    m = micropython.mem_total()
    _ops(c, n)
    return micropython.mem_total() - m


def test_a_routed_command_costs_no_more_heap_than_the_plain_clients():
    cl = cluster()
    c = cl.connect()
    plain = admin(cl.slot_owner(key_slot(_K)))  # the node's own client
    for x in (c, plain):
        _ops(x, 3)  # warm: the map, the connections, the pools, the slots of the keys
    eq(c.get(_K).wait(), b"21.5")
    ok(int(c.get(b"{dev42}:n").wait()) >= 6)
    if IS_MICROPYTHON:
        p = _heap(plain, 20)
        r = _heap(c, 20)
        ok(r <= p, "routed %d B, plain %d B for 20 rounds" % (r, p))
    eq(cl.redirects, 0)
    c.delete(b"{dev42}:n", b"{dev42}:h").wait()
    plain.close()
    c.close()


# ---- a live slot migration: ASK while it runs, MOVED after ---------------------------------------------------------
def _ids(addrs):
    out = []
    for a in addrs:
        x = admin(a)
        out.append(x.command(b"CLUSTER", b"MYID").wait())
        x.close()
    return out


def _settled(dst):
    # Until node dst knows every primary's config epoch as that primary gives it. Its SETSLOT NODE at the end of a
    # migration raises its epoch past the highest it knows; one it has not heard of yet (the last migration's, on
    # its way by gossip) would leave the old owner's claim the newer one, and dst would give the slot back and drop
    # its keys (Redis 6.2, a race of quick successive migrations).
    want = {}
    for a in cfg.cluster():
        x = admin(a)
        if x.command(b"ROLE").wait()[0] == b"master":
            info = x.command(b"CLUSTER", b"INFO").wait().decode()
            want[x.command(b"CLUSTER", b"MYID").wait()] = info.split("cluster_my_epoch:")[1].split("\r")[0]
        x.close()

    def known():
        x = admin(dst)
        lines = x.command(b"CLUSTER", b"NODES").wait().split(b"\n")
        x.close()
        n = 0
        for ln in lines:
            f = ln.split(b" ")
            if len(f) > 6 and f[0] in want and f[6].decode() == want[f[0]]:
                n += 1
        return n == len(want)

    _until(known, "the epochs to reach %r" % (dst,))


def test_ask_during_a_migration_and_moved_after_it():
    cl = cluster()
    c = cl.connect()
    k = b"{t_cluster:mig}k"
    k2 = b"{t_cluster:mig}k2"
    slot = key_slot(k)
    eq(c.set(k, b"before").wait(), True)
    eq(c.set(k2, b"stays").wait(), True)
    src = cl.slot_owner(slot)
    nodes = cl.nodes
    dst = [a for a in nodes if a != src][0]
    sid, did = _ids([src, dst])
    _settled(dst)
    s = admin(src)
    d = admin(dst)
    refreshes = cl.refreshes
    eq(d.command(b"CLUSTER", b"SETSLOT", slot, b"IMPORTING", sid).wait(), b"OK")
    eq(s.command(b"CLUSTER", b"SETSLOT", slot, b"MIGRATING", did).wait(), b"OK")
    eq(s.command(b"MIGRATE", dst[0], dst[1], k, 0, 3000).wait(), b"OK")
    # k is on dst now, k2 still on src: ASK for k (map untouched), k2 answered by src
    eq(c.get(k).wait(), b"before")
    eq(cl.redirects, 1)
    eq(c.get(k2).wait(), b"stays")
    eq(cl.redirects, 1)
    eq(c.set(k, b"during").wait(), True)  # written where it lives now
    eq(cl.redirects, 2)
    eq(cl.slot_owner(slot), src)
    eq(cl.refreshes, refreshes)
    eq(s.command(b"MIGRATE", dst[0], dst[1], k2, 0, 3000).wait(), b"OK")
    for x in (d, s):
        eq(x.command(b"CLUSTER", b"SETSLOT", slot, b"NODE", did).wait(), b"OK")
    for a in nodes:  # every node learns it (gossip would, later)
        if a != src and a != dst:
            x = admin(a)
            eq(x.command(b"CLUSTER", b"SETSLOT", slot, b"NODE", did).wait(), b"OK")
            x.close()
    s.close()
    d.close()
    # the map still names src: MOVED, the slot patched, the same future answered by dst
    with c.pipeline():
        f1 = c.get(k)
        f2 = c.get(k2)
        f3 = c.incr(b"{t_cluster:mig}n")
    eq(f1.wait(), b"during")
    eq(f2.wait(), b"stays")
    ok(f3.wait() >= 1)
    eq(cl.slot_owner(slot), dst)
    r = cl.redirects
    eq(c.get(k).wait(), b"during")
    eq(cl.redirects, r)  # no more redirects for that slot
    eq(c.delete(k, k2, b"{t_cluster:mig}n").wait(), 3)
    c.close()


# ---- sharded pub/sub (Redis 7+, Valkey): the subscription follows its slot -----------------------------------------
def _ssubscribe_or_skip(c, ch):
    try:
        return c.ssubscribe(ch)
    except mr.ReplyError as e:
        if "unknown command" in str(e).lower():
            raise SkipTest("no SSUBSCRIBE before Redis 7 (%s)" % e)
        raise


def _move_slot(slot, src, dst, nodes, between=None, keys=()):
    # the slot from src to dst: IMPORTING, MIGRATING, its keys (MIGRATE, one by one), then NODE on dst, on src (which
    # then unsubscribes its sharded subscribers), on the rest; between(step) after each step
    sid, did = _ids([src, dst])
    _settled(dst)
    s = admin(src)
    d = admin(dst)
    eq(d.command(b"CLUSTER", b"SETSLOT", slot, b"IMPORTING", sid).wait(), b"OK")
    eq(s.command(b"CLUSTER", b"SETSLOT", slot, b"MIGRATING", did).wait(), b"OK")
    if between:
        between("migrating")
    for k in keys:
        eq(s.command(b"MIGRATE", dst[0], dst[1], k, 0, 3000).wait(), b"OK")
        if between:
            between("keys moved")
    eq(d.command(b"CLUSTER", b"SETSLOT", slot, b"NODE", did).wait(), b"OK")
    if between:
        between("dst owns it")
    eq(s.command(b"CLUSTER", b"SETSLOT", slot, b"NODE", did).wait(), b"OK")
    if between:
        between("src gave it up")
    for a in nodes:
        if a != src and a != dst:
            x = admin(a)
            try:
                x.command(b"CLUSTER", b"SETSLOT", slot, b"NODE", did).wait()
            except mr.ReplyError:
                pass  # (a replica: it follows its primary)
            x.close()
    s.close()
    d.close()


def test_sharded_subscription_follows_its_slot_across_a_migration():
    cl = cluster()
    c = cl.connect()
    ch = b"{t_cluster:ss}cmd"
    slot = key_slot(ch)
    ssub = _ssubscribe_or_skip(c, ch)
    src = cl.slot_owner(slot)
    eq(ssub.node, src)
    eq(ssub.shard_channels, {ch})
    stale = cluster()
    stale.connect()  # a map read before the migration
    pub = cluster().connect()  # the publisher: its own client, following MOVED by itself
    dst = [a for a in cl.nodes if a != src][0]
    state = {"n": 0, "gap_at": [], "got": [], "lost": []}

    def on_gap(s):
        state["gap_at"].append(state["n"])  # every message published after this must arrive

    ssub.on_gap = on_gap

    def publish(k):
        for _ in range(k):
            state["n"] += 1
            n = pub.command(b"SPUBLISH", ch, b"%d" % state["n"]).wait()
            if n == 0:
                state["lost"].append(state["n"])  # no subscriber where it was published

    def drain():
        while True:
            m = ssub.receive(100)
            if m is None:
                return
            eq(m.kind, b"smessage")
            eq(m.channel, ch)
            state["got"].append(int(m.payload))

    def between(step):
        publish(5)
        drain()

    publish(10)
    drain()
    eq(state["got"], list(range(1, 11)))
    # a command routed to the slot's node meanwhile: the messages wait in the subscription's queue
    publish(3)
    eq(c.set(b"{t_cluster:ss}k", b"v").wait(), True)
    eq(c.delete(b"{t_cluster:ss}k").wait(), 1)  # (the slot moves without its keys below)
    redirects = cl.redirects
    _move_slot(slot, src, dst, cl.nodes + [a for a in cfg.cluster() if a not in cl.nodes], between)
    drain()  # the old owner's sunsubscribe: subscribed again on dst (SSUBSCRIBE on src answered MOVED)
    eq(ssub.node, dst)
    eq(cl.slot_owner(slot), dst)
    eq(cl.redirects, redirects + 1)
    eq(len(state["gap_at"]), 1, state)
    eq(ssub.gaps, 1)
    publish(20)
    drain()
    got = state["got"]
    gap = state["gap_at"][0]
    # in order, each once; every message a subscriber took (SPUBLISH counted it) arrived, every one published after
    # the re-subscription too; what was lost was published where no one listened any more
    eq(got, sorted(set(got)))
    for i in range(1, state["n"] + 1):
        if i in state["lost"]:
            ok(i <= gap and i not in got, (i, gap))
        else:
            ok(i in got, "message %d lost (gap after %d, got %r)" % (i, gap, got))
    ok(state["n"] - gap >= 20, (gap, state["n"]))
    print("  published %d, re-subscribed after %d, lost %r" % (state["n"], gap, state["lost"]))
    # a subscription made through a stale map: SSUBSCRIBE answers MOVED, no gap
    c2 = stale.connect()
    r = stale.redirects
    s2 = c2.ssubscribe(ch)
    eq(s2.node, dst)
    eq(stale.redirects, r + 1)
    eq(s2.gaps, 0)
    eq(pub.command(b"SPUBLISH", ch, b"both").wait(), 2)
    eq(s2.receive(1000).payload, b"both")
    eq(ssub.receive(1000).payload, b"both")
    # sunsubscribe / close leave nothing on the server; the connection keeps serving commands
    s2.close()
    ssub.close()
    d = admin(dst)
    eq(d.command(b"PUBSUB", b"SHARDNUMSUB", ch).wait(), [ch, 0])
    d.close()
    raises(ValueError, c.ssubscribe, b"{other}cmd", ch)
    raises(ValueError, c.ssubscribe)
    eq(c.set(b"{t_cluster:ss}k", b"w").wait(), True)
    eq(c.get(b"{t_cluster:ss}k").wait(), b"w")
    eq(c.delete(b"{t_cluster:ss}k").wait(), 1)
    c.close()
    c2.close()
    pub.close()


def test_sharded_subscription_refuses_channels_of_another_slot():
    c = cluster().connect()
    ssub = _ssubscribe_or_skip(c, b"{t_cluster:ss2}a")
    e = raises(ValueError, ssub.ssubscribe, b"{t_cluster:ss2}b", b"{elsewhere}c")
    ok("hash tag" in str(e), str(e))
    eq(ssub.shard_channels, {b"{t_cluster:ss2}a"})
    ok(c.ssubscribe(b"{t_cluster:ss2}b") is ssub)  # one sharded subscription per client
    eq(ssub.shard_channels, {b"{t_cluster:ss2}a", b"{t_cluster:ss2}b"})
    ssub.sunsubscribe(b"{t_cluster:ss2}a")
    eq(ssub.shard_channels, {b"{t_cluster:ss2}b"})
    ssub.close()
    raises(mr.ConnectionError, ssub.receive)
    c.close()


def test_the_subscriptions_connection_is_closed_last_past_the_cap():
    cl = mr.Cluster(cfg.cluster(), 3, 2).timeout(3000)  # two connections for three primaries
    c = cl.connect()
    ch = b"{t_cluster:ss3}c"
    ssub = _ssubscribe_or_skip(c, ch)
    pub = cluster().connect()
    others = [a for a in cl.nodes if a != ssub.node]
    for a in others + others:  # each dial past the cap closes the other node's connection, not the subscription's
        i = 0
        while cl.slot_owner(key_slot(b"t_cluster:cap%d" % i)) != a:
            i += 1
        eq(c.set(b"t_cluster:cap%d" % i, b"1").wait(), True)
        eq(pub.command(b"SPUBLISH", ch, a[1]).wait(), 1)
        eq(int(ssub.receive(1000).payload), a[1])
    eq(ssub.gaps, 0)
    ssub.close()
    c.close()
    pub.close()


# ---- an Outbox whose stream (one hash tag) changes owner: every reading lands once, in order -----------------------
def _xinfo_calls(addrs):
    # XINFO calls per node (INFO commandstats: "xinfo" on Redis 6, "xinfo|stream" on Redis 7+ and Valkey)
    out = []
    for a in addrs:
        n = 0
        for ln in _info(a, b"commandstats").decode().split("\r\n"):
            if ln.startswith("cmdstat_xinfo"):
                n += int(ln.split("calls=")[1].split(",")[0])
        out.append(n)
    return out


def _readings(addr, key):
    # the readings' numbers (field i) of the stream as node addr holds it, in stream order
    x = admin(addr)
    es = x.command(b"XRANGE", key, b"-", b"+").wait()
    x.close()
    return [int(e[1][1]) for e in es]


class _Feed:
    # readings 0, 1, ... added to an Outbox; pump(ms) -> what it acknowledged
    def __init__(self, box):
        self.box = box
        self.n = 0

    def add(self, k):
        for _ in range(k):
            self.box.add({b"i": self.n})
            self.n += 1


def test_an_outbox_follows_its_stream_across_a_slot_migration():
    cl = cluster()
    key = b"{t_cluster:ob}s"
    slot = key_slot(key)
    c = cl.connect()
    c.delete(key).wait()
    box = mr.Outbox(cl, key, capacity=64)
    box.backoff_ms = 20  # (the pauses while its slot is half moved)
    f = _Feed(box)
    f.add(6)
    eq(box.pump(), 6)
    src = cl.slot_owner(slot)
    nodes = cl.nodes
    dst = [a for a in nodes if a != src][0]
    x0 = _xinfo_calls(nodes)
    redirects = cl.redirects
    stale = cluster()
    stale.connect()  # (a map read before the migration)
    asked = []

    def between(step):
        f.add(3)
        n = box.pump()
        if step == "keys moved":  # the stream is on dst, src still owns the slot: ASK, the readings wait
            asked.append(box.last_error)
            eq((n, box.pending), (0, 3))

    _move_slot(slot, src, dst, nodes + [a for a in cfg.cluster() if a not in nodes], between, [key])
    # src answered MOVED: the map patched, a new session on dst (its TIME and XINFO), the waiting readings sent there
    f.add(5)
    box.pump(3000)
    eq((box.pending, box.dropped, box.duplicates, box.delivered), (0, 0, 0, f.n), repr((box.last_error, cl.ranges())))
    eq(_readings(dst, key), list(range(f.n)))
    eq(cl.slot_owner(slot), dst)
    eq(cl.redirects, redirects + 1)
    ok(type(asked[0]) is mr.ReplyError and asked[0].code == "ASK", asked)
    x1 = _xinfo_calls(nodes)
    eq([x1[i] - x0[i] for i in range(len(nodes))], [1 if a == dst else 0 for a in nodes])
    # an Outbox whose map was read before the migration: its session's XINFO on src answers MOVED (no session
    # there), the next one is on dst
    key2 = b"{t_cluster:ob}t"
    sbox = mr.Outbox(stale, key2)
    g = _Feed(sbox)
    g.add(3)
    sbox.pump(3000)
    eq((sbox.pending, sbox.delivered), (0, 3), sbox.last_error)
    eq(_readings(dst, key2), [0, 1, 2])
    eq(stale.slot_owner(slot), dst)
    eq(c.delete(key, key2).wait(), 2)
    c.close()
    _move_slot(slot, dst, src, nodes + [a for a in cfg.cluster() if a not in nodes])  # (as it was: a short map)


def test_an_inbox_follows_its_stream_across_a_slot_migration():
    cl = cluster()
    key = b"{t_cluster:ib}s"
    slot = key_slot(key)
    c = cl.connect()
    c.delete(key).wait()
    box = mr.Inbox(cl, key, b"g", b"dev1")
    box.backoff_ms = 20
    eq(box.next(), None)  # (the group made)
    for x in (b"a", b"b"):
        c.xadd(key, {b"cmd": x}).wait()
    e = box.next()
    eq(e.fields[b"cmd"], b"a")
    box.done(e)
    e = box.next()
    eq(e.fields[b"cmd"], b"b")  # handed over, not done: it comes again first on the new owner
    src = cl.slot_owner(slot)
    nodes = cl.nodes
    dst = [a for a in nodes if a != src][0]
    _move_slot(slot, src, dst, nodes + [a for a in cfg.cluster() if a not in nodes], None, [key])
    c.xadd(key, {b"cmd": b"c"}).wait()  # (c's map: MOVED, followed)
    got = []
    t0 = now_ms()
    while len(got) < 2 and since(t0) < 3000:
        e = box.next(100)
        if e is not None:
            got.append(e.fields[b"cmd"])
            box.done(e)
    eq(got, [b"b", b"c"], box.last_error)
    eq(box.redelivered, 1)
    eq(cl.slot_owner(slot), dst)
    x = admin(dst)
    eq(x.command(b"XPENDING", key, b"g").wait()[0], 0)  # both acknowledged on the new owner
    x.close()
    eq(c.delete(key).wait(), 1)
    c.close()
    _move_slot(slot, dst, src, nodes + [a for a in cfg.cluster() if a not in nodes])


def test_an_outbox_rides_through_a_graceful_failover_of_its_primary():
    nodes = cfg.cluster()
    primary = replica = None
    for a in nodes:
        x = admin(a)
        r = x.command(b"ROLE").wait()
        x.close()
        if r[0] == b"slave":
            replica, primary = a, (r[1].decode(), r[2])
    if replica is None:
        raise SkipTest("the cluster has no replica")
    cl = mr.Cluster(nodes).timeout(3000)
    c = cl.connect()
    i = 0
    while cl.slot_owner(key_slot(b"{t_cluster:fo%d}" % i)) != primary:
        i += 1
    key = b"{t_cluster:fo%d}s" % i
    c.delete(key).wait()
    box = mr.Outbox(cl, key, capacity=256)
    box.backoff_ms = 20
    f = _Feed(box)
    f.add(20)
    eq(box.pump(), 20)
    x = admin(replica)
    eq(x.command(b"CLUSTER", b"FAILOVER").wait(), b"OK")  # graceful: the replica catches up, then takes over
    x.close()
    # readings go on being added and pumped while it happens (the old primary pauses its writers, then answers MOVED)
    clock = mr.clock.default_clock()
    t0 = clock.ticks_ms()
    seen = 0  # pumps that ended on an error
    while True:
        for _ in range(5):
            f.add(1)
            box.pump()
            if box.last_error is not None:
                seen += 1
                box.last_error = None
        if _role(primary) == b"slave" and _role(replica) == b"master":
            break
        ok(clock.ticks_diff(clock.ticks_ms(), t0) < 10000, "the failover did not happen")
    during = f.n - 20
    f.add(10)
    box.pump(3000)
    eq((box.pending, box.dropped, box.delivered), (0, 0, f.n), box.last_error)
    eq(_readings(replica, key), list(range(f.n)))  # every reading once, in order, on the new primary
    eq(cl.slot_owner(key_slot(key)), replica)
    ok(cl.redirects + cl.refreshes > 1, "the old primary's MOVED (or its silence) was noticed")
    print("  graceful failover: %d readings, %d added during it, %d pumps failed, %d MOVED followed" % (
        f.n, during, seen, cl.redirects))
    eq(c.delete(key).wait(), 1)
    c.close()


def _role(addr):
    x = admin(addr)
    r = x.command(b"ROLE").wait()[0]
    x.close()
    return r


# ---- a node that stops answering (a fault proxy in front of each node; test_cluster.py's Valkey cluster) -------------
def _ctl(port, line):
    # one line to a fault proxy's control port, "OK ..." back (tests_host/faultproxy.py)
    import socket
    s = socket.socket()
    out = b""
    try:
        s.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        s.send(line + b"\n")
        while not out.endswith(b"\n"):
            d = s.recv(64)
            if not d:
                break
            out += d
    finally:
        s.close()
    ok(out.startswith(b"OK"), out)


def _info(addr, section):
    x = admin(addr)
    v = x.command(b"INFO", section).wait()
    x.close()
    return v


def _until(cond, what, ms=10000):
    clock = mr.clock.default_clock()
    t0 = clock.ticks_ms()
    while not cond():
        ok(clock.ticks_diff(clock.ticks_ms(), t0) < ms, "timed out waiting for " + what)
        _sleep(20)


def _sleep(ms):
    import time
    if hasattr(time, "sleep_ms"):
        time.sleep_ms(ms)
    else:
        time.sleep(ms / 1000)


def _owner_says(addr, slot):
    # the primary that node addr gives for slot (its CLUSTER SHARDS)
    x = admin(addr)
    m = parse_map(x.command(b"CLUSTER", b"SHARDS").wait(), addr[0])
    x.close()
    for lo, hi, a in m or ():
        if lo <= slot <= hi:
            return a
    return None


def test_a_silent_primary_is_replaced_in_the_map_within_the_command_deadline():
    nodes = cfg.cluster()
    ctl = cfg.cluster_proxies()
    replica = primary = None
    for a in nodes:
        x = admin(a)
        r = x.command(b"ROLE").wait()
        x.close()
        if r[0] == b"slave":
            replica, primary = a, (r[1].decode(), r[2])
    ok(primary in nodes, (primary, nodes))
    T = 500  # (a second deadline spent on the silent node would show as >= 2 T)
    cl = mr.Cluster(nodes).timeout(T)
    c = cl.connect()
    i = 0
    while cl.slot_owner(key_slot(b"{t_cluster:bh%d}" % i)) != primary:
        i += 1
    k = b"{t_cluster:bh%d}k" % i
    j = 0
    while cl.slot_owner(key_slot(b"{t_cluster:bh%d}" % j)) == primary:
        j += 1
    other = b"{t_cluster:bh%d}k" % j  # on another node
    eq(c.set(k, b"kept").wait(), True)
    eq(c.set(other, b"o").wait(), True)
    late = mr.Cluster([cl.slot_owner(key_slot(other))]).timeout(T)
    lc = late.connect()  # a map naming the primary, no connection to it yet
    ch = b"{t_cluster:bh%d}cmd" % i
    scl = mr.Cluster(nodes).timeout(T).health_check(300)
    sc = scl.connect()
    ssub = sc.ssubscribe(ch)  # a sharded subscription on the primary, on a client of its own
    eq(ssub.node, primary)
    x = admin(primary)
    eq(x.command(b"WAIT", 1, 2000).wait(), 1)  # the replica has k
    x.close()
    # the primary stops answering (its connections stay open: requests go in, nothing comes back), and the cluster
    # replaces it: its replica takes over
    pctl = ctl[nodes.index(primary)]
    _ctl(pctl, b"stall")
    try:
        x = admin(replica)
        eq(x.command(b"CLUSTER", b"FAILOVER", b"TAKEOVER").wait(), b"OK")
        x.close()
        slot = key_slot(k)
        for a in nodes:
            if a != primary:
                _until(lambda: _owner_says(a, slot) == replica, "%r to name the new primary" % (a,))
        eq(cl.slot_owner(slot), primary)  # the client has not noticed yet
        refreshes = cl.refreshes
        clock = mr.clock.default_clock()
        t0 = clock.ticks_ms()
        e = raises(mr.TimeoutError, c.get(k).wait)
        took = clock.ticks_diff(clock.ticks_ms(), t0)
        # the command waited its deadline on the silent node; the map was then read from another node at once
        # (not from the silent one: that would have cost another deadline)
        ok(T <= took < T + 400, "%d ms (deadline %d ms): %r" % (took, T, e))
        eq(cl.refreshes, refreshes + 1)
        eq(cl.slot_owner(slot), replica)
        ok(primary not in cl.nodes, cl.nodes)
        t0 = clock.ticks_ms()
        eq(c.get(k).wait(), b"kept")  # from the promoted replica, without a redirect or a restart
        eq(c.get(other).wait(), b"o")
        ok(clock.ticks_diff(clock.ticks_ms(), t0) < 200, "after the refresh")
        print("  silent primary: TimeoutError after %d ms (deadline %d), map read again from another node" % (took, T))
        # the subscription hears nothing from a silent node, which is no error by itself: health_check() PINGs it
        t0 = clock.ticks_ms()
        try:
            ssub.receive(5000)
            ok(False, "the silent node went unnoticed")
        except (mr.TimeoutError, mr.ConnectionError):
            pass  # (the PING, or the handler's own health check before it)
        took = clock.ticks_diff(clock.ticks_ms(), t0)
        ok(T <= took < T + 400, "%d ms" % took)
        eq(ssub.receive(0), None)  # subscribed again on the new owner: a gap
        eq((ssub.node, ssub.gaps), (replica, 1))
        eq(c.command(b"SPUBLISH", ch, b"after").wait(), 1)
        eq(ssub.receive(1000).payload, b"after")
        # now it accepts connections and never answers them: a client whose map still names it dials it (nothing is
        # sent before the handshake), reads the map from another node and sends the command to the new owner, in
        # one deadline; a client whose first startup node it is reads the map from the next one
        _ctl(pctl, b"blackhole")
        eq(late.slot_owner(slot), primary)
        t0 = clock.ticks_ms()
        eq(lc.get(k).wait(), b"kept")
        took = clock.ticks_diff(clock.ticks_ms(), t0)
        ok(T <= took < T + 400, "%d ms" % took)
        eq(late.slot_owner(slot), replica)
        print("  black-holed primary dialed: answered by the new owner after %d ms (deadline %d)" % (took, T))
        fresh = mr.Cluster([primary] + nodes).timeout(T)
        t0 = clock.ticks_ms()
        fc = fresh.connect()
        took = clock.ticks_diff(clock.ticks_ms(), t0)
        ok(T <= took < T + 400, "%d ms" % took)
        eq(fresh.slot_owner(slot), replica)
        eq(fc.get(k).wait(), b"kept")
        fc.close()
    finally:
        _ctl(pctl, b"pass")
    # the old primary, answering again, is a replica of the new one once in sync (the next run starts from there)
    _until(lambda: b"master_link_status:up" in _info(primary, b"replication"), "the old primary to resync")
    eq(c.delete(k).wait(), 1)
    eq(c.delete(other).wait(), 1)
    c.close()
    lc.close()
    ssub.close()
    sc.close()
