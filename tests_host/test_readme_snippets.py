"""Every ```python block of README.md runs as pasted, on CPython (`PYTHONPATH=lib`) and on the MicroPython unix port
(`MICROPYPATH=lib:.frozen`), as the README's "Try it on this computer" says, against the bundled redis-server that it
names, with the arguments it gives (on a free 127.0.0.1 port instead of 6379: the blocks dial
`("127.0.0.1", 6379)`, which is swapped for it). Each block runs alone in a fresh process, on an emptied server.

Markers, an HTML comment on the line before a block:
  <!-- not run: <why> -->  the block is not run; allowed only for what this machine cannot give it (a board's
                           hardware or Wi-Fi, a Sentinel, a Cluster, TLS), so <why> must say "needs" one of them.
  <!-- server: <args> -->  the block's server gets <args> too (e.g. --requirepass secret); the block itself says
                           so in a comment, for the reader who runs it by hand.
What a block prints is checked where it shows it in a comment (EXPECT below)."""

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO

from testkit import RedisServer, Resp, tool

README = (REPO / "README.md").read_text(encoding="utf-8")
ADDR = '("127.0.0.1", 6379)'
NOT_RUN_REASONS = ("board", "hardware", "Wi-Fi", "Sentinel", "Cluster", "TLS")

# a substring that identifies a block -> the lines (regexes) its comments say it prints
EXPECT = {
    'print(msg.channel, msg.payload)': [r"b'cmd:kitchen' b'led on'"],
    'print(value)': [r"b'value'"],
    'print("command:", bytes(buf[:n]))': [r"command: b'led on'"],
    'xlen(b"sensors:a1:stream")': [r"1"],
    'c.transaction() as t': [r"1 \{b'interval': b'10'\}"],
    'register_script(': [r"5"],
    'Cache(c, slots=8': [r"1 1 0"],
    'aio.connect(h)': [r"49", r"command: b'led on'"],
    'resp.Reader(': [r"True", r"b'hello' 42"],
}


def blocks():
    """[(line number, marker kind or None, marker text, code)] for every ```python block."""
    out = []
    for m in re.finditer(r"^```python\n(.*?)^```", README, re.S | re.M):
        line = README.count("\n", 0, m.start()) + 1
        before = README[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mk = re.match(r"^<!-- (not run|server): (.*?) -->$", before)
        out.append((line, mk.group(1) if mk else None, mk.group(2) if mk else "", m.group(1)))
    return out


BLOCKS = blocks()
RUNNABLE = [b for b in BLOCKS if b[1] != "not run"]


def readme_server_command():
    """The README's command that starts the bundled server: its argv."""
    sec = README.split("### Try it on this computer", 1)[1].split("\n#", 1)[0]
    cmds = [ln.split("  #", 1)[0].strip() for ln in re.search(r"```sh\n(.*?)```", sec, re.S).group(1).splitlines()]
    return [shlex.split(c) for c in cmds if c.startswith(".venv/bin/redis-server")][0], cmds


def test_readme_blocks_are_marked_or_runnable():
    assert len(BLOCKS) >= 9, "README: the python blocks went missing? %d" % len(BLOCKS)
    for line, kind, text, code in BLOCKS:
        if kind == "not run":
            assert text.startswith("needs ") and any(r in text for r in NOT_RUN_REASONS), \
                "README line %d: a block is left unrun only for what this machine lacks: %r" % (line, text)
        else:
            assert "import microredis" in code or "from microredis" in code, \
                "README line %d: the block must import what it uses (it runs alone, as pasted)" % line
            for m in re.finditer(r"\(\"[\d.]+\", \d+\)", code):
                assert m.group(0) == ADDR, "README line %d: blocks dial %s, not %s" % (line, ADDR, m.group(0))
        if kind == "server":
            assert text in code, "README line %d: the block must say it needs %r" % (line, text)
    for key in EXPECT:
        assert sum(key in b[3] for b in RUNNABLE) == 1, "EXPECT key %r names no single runnable block" % key


def test_readme_says_how_to_start_the_server_and_run_a_block():
    argv, cmds = readme_server_command()
    assert argv[:3] == [".venv/bin/redis-server", "--port", "6379"], argv
    assert "PYTHONPATH=lib .venv/bin/python snippet.py" in cmds, cmds
    assert "MICROPYPATH=lib:.frozen .venv/bin/micropython snippet.py" in cmds, cmds


@pytest.fixture(scope="module")
def servers():
    """The README's server (its executable and arguments, on a free loopback port), one per `server:` marker."""
    argv, _ = readme_server_command()
    exe = str(REPO / argv[0])
    if not os.path.exists(exe):
        pytest.fail("README names %s: not there (make .venv)" % argv[0])
    started = {}

    def get(extra):
        if extra not in started:
            started[extra] = RedisServer(argv[3:] + shlex.split(extra), executable=exe).start()
        return started[extra]

    yield get
    for srv in started.values():
        srv.cleanup()


def _flush(srv):
    r = Resp(srv.port)
    try:
        if srv.password:
            r.call("AUTH", srv.password)
        r.call("FLUSHALL")
    finally:
        r.close()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
@pytest.mark.parametrize("block", RUNNABLE, ids=["line%d" % b[0] for b in RUNNABLE])
def test_readme_block_runs_as_pasted(block, runtime, servers, tmp_path):
    line, kind, text, code = block
    srv = servers(text if kind == "server" else "")
    _flush(srv)
    script = tmp_path / "snippet.py"
    script.write_text(code.replace(ADDR, '("127.0.0.1", %d)' % srv.port), encoding="utf-8")
    env = dict(os.environ)
    for k in ("PYTHONPATH", "MICROPYPATH", "REDIS_HOST", "REDIS_PORT"):
        env.pop(k, None)
    if runtime == "cpython":
        argv, env["PYTHONPATH"] = [sys.executable, str(script)], "lib"
    else:
        mp = tool("micropython")
        if mp is None:
            pytest.fail("no `micropython` binary: run `make .venv`")
        argv, env["MICROPYPATH"] = [mp, str(script)], "lib:.frozen"
    cp = subprocess.run(argv, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, universal_newlines=True, errors="replace", timeout=60)
    out = cp.stdout
    assert cp.returncode == 0, "README line %d on %s:\n%s" % (line, runtime, out)
    assert "Traceback" not in out and "Warning" not in out, "README line %d on %s:\n%s" % (line, runtime, out)
    for key, lines in EXPECT.items():
        if key in code:
            for want in lines:
                assert re.search("^%s$" % want, out, re.M), \
                    "README line %d on %s: its comment says it prints %r\n%s" % (line, runtime, want, out)
