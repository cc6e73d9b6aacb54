"""The MicroPython unix port driven like a board: `micropython -i` behind a pty made by socat, reached with mpremote.

From the command line (`make board`): start one and print the port to use, until Ctrl-C:

    .venv/bin/python tools/unixboard.py [--dir DIR] [--heapsize 64k] [--env REDIS_PORT=6379 ...]
    # -> PORT=/tmp/microredis-tty-xxxx/tty; then, in another terminal:
    .venv/bin/mpremote connect /tmp/microredis-tty-xxxx/tty resume exec "import sys; print(sys.platform)"
    make deploy PORT=/tmp/microredis-tty-xxxx/tty BOARD=unix

From Python:

    with UnixBoard(cwd=tmpdir, heapsize="64k") as b:      # starts socat + micropython -i
        b.mpremote("exec", "print(1)")                    # mpremote connect <pty> resume exec "print(1)"
        print(b.tty)                                      # for `make deploy PORT=...`

The board's filesystem is the host's; its current directory is `cwd` (like a board's /), and its sys.path is
['', '.frozen', '<cwd>/lib'] (a board has '', '.frozen', '/lib'). `resume` is always passed: a soft reset
(Ctrl-D) ends the unix process. A suite that calls sys.exit() ends it too: use one UnixBoard per suite.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from testkit import Unavailable, stop_process, tool  # noqa: E402,F401  (Unavailable: socat or micropython is missing)


def socat_executable():
    return shutil.which("socat")


class UnixBoard:
    def __init__(self, cwd=None, heapsize=None, env=None, micropython=None):
        self.socat = socat_executable()
        if self.socat is None:
            raise Unavailable("socat is not installed (apt-get install socat)")
        self.micropython = micropython or tool("micropython")
        if self.micropython is None:
            raise Unavailable("no micropython binary (make .venv)")
        self.mpremote_exe = tool("mpremote")
        if self.mpremote_exe is None:
            raise Unavailable("no mpremote (make .venv)")
        for p in (self.micropython,):
            if any(c in p for c in " '\"!,:"):
                raise Unavailable("path not usable in a socat exec address: %r" % p)
        self._own_cwd = cwd is None
        self.cwd = os.path.abspath(cwd or tempfile.mkdtemp(prefix="microredis-board-"))
        self._ttydir = tempfile.mkdtemp(prefix="microredis-tty-")
        self.tty = os.path.join(self._ttydir, "tty")
        self.heapsize = heapsize
        self.env = dict(os.environ)
        self.env["MICROPYPATH"] = os.pathsep.join(["", ".frozen", os.path.join(self.cwd, "lib")])
        if env:
            self.env.update(env)
        self.proc = None

    def start(self, timeout=10.0):
        cmd = self.micropython + (" -X heapsize=%s" % self.heapsize if self.heapsize else "") + " -i"
        self.proc = subprocess.Popen(
            [self.socat, "pty,link=%s,rawer" % self.tty, "exec:%s,pty,rawer,stderr,setsid,ctty" % cmd],
            cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("socat exited: %s" % self.proc.stderr.read().decode(errors="replace"))
            if os.path.exists(self.tty):
                cp = self.mpremote("exec", "print('board up')", timeout=5, check=False)
                if cp.returncode == 0 and "board up" in cp.stdout:
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the unix board did not answer on %s" % self.tty)

    def mpremote(self, *args, timeout=60, check=True, cwd=None):
        """mpremote connect <tty> resume <args...> (run in the host folder cwd); returns the CompletedProcess
        (text). check: raise on rc != 0."""
        argv = [self.mpremote_exe, "connect", self.tty, "resume"] + [str(a) for a in args]
        try:
            cp = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, errors="replace", timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            raise RuntimeError("mpremote timed out after %ss: %s\n%s" % (timeout, " ".join(argv), out))
        if check and cp.returncode != 0:
            raise RuntimeError("mpremote rc=%d: %s\n%s" % (cp.returncode, " ".join(argv), cp.stdout))
        return cp

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None:
            stop_process(p, 5)  # socat passes SIGTERM on to micropython (its child), and the pty hangs up
            if p.stderr is not None:
                p.stderr.close()
        shutil.rmtree(self._ttydir, ignore_errors=True)
        if self._own_cwd:
            shutil.rmtree(self.cwd, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Start the MicroPython unix port behind a pty (socat), like a board on a serial port, and print "
                    "the port to give mpremote and `make deploy`. Runs until Ctrl-C.")
    ap.add_argument("--dir", help="the board's filesystem, its / (default: a new temporary folder, removed at exit)")
    ap.add_argument("--heapsize", help="MicroPython heap, e.g. 64k to model a small board (default: the port's)")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="environment of the board, e.g. REDIS_PORT=6379 for boards/unix/main.py (repeatable)")
    args = ap.parse_args(argv)
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            ap.error("--env takes NAME=VALUE, got %r" % item)
        env[name] = value
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    try:
        board = UnixBoard(cwd=args.dir, heapsize=args.heapsize, env=env)
    except Unavailable as e:
        print("unixboard: cannot start: %s" % e, file=sys.stderr)
        return 2
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    board.start()
    try:
        mpremote = os.path.relpath(board.mpremote_exe) if board.mpremote_exe.startswith(os.getcwd()) \
            else board.mpremote_exe
        print("unix board up: PORT=%s" % board.tty)
        print("  its filesystem (/) is %s%s" % (board.cwd, " (removed at exit)" if board._own_cwd else ""))
        print("  always pass `resume`: a soft reset (mpremote's default) ends the unix process")
        print("  try:  %s connect %s resume exec \"import sys; print(sys.platform)\"" % (mpremote, board.tty))
        print("        make deploy PORT=%s BOARD=unix" % board.tty)
        print("  Ctrl-C stops the board", flush=True)
        while not stop and board.alive():
            time.sleep(0.2)
        if not stop:
            print("unixboard: the board process ended (a soft reset without `resume`, or sys.exit())", flush=True)
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()
        print("unixboard: stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
