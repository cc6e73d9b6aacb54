"""The boards/ programs, run on the host:

- boards/unix/main.py on the MicroPython unix port survives a server outage (stop, restart) without crashing: the
  outbox keeps the readings taken meanwhile and delivers every one exactly once (an AOF server keeps the stream across
  the restart), and its memory (gc.mem_free() after gc.collect(), printed by the loop) does not grow; with
  OUTBOX_PATH it is SIGKILLed while the server is down and restarted: nothing lost, nothing twice; a killed command
  connection is subscribed again;
- boards/esp32 and boards/rp2_pico_w main.py on the unix port with fake `machine`, `esp32` and `network` modules
  (tests_host/fakeboard/mp): Wi-Fi that fails (for a whole cycle: its reading waits in the outbox), then drops; the
  sensor value; "led on" drives the LED pin;
- boards/circuitpython/main.py under CPython with fake `wifi`, `socketpool` (tests_device/fakepool.py over real
  sockets), `microcontroller`, `board`, `digitalio` (tests_host/fakeboard/cp);
- every boards/ file compiles with mpy-cross (MicroPython syntax), the config templates name real settings, and the
  programs stay short (issue 10: main.py <= 60 lines, boards/common/ <= 150).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from conftest import REPO

from testkit import DENIED_62, Refuser, Resp, compile_mpy, free_port

BOARDS = REPO / "boards"
FAKES = REPO / "tests_host" / "fakeboard"
sys.path.insert(0, str(BOARDS / "common"))

import telemetry  # noqa: E402  (CPython can import it: it is plain Python)


def _mp_path(*extra):
    return ":".join([str(p) for p in extra] + [str(REPO / "lib"), str(BOARDS / "common"), ".frozen"])


def _xlen(port, key):
    r = Resp(port)
    try:
        return r.call("XLEN", key)
    finally:
        r.close()


class Commander:
    """Sends commands to a running board once it has reported, and collects its acknowledgements."""

    def __init__(self, port, device_id, commands):
        self.port = port
        self.id = device_id
        self.commands = commands
        self.acks = []
        self.links = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            deadline = time.monotonic() + 30
            while _xlen(self.port, "sensors:%s:stream" % self.id) < 1:  # it reported: it is subscribed
                if time.monotonic() > deadline:
                    raise AssertionError("no reading from %s" % self.id)
                time.sleep(0.05)
            sub = Resp(self.port, timeout=10)
            sub.send("SUBSCRIBE", "ack:" + self.id)
            sub.read()
            pub = Resp(self.port)
            for cmd in self.commands:
                pub.call("XADD", "cmd:" + self.id, "*", "cmd", cmd)  # waits in the stream for the board's inbox
                if self.links is None:  # the board's connections while it listens, by their CLIENT SETNAME
                    self.links = sorted(ln.split(" name=")[1].split(" ")[0] for ln in
                                        pub.call("CLIENT", "LIST").decode().splitlines()
                                        if " name=" + self.id in ln)
                m = sub.read()
                self.acks.append(m[2].decode())
            pub.close()
            sub.close()
        except Exception as e:  # reported by join()
            self.error = e

    def join(self):
        self.thread.join(timeout=40)
        if self.error is not None:
            raise self.error
        return self.acks


def _config(path, **kw):
    path.write_text("".join("%s = %r\n" % kv for kv in kw.items()))


# ---- the unix program: outage and memory ------------------------------------------------------------------------


def _fields(entry):
    f = entry[1]
    return dict(zip(f[::2], f[1::2]))


def _seqs(port, device_id):
    r = Resp(port)
    try:
        return [int(_fields(e)[b"seq"]) for e in r.call("XRANGE", "sensors:%s:stream" % device_id, "-", "+")]
    finally:
        r.close()


FAILED = r"^#\d+ [-\d.]+ C: failed \((\d+) in a row\)"


def test_unix_program_survives_a_server_outage_without_growing(micropython, redis_factory):
    srv = redis_factory(appendonly=True)  # the stream outlives the restart, so every reading can be counted
    env = dict(os.environ, MICROPYPATH=_mp_path(), REDIS_HOST="127.0.0.1", REDIS_PORT=str(srv.port),
               DEVICE_ID="outage-1", READINGS="70", INTERVAL_MS="40", BACKOFF_MS="40", MAX_BACKOFF_MS="160",
               MEM_REPORT_EVERY="5", TIMEOUT_MS="1000")
    proc = subprocess.Popen([micropython.executable, str(BOARDS / "unix" / "main.py")], cwd=str(REPO), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    try:
        deadline = time.monotonic() + 20
        while _xlen(srv.port, "sensors:outage-1:stream") < 15:
            assert time.monotonic() < deadline and proc.poll() is None, "no readings"
            time.sleep(0.05)
        srv.stop()  # the server goes away
        time.sleep(0.8)
        srv.start()  # same port, same data (AOF)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    fails = re.findall(FAILED, out, re.M)
    assert len(fails) >= 3, "the outage was not noticed:\n" + out
    # the outbox kept what was read during the outage: every reading is in the stream once, in order
    assert "done: 70 sent, 0 failed, 0 commands" in out, out
    assert _seqs(srv.port, "outage-1") == list(range(1, 71)), out
    # memory: live heap after gc.collect() is the same before and after the outage (no leak per cycle / redial)
    mem = [int(x) for x in re.findall(r"^mem_free (\d+)$", out, re.M)]
    assert len(mem) >= 10, out
    steady_before, steady_after = mem[2], mem[-1]
    assert abs(steady_before - steady_after) <= 2048, "mem_free %r" % mem
    assert len(set(mem[-4:])) == 1, "mem_free still moving at the end: %r" % mem


def test_unix_program_with_a_file_outbox_survives_a_kill_while_the_server_is_down(micropython, redis_factory,
                                                                                   tmp_path):
    srv = redis_factory()
    srv.stop()  # down from the start: every reading of the first run waits in the file
    env = dict(os.environ, MICROPYPATH=_mp_path(), REDIS_HOST="127.0.0.1", REDIS_PORT=str(srv.port),
               DEVICE_ID="flash-1", INTERVAL_MS="40", BACKOFF_MS="40", MAX_BACKOFF_MS="80", TIMEOUT_MS="1000",
               OUTBOX_PATH=str(tmp_path / "box.log"))
    log = tmp_path / "run1.txt"
    with open(str(log), "w") as f:
        proc = subprocess.Popen([micropython.executable, str(BOARDS / "unix" / "main.py")], cwd=str(REPO),
                                env=dict(env, READINGS="0"), stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while len(re.findall(FAILED, log.read_text(), re.M)) < 8:
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                time.sleep(0.02)
        finally:
            proc.kill()  # SIGKILL: a power cut, as far as the outbox's file can tell
            proc.wait()
    first = log.read_text()
    assert "Traceback" not in first, first
    srv.start()
    cp = micropython.run([str(BOARDS / "unix" / "main.py")], env=dict(env, READINGS="4"), timeout=60)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0 and "Traceback" not in out, out
    seqs = _seqs(srv.port, "flash-1")
    # numbering carries on across the reboot (the file counts the readings); each one is in the stream once
    assert len(seqs) >= 8 + 4 and seqs == list(range(1, len(seqs) + 1)), (seqs, first, out)
    assert "done: %d sent, 0 failed" % len(seqs) in out, out


def test_unix_program_takes_commands_again_when_its_connection_is_killed(micropython, redis_server):
    port = redis_server.port
    env = dict(os.environ, MICROPYPATH=_mp_path(), REDIS_HOST="127.0.0.1", REDIS_PORT=str(port),
               DEVICE_ID="killed-1", READINGS="40", INTERVAL_MS="50", LISTENER_PING_EVERY="3")
    proc = subprocess.Popen([micropython.executable, str(BOARDS / "unix" / "main.py")], cwd=str(REPO), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    try:
        deadline = time.monotonic() + 20
        while _xlen(port, "sensors:killed-1:stream") < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "no readings"
            time.sleep(0.02)
        r = Resp(port)
        assert r.call("CLIENT", "KILL", "USER", "default", "SKIPME", "yes") >= 1  # the board's connection
        r.close()
        acks = Commander(port, "killed-1", ["ping"]).join()  # it listens again
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert acks == ["pong"], out
    assert proc.returncode == 0 and "Traceback" not in out, out
    # the handler's retry policy re-dialled after the kill; the inbox read its pending entries again, then on
    assert out.count("listening for commands on cmd:killed-1") == 1, out
    assert "done: 40 sent, 0 failed" in out, out
    assert _seqs(port, "killed-1") == list(range(1, 41))


def test_unix_program_exits_1_when_nothing_could_be_sent(micropython):
    env = {"MICROPYPATH": _mp_path(), "REDIS_HOST": "127.0.0.1", "REDIS_PORT": free_port(), "READINGS": 3,
           "INTERVAL_MS": 10, "BACKOFF_MS": 10, "MAX_BACKOFF_MS": 20}
    cp = micropython.run([str(BOARDS / "unix" / "main.py")], env=env, timeout=60)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    assert "done: 0 sent, 3 failed, 0 commands" in cp.stdout, cp.stdout
    assert "Traceback" not in cp.stdout + cp.stderr


def test_the_packages_the_board_programs_name_are_all_they_need(micropython, redis_server, tmp_path):
    # the ESP32 and Pico W main.py say which package files to install (mip); with only those modules the shared loop
    # sends its readings and takes a command from its inbox
    named = set()
    for board in ("esp32", "rp2_pico_w"):
        m = re.search(r"`mpremote mip install \.\.\.`: ([a-z +]+)\)", (BOARDS / board / "main.py").read_text())
        assert m, board
        named.add(m.group(1))
    assert len(named) == 1, named
    lib = tmp_path / "lib"
    for name in named.pop().split(" + "):
        pkg = json.loads((REPO / ("package.json" if name == "core" else "package-%s.json" % name)).read_text())
        for dest, _src in pkg["urls"]:
            (lib / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(str(REPO / "lib" / dest), str(lib / dest))
    r = Resp(redis_server.port)
    try:
        r.call("XADD", "cmd:pkgs-1", "*", "cmd", "ping")
    finally:
        r.close()
    env = {"MICROPYPATH": ":".join([str(lib), str(BOARDS / "common"), ".frozen"]), "REDIS_PORT": redis_server.port,
           "DEVICE_ID": "pkgs-1", "READINGS": 2, "INTERVAL_MS": 300}
    cp = micropython.run([str(BOARDS / "unix" / "main.py")], env=env, timeout=60)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0 and "done: 2 sent, 0 failed, 1 command" in out, out
    assert "command b'ping' -> pong" in out and "Traceback" not in out, out


def test_unix_program_tells_a_refusal_once(micropython):
    # a default Redis on a laptop, reached from a board, refuses every dial (protected mode: Redis 6.2's own bytes);
    # the program names the cause and the fix once, then says only that it is the same, cycle after cycle
    with Refuser(DENIED_62) as srv:
        env = {"MICROPYPATH": _mp_path(), "REDIS_HOST": "127.0.0.1", "REDIS_PORT": srv.port, "READINGS": 4,
               "INTERVAL_MS": 50, "BACKOFF_MS": 10, "MAX_BACKOFF_MS": 20}
        cp = micropython.run([str(BOARDS / "unix" / "main.py")], env=env, timeout=60)
    out = cp.stdout
    assert cp.returncode == 1 and "done: 0 sent, 4 failed" in out, out + cp.stderr
    assert out.count("the server refused the connection") == 1 and "--protected-mode no" in out, out
    assert out.count("the same error as above") == 6, out  # 3 readings and 3 command listens (none after the last)
    assert srv.accepted >= 2, out  # (the refusal came from the server, each dial)


# ---- MicroPython boards with fake hardware ----------------------------------------------------------------------


def _run_mp_board(micropython, tmp_path, board, redis_port, device_id, commands, env=(), **cfg):
    d = tmp_path / board
    d.mkdir()
    shutil.copy(str(BOARDS / board / "main.py"), str(d / "main.py"))
    base = dict(WIFI_SSID="lab", WIFI_PASSWORD="secret", REDIS_HOST="127.0.0.1", REDIS_PORT=redis_port,
                READINGS=8, INTERVAL_MS=150, WIFI_TIMEOUT_MS=300, BACKOFF_MS=50, MAX_BACKOFF_MS=200)
    base.update(cfg)
    _config(d / "config.py", **base)
    full_env = dict(os.environ, MICROPYPATH=_mp_path(FAKES / "mp", FAKES))
    full_env.update(dict(env))
    proc = subprocess.Popen([micropython.executable, str(d / "main.py")], cwd=str(d), env=full_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True)
    cmd = Commander(redis_port, device_id, commands)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    acks = cmd.join()
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    # one connection, RESP3 and RESP2 alike: the commands, the outbox's XADDs and the inbox's reads
    assert cmd.links == [device_id], cmd.links
    return out, acks


def _stream(port, device_id):
    r = Resp(port)
    try:
        return r.call("XRANGE", "sensors:%s:stream" % device_id, "-", "+"), r.call("GET", "sensors:%s:led" % device_id)
    finally:
        r.close()


def test_esp32_main_with_fake_hardware(micropython, redis_server, tmp_path):
    dev = "esp32-ef0102"  # DEVICE_ID None: from the (fake) machine.unique_id()
    out, acks = _run_mp_board(micropython, tmp_path, "esp32", redis_server.port, dev, ["led on", "ping", "led off"],
                              env={"FAKE_WIFI_FAIL_CONNECTS": "1", "FAKE_WIFI_DROP_AT": "5"}, LED_PIN=2)
    assert acks == ["led on", "pong", "led off"], out
    assert "FAKE wifi connect 'lab' #1 fails" in out and "FAKE wifi dropped" in out, out
    assert re.search(r"FAKE wifi connect 'lab' #3 ok", out), "no reconnect after the drop:\n" + out
    assert "FAKE pin 2 = 1" in out and out.rindex("FAKE pin 2 = 0") > out.index("FAKE pin 2 = 1"), out
    entries, led = _stream(redis_server.port, dev)
    assert len(entries) == 8 and led == b"off"
    assert all(_fields(e)[b"temp"] == b"41.00" for e in entries)  # esp32.mcu_temperature()


def test_esp32_main_on_resp2(micropython, redis_server, tmp_path):
    dev = "esp32-resp2"
    out, acks = _run_mp_board(micropython, tmp_path, "esp32", redis_server.port, dev, ["led on", "ping"], PROTOCOL=2,
                              READINGS=4, DEVICE_ID=dev)
    assert acks == ["led on", "pong"], out
    assert _seqs(redis_server.port, dev) == [1, 2, 3, 4], out


def test_rp2_pico_w_main_with_fake_hardware(micropython, redis_server, tmp_path):
    # no Wi-Fi for the whole first cycle (three failed attempts): its reading waits in the outbox
    out, acks = _run_mp_board(micropython, tmp_path, "rp2_pico_w", redis_server.port, "pico-lab", ["led toggle"],
                              env={"FAKE_WIFI_FAIL_CONNECTS": "3"}, DEVICE_ID="pico-lab", READINGS=5)
    assert acks == ["led on"], out
    assert re.search(r"^#1 [\d.]+ C: failed \(1 in a row\): OSError: wifi: no connection to 'lab'", out, re.M), out
    assert "FAKE wifi connect 'lab' #4 ok" in out and "stream: 2 delivered, 0 pending" in out, out
    assert _seqs(redis_server.port, "pico-lab") == [1, 2, 3, 4, 5]
    assert "FAKE pin 'LED' = 1" in out, out
    assert "FAKE wlan config [('pm', 10555712)]" in out, out  # power saving off
    entries, led = _stream(redis_server.port, "pico-lab")
    assert len(entries) == 5 and led == b"on"
    temp = float(_fields(entries[0])[b"temp"])
    assert 26.5 < temp < 27.5, temp  # ADC(4) at 0.706 V is 27 C


# ---- CircuitPython with fakes, under CPython --------------------------------------------------------------------


def test_circuitpython_main_with_fake_hardware(redis_server, tmp_path):
    code = tmp_path / "code.py"
    shutil.copy(str(BOARDS / "circuitpython" / "main.py"), str(code))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (FAKES / "cp", FAKES, REPO / "tests_device", REPO / "lib",
                                                         BOARDS / "common"))
    # what settings.toml gives os.getenv() on CircuitPython
    env.update(CIRCUITPY_WIFI_SSID="lab", CIRCUITPY_WIFI_PASSWORD="secret", REDIS_HOST="127.0.0.1",
               REDIS_PORT=str(redis_server.port), READINGS="6", INTERVAL_MS="150", BACKOFF_MS="50",
               MAX_BACKOFF_MS="200", FAKE_WIFI_FAIL_CONNECTS="1")
    env.pop("DEVICE_ID", None)
    dev = "cpy-040506"  # from the fake microcontroller.cpu.uid
    proc = subprocess.Popen([sys.executable, str(code)], cwd=str(tmp_path), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    cmd = Commander(redis_server.port, dev, ["led on"])
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert cmd.join() == ["led on"], out
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert "FAKE wifi connect 'lab' #1 fails" in out and "FAKE wifi connect 'lab' #2 ok" in out, out
    assert "FAKE pin 'LED' = 1" in out, out
    entries, led = _stream(redis_server.port, dev)
    assert len(entries) == 6 and led == b"on"


# ---- static checks ------------------------------------------------------------------------------------------------


def test_board_files_compile_for_micropython(tmp_path):
    files = sorted(BOARDS.glob("*/*.py"))
    assert len(files) >= 8
    for f in files:
        compile_mpy(f, tmp_path / "x.mpy")  # raises with mpy-cross's output


def test_every_board_has_main_and_config_template():
    for board in ("esp32", "rp2_pico_w", "unix"):
        assert (BOARDS / board / "main.py").is_file()
        assert (BOARDS / board / "config.example.py").is_file()
    assert (BOARDS / "circuitpython" / "main.py").is_file()
    assert (BOARDS / "circuitpython" / "settings.example.toml").is_file()


def test_config_templates_name_known_settings():
    known = set(telemetry.DEFAULTS) | {"LED_ACTIVE_LOW", "WIFI_POWER_SAVE", "CIRCUITPY_WIFI_SSID",
                                       "CIRCUITPY_WIFI_PASSWORD"}
    for t in list(BOARDS.glob("*/config.example.py")) + [BOARDS / "circuitpython" / "settings.example.toml"]:
        names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)\s*=", t.read_text(), re.M)
        assert names, t
        unknown = sorted(set(names) - known)
        assert not unknown, "%s: unknown settings %s" % (t, unknown)


def test_real_configs_are_ignored_by_git():
    ignored = (REPO / ".gitignore").read_text().split()
    assert "boards/*/config.py" in ignored and "boards/*/settings.toml" in ignored


def test_load_config_precedence():
    class Mod:
        REDIS_PORT = 7000
        DEVICE_ID = "from-config"

    env = {"REDIS_PORT": "7001", "READINGS": ""}.get
    cfg = telemetry.load_config(Mod, env)
    assert cfg["REDIS_PORT"] == 7001  # the environment wins, converted to int
    assert cfg["DEVICE_ID"] == "from-config"
    assert cfg["READINGS"] == 0  # empty: the default
    assert telemetry.load_config(None)["REDIS_HOST"] == "127.0.0.1"


def _lines(path):
    with open(str(path)) as f:
        return len(f.read().splitlines())  # every line: blank lines, comments and docstrings count too


def test_board_programs_are_short():
    # issue 10, "Examples become short": each board's main.py <= 60 lines, the shared part <= 150 (Wi-Fi included)
    mains = sorted(BOARDS.glob("*/main.py"))
    assert len(mains) == 4
    too_long = ["%s: %d lines" % (p.relative_to(REPO), _lines(p)) for p in mains if _lines(p) > 60]
    assert not too_long, too_long
    shared = sorted(BOARDS.glob("common/*.py"))
    assert shared and sum(_lines(p) for p in shared) <= 150, ["%s: %d" % (p.name, _lines(p)) for p in shared]
    assert "mr.Outbox(" in (BOARDS / "common" / "telemetry.py").read_text()  # the survival feature, not a hand-made loop
