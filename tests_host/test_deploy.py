"""`make deploy` onto the MicroPython unix port driven like a board (socat + mpremote; its "/" is a temp dir),
and onto a folder standing for a mounted CIRCUITPY drive. The deployed unix program then runs on that board,
importing the library and the shared telemetry module from .mpy."""

import os
import subprocess

import pytest

from conftest import REPO

from testkit import Resp
from unixboard import UnixBoard, Unavailable, socat_executable

LIB_SOURCES = sorted(p.stem for p in (REPO / "lib" / "microredis").glob("*.py"))
needs_socat = pytest.mark.skipif(socat_executable() is None, reason="socat is not installed")


def make(*args, timeout=300):
    env = dict(os.environ)
    env.pop("PORT", None)
    env.pop("CIRCUITPY", None)
    return subprocess.run(["make", "-s"] + list(args), cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          timeout=timeout)


def deploy_check(tty):
    return subprocess.run([str(REPO / ".venv" / "bin" / "python"), "tools/deploy.py", "--check", "--port", tty],
                          cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120)


def board(tmp_path, **kw):
    try:
        return UnixBoard(cwd=str(tmp_path), **kw)
    except Unavailable as e:
        pytest.skip(str(e))


@needs_socat
def test_deploy_esp32_copies_mpy_and_removes_stale_files(tmp_path):
    libdir = tmp_path / "lib" / "microredis"
    libdir.mkdir(parents=True)
    (libdir / "client.py").write_text("raise ImportError('stale .py shadows client.mpy')\n")
    (libdir / "gone.mpy").write_bytes(b"M\x06")
    (tmp_path / "telemetry.py").write_text("stale = True\n")
    (tmp_path / "boot.py").write_text("# the user's own file stays\n")
    with board(tmp_path) as b:
        cp = make("deploy", "PORT=" + b.tty, "BOARD=esp32")
        assert cp.returncode == 0, cp.stdout
        # what a board sees after the copy: the library from .mpy
        cp2 = b.mpremote("exec", "import microredis.client as c; print('FROM', c.__file__)")
        assert "removed stale lib/microredis/client.py (it would shadow the new .mpy)" in cp.stdout, cp.stdout
        assert "reset the board" in cp.stdout and "a later `mip install` would add .py files" in cp.stdout, cp.stdout
        assert deploy_check(b.tty).returncode == 0
        # a mip install after make deploy: .py twins of the .mpy files, which MicroPython would import instead
        (libdir / "pubsub.py").write_text("raise ImportError('mip put me here')\n")
        chk = deploy_check(b.tty)
        assert chk.returncode == 1, chk.stdout
        assert "lib/microredis/pubsub.py shadows lib/microredis/pubsub.mpy" in chk.stdout, chk.stdout
        assert "run make deploy again" in chk.stdout, chk.stdout
        (libdir / "pubsub.py").unlink()
    assert "FROM %s" % (libdir / "client.mpy") in cp2.stdout, cp2.stdout
    assert sorted(p.name for p in libdir.iterdir()) == sorted(n + ".mpy" for n in LIB_SOURCES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boot.py", "lib", "main.py", "telemetry.mpy"]
    assert (tmp_path / "main.py").read_bytes() == (REPO / "boards" / "esp32" / "main.py").read_bytes()
    for p in libdir.iterdir():
        assert p.read_bytes()[:2] == b"M\x06", p


@needs_socat
def test_deployed_unix_program_runs_on_the_board(tmp_path, redis_server):
    env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_server.port), "DEVICE_ID": "deployed-1",
           "READINGS": "3", "INTERVAL_MS": "100"}
    with board(tmp_path, env=env) as b:
        cp = make("deploy", "PORT=" + b.tty, "BOARD=unix")
        assert cp.returncode == 0, cp.stdout
        # a reset would end the unix board's process: deploy says how to start main.py there instead, and this
        # test does just that below
        assert "reset the board" not in cp.stdout, cp.stdout
        assert 'start main.py: .venv/bin/mpremote connect %s resume exec "import main"' % b.tty in cp.stdout, cp.stdout
        assert (tmp_path / "telemetry.mpy").exists() and not (tmp_path / "telemetry.py").exists()
        # as on a board after reset: main.py runs from "/" (here: the board's current folder)
        run = b.mpremote("exec", "import microredis, telemetry; print('FROM', microredis.__file__, telemetry.__file__)"
                         "\nimport main", timeout=60, check=False)
    out = run.stdout
    assert run.returncode == 0, out
    assert "FROM %s %s" % (tmp_path / "lib" / "microredis" / "__init__.mpy", "telemetry.mpy") in out, out
    assert "done: 3 sent, 0 failed" in out, out
    r = Resp(redis_server.port)
    try:
        assert r.call("XLEN", "sensors:deployed-1:stream") == 3
        assert r.call("GET", "sensors:deployed-1:temp") is not None
    finally:
        r.close()


def test_deploy_circuitpython_to_a_mounted_drive(tmp_path):
    drive = tmp_path / "CIRCUITPY"
    (drive / "lib" / "microredis").mkdir(parents=True)
    (drive / "lib" / "microredis" / "client.mpy").write_bytes(b"C\x06")  # an earlier (wrong-format) install
    (drive / "lib" / "adafruit_ticks.py").write_text("# another library stays\n")
    (drive / "settings.toml").write_text('CIRCUITPY_WIFI_SSID = "mine"\n')
    cp = make("deploy", "BOARD=circuitpython", "CIRCUITPY=" + str(drive))
    assert cp.returncode == 0, cp.stdout
    lib = drive / "lib" / "microredis"
    assert sorted(p.name for p in lib.iterdir()) == sorted(n + ".py" for n in LIB_SOURCES)
    assert (drive / "code.py").read_bytes() == (REPO / "boards" / "circuitpython" / "main.py").read_bytes()
    assert (drive / "telemetry.py").read_bytes() == (REPO / "boards" / "common" / "telemetry.py").read_bytes()
    assert (drive / "lib" / "adafruit_ticks.py").exists()
    if not (REPO / "boards" / "circuitpython" / "settings.toml").exists():
        assert (drive / "settings.toml").read_text() == 'CIRCUITPY_WIFI_SSID = "mine"\n'  # left alone
    assert not list(drive.rglob("*.mpy"))


def test_deploy_without_a_destination_fails_clearly():
    cp = make("deploy", "BOARD=esp32")
    assert cp.returncode != 0
    assert "give PORT=" in cp.stdout


@needs_socat
def test_deploy_circuitpython_through_mpremote_copies_py(tmp_path):
    with board(tmp_path) as b:
        cp = make("deploy", "PORT=" + b.tty, "BOARD=circuitpython")
    assert cp.returncode == 0, cp.stdout
    assert sorted(p.name for p in (tmp_path / "lib" / "microredis").iterdir()) == sorted(n + ".py" for n in LIB_SOURCES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code.py", "lib", "telemetry.py"]
