"""What a newcomer runs and reads, checked so it cannot drift: the README's module table against lib/microredis/,
links that stay inside the repository, docs/DESIGN.md against the code, `make help`, `make deploy` without BOARD,
`make test`'s stages and total time, `make test-quick` (its time), `make board` with the mpremote and `make deploy`
commands the README gives for it, the "Which microredis?" command, the distribution name, the demo's output, and
`dir(microredis)`.

Tests named test_make_* run make targets that take seconds to a minute; `make test-quick` leaves them out.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

from unixboard import socat_executable

README = (REPO / "README.md").read_text(encoding="utf-8")
LIB = REPO / "lib" / "microredis"
MPREMOTE = str(REPO / ".venv" / "bin" / "mpremote")


# the caller's make flags and the settings the Makefile and the board programs read
CLEAN_ENV = ("PORT", "BOARD", "CIRCUITPY", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "PYTEST_ARGS",
             "REDIS_HOST", "REDIS_PORT", "DEVICE_ID", "READINGS", "INTERVAL_MS")


def make(*args, timeout=300, env=None):
    e = dict(os.environ)
    for k in CLEAN_ENV:
        e.pop(k, None)
    if env:
        e.update(env)
    return subprocess.run(["make", "--no-print-directory"] + list(args), cwd=str(REPO), env=e,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout)


def readme_blocks(text=README):
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def readme_commands(text=README):
    """Every command line of the README's sh blocks, comments stripped."""
    out = []
    for block in readme_blocks(text):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


# ---- docs -----------------------------------------------------------------------------------------------------

def test_readme_package_table_lists_every_module_in_its_package_file():
    rows = dict(re.findall(r"^\| `(package[\w-]*\.json)` \| (.*) \|$", README, re.M))
    assert sorted(rows) == sorted(p.name for p in REPO.glob("package*.json")), rows
    listed = []
    for name, cell in rows.items():
        mods = re.findall(r"`(\w+)`", cell.split(" (", 1)[0])
        with open(REPO / name, encoding="utf-8") as f:
            in_file = sorted(t.split("/")[1][:-3] for t, _ in json.load(f)["urls"])
        assert sorted(mods) == in_file, "README row for %s lists %s, the file has %s" % (name, mods, in_file)
        listed += mods
    assert sorted(listed) == sorted(p.stem for p in LIB.glob("*.py")), \
        "README's package table and lib/microredis/*.py differ"


def _tracked_text_files():
    files = subprocess.run(["git", "ls-files"], cwd=str(REPO), capture_output=True, text=True,
                           check=True).stdout.split()
    files += [str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")]  # new, maybe not added yet
    for f in sorted(set(files)):
        p = REPO / f
        if p.suffix in (".md", ".py", ".sh", ".toml", ".json", ".txt", "") and p.is_file():
            try:
                yield f, p.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                pass


def test_nothing_points_outside_the_repository():
    bad = []
    for f, text in _tracked_text_files():
        for m in re.finditer(r"\.\./shared|/work/(?:shared|wt|main)\b", text):
            bad.append("%s: %s" % (f, m.group(0)))
    assert not bad, bad


def test_markdown_links_resolve_inside_the_repository():
    bad = []
    for md in [REPO / "README.md", REPO / "firmware" / "README.md", REPO / "bench" / "README.md"] + \
            sorted((REPO / "docs").glob("*.md")):
        if not md.exists():
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://", target) or target.startswith("#"):
                continue
            path = (md.parent / target.split("#", 1)[0]).resolve()
            if not path.exists() or REPO.resolve() not in path.parents:
                bad.append("%s -> %s" % (md.relative_to(REPO), target))
    assert not bad, bad


def test_spec_is_in_the_repository_and_referenced():
    spec = (REPO / "docs" / "SPEC.md").read_text(encoding="utf-8")
    assert spec.startswith("# microredis: the product contract")
    design = (REPO / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    assert "[SPEC.md](SPEC.md)" in design
    assert "`docs/SPEC.md`" in README


def test_design_md_describes_the_encoder_the_code_has():
    from microredis import encoder

    design = (REPO / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    assert "write_obj" not in design and "sink.send_obj(value)" in design
    assert "e.check(" not in design and "encoder.check(arg)" in design and callable(encoder.check)
    assert not hasattr(encoder.Encoder, "check")
    assert "larger than a quarter of the buffer" in design and encoder._BIG == 4
    # and the quarter is what the code does: 129 bytes go uncopied through a 512-byte buffer, 128 are copied
    sent = []

    class Sink:
        def send(self, buf, n):
            sent.append(("send", bytes(buf[:n])))

        def send_obj(self, obj):
            sent.append(("obj", obj))

    for size, uncopied in ((128, False), (129, True)):
        sent.clear()
        e = encoder.Encoder(bytearray(512), Sink())
        e.command([b"SET", b"k", b"v" * size])
        e.flush()
        assert any(kind == "obj" for kind, _ in sent) is uncopied, (size, sent)


def _fit_block():
    import fittable

    i, j = README.find(fittable.FIT_BEGIN), README.find(fittable.FIT_END)
    assert 0 <= i < j, "README: the 'Will it fit my board?' table's markers are missing"
    return README[i:j]


def test_fit_table_flash_figures_are_the_files():
    # the flash cells are the library's bytes (mpy-cross output and .py sources) within 10 %: they drift with the
    # library, so a change big enough to mislead fails here; `tools/fittable.py` rewrites the table
    import fittable

    block = _fit_block()
    sizes = fittable.flash_sizes()
    rows = dict((m.group(1), (float(m.group(2)), float(m.group(3))))
                for m in re.finditer(r"^\| `(package[\w-]*\.json)` \| ([\d.]+) KB \| ([\d.]+) KB \|", block, re.M))
    assert sorted(rows) == sorted(sizes), "one row per package file: %s" % sorted(rows)
    for pkg, (mpy, py) in sizes.items():
        for said, real, kind in ((rows[pkg][0], mpy / 1000.0, ".mpy"), (rows[pkg][1], py / 1000.0, ".py")):
            assert abs(said - real) <= 0.1 * real, \
                "README fit table: %s as %s says %.1f KB, the files are %.1f KB: run tools/fittable.py" \
                % (pkg, kind, said, real)


def test_fit_table_names_its_bench_run_and_is_not_older_than_the_tracked_results():
    import fittable

    block = _fit_block()
    m = re.search(r"from `make bench` of (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", block)
    assert m, block[:300]
    assert "| the boards' telemetry loop" in block and "KiB |" in block, block
    with open(REPO / "bench" / "results.md", encoding="utf-8") as f:
        tracked = fittable.parse_results(f.read())
    # bench/results.md is what `make bench OUT=bench/results.md` writes: a newer run there makes the table stale
    assert tracked[0] <= m.group(1) or not tracked[1], \
        "bench/results.md (%s) is newer than README's fit table (%s): .venv/bin/python tools/fittable.py " \
        "bench/results.md" % (tracked[0], m.group(1))


def test_one_conversion_factor_from_x64_to_32_bit():
    # every doc that converts x64 RAM figures to a 32-bit board uses the measured factor, 0.70 (make bench's
    # "32-bit / x64" column), never "half", "80 %", "60 %" or a range of its own
    docs = [REPO / "README.md", REPO / "firmware" / "README.md"] + sorted((REPO / "docs").glob("*.md")) + \
        sorted(p for p in (REPO / "bench").rglob("*.md") if p.name != "results.md") + \
        sorted((REPO / "boards").rglob("*.py")) + sorted((REPO / "boards").rglob("*.md"))
    bad, seen = [], 0
    for p in docs:
        text = re.sub(r"\s+", " ", p.read_text(encoding="utf-8"))
        for c in re.finditer(r"about (half|\d+ ?%|0\.\d+(?:-0\.\d+)?x?)(?! headroom)", text):
            window = text[max(0, c.start() - 60):c.end() + 60]
            if "32-bit" in window:
                seen += 1
                if c.group(1).rstrip("x") != "0.70":
                    bad.append("%s: ...%s..." % (p.relative_to(REPO), window))
    assert not bad, "\n".join(bad)
    assert seen >= 4, seen  # README (twice), PROFILE.md, SURVIVAL.md, bench/README.md


def test_readme_futures_ready_and_pubsub_hint_are_documented():
    assert "`ready()` never blocks and never raises" in README
    assert "raises `ImportError` naming `package-pubsub.json`" in README


# ---- the library's names ------------------------------------------------------------------------------------------

def test_dir_lists_the_lazily_loaded_names():
    import microredis

    names = dir(microredis)
    for n in microredis._LAZY:
        assert n in names, n
    assert "RedisError" in names and "__version__" in names


# ---- the distribution name ----------------------------------------------------------------------------------------

def test_distribution_name_is_distinct_and_the_import_name_stays():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        pytest.skip("tomllib needs Python 3.11")
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)
    assert project["project"]["name"] == "microredis-client"
    assert project["tool"]["setuptools"]["packages"] == ["microredis"]
    assert "`microredis-client`" in README and "## Which microredis?" in README


def test_which_microredis_command_from_the_readme():
    cmds = [c for c in readme_commands() if c.startswith("python3 -c") and "import microredis" in c]
    assert len(cmds) == 1, cmds
    argv = shlex.split(cmds[0])
    argv[0] = sys.executable
    cp = subprocess.run(argv, cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO / "lib")),
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "%s client" % (LIB / "__init__.py"), cp.stdout


# ---- Makefile -----------------------------------------------------------------------------------------------------

def test_make_help_lists_every_entry_point():
    cp = make("-s", "help")
    assert cp.returncode == 0, cp.stdout
    for target in ("demo", "test", "test-quick", ".venv", "board", "mpy", "deploy", "test-device",
                   "test-device-unix", "packages", "firmware", "test-firmware", "bench", "fuzz", "soak", "clean"):
        assert re.search(r"^make %s\b" % re.escape(target), cp.stdout, re.M), (target, cp.stdout)
    assert "when present" not in cp.stdout
    assert "when present" not in (REPO / "Makefile").read_text()


def test_make_deploy_requires_board(tmp_path):
    cp = make("-s", "deploy", "PORT=%s" % (tmp_path / "nothing"))
    assert cp.returncode != 0
    assert "usage: make deploy PORT=" in cp.stdout and "give BOARD" in cp.stdout, cp.stdout
    assert "mpremote" not in cp.stdout.replace("via mpremote", "")  # stopped before touching any port


def test_make_test_prints_stages_and_total_time():
    # the real stages, with pytest only collecting (the firmware stage is quick once built, as in `make test`)
    cp = make("test", "PYTEST_ARGS=--collect-only -q", timeout=900)
    out = cp.stdout
    assert cp.returncode == 0, out
    stages = [int(n) for n in re.findall(r"^\[make test\] (\d)/4 ", out, re.M)]
    assert stages == [1, 2, 3, 4], out
    assert "about 4 min" in out and "apt-installs" in out, out
    assert re.search(r"^\[make test\] total: \d+ min \d+ s \(rc=0\)$", out, re.M), out
    assert re.search(r"^tests_host/test_newcomer.py", out, re.M), out  # pytest ran, collecting


def test_make_test_quick_leaves_out_the_slow_parts():
    # collect only: running the quick suite inside make test would run most of make test twice (its time is
    # checked from its recorded measurement: test_quick_set_is_what_was_measured_and_fits_its_budget)
    cp = make("-s", "test-quick", "PYTEST_ARGS=--collect-only", timeout=300)
    out = cp.stdout
    assert cp.returncode == 0, out[-4000:]
    assert re.search(r"^tests_host/test_shared.py::test_micropython\[t_client\]", out, re.M), out[-4000:]
    assert "test_shared.py::test_cpython[" not in out, out[-4000:]
    for skipped in ("test_firmware.py", "test_device_unix.py", "test_deploy.py", "test_demo.py", "test_chaos.py",
                    "test_types.py", "test_redis7.py", "test_inbox_soak.py", "test_faults.py"):
        assert skipped not in out, out[-4000:]
    assert re.search(r"^\[make test-quick\] total: \d+ s \(rc=0\); budget \d+ s", out, re.M), out[-2000:]


def test_quick_set_is_what_was_measured_and_fits_its_budget():
    # the QUICK allow-list and tests_host/quick_times.json (tools/quicktimes.py: one measured `make test-quick`)
    # name the same entries, and that measurement fits QUICK_BUDGET; a test file joins the quick set only by being
    # added to QUICK, and re-measured
    from quicktimes import makefile_var

    budget = int(makefile_var("QUICK_BUDGET"))
    entries = makefile_var("QUICK").split()
    with open(REPO / "tests_host" / "quick_times.json", encoding="utf-8") as f:
        rec = json.load(f)
    assert sorted(rec["entries_s"]) == sorted(entries), \
        "QUICK changed since it was measured: .venv/bin/python tools/quicktimes.py"
    for e in entries:
        assert (REPO / e.split("::")[0]).is_file(), e
    assert rec["wall_s"] <= budget and sum(rec["entries_s"].values()) <= budget, rec
    # what the README and `make help` say is that budget
    assert "`make test-quick` | the inner loop, %d s at most on 2 CPUs (%d s measured" % (budget, int(rec["wall_s"])) \
        in README, "README: make test-quick's budget and its measured time"
    assert "make test-quick   # the inner loop (under %d s)" % budget in README
    assert "budget %d s on 2 CPUs" % budget in make("-s", "help").stdout


def test_make_test_skip_hint_for_redis7():
    src = (REPO / "tests_host" / "test_redis7.py").read_text()
    assert "apt-get install redis-server openssl" in src
    assert "apt-get install redis-server openssl" in README


def test_readme_apt_command_names_real_packages():
    cmd = [c for c in re.findall(r"`(apt-get install [^`]+)`", README) if "redis-server" in c]
    assert cmd == ["apt-get install redis-server openssl"], cmd
    if subprocess.run(["sh", "-c", "command -v apt-get"], capture_output=True).returncode != 0:
        pytest.skip("no apt-get here")
    # --simulate: resolves the names and versions without installing (no root needed)
    cp = subprocess.run(cmd[0].replace("install", "install --simulate", 1).split(), capture_output=True, text=True,
                        timeout=120)
    if cp.returncode != 0 and "Unable to locate package" in cp.stderr + cp.stdout:
        pytest.skip("apt has no package lists here (apt-get update first)")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    m = re.search(r"redis-server \(\d+:(\d+)\.", cp.stdout) or \
        re.search(r"redis-server is already the newest version \(\d+:(\d+)\.", cp.stdout)
    assert m and int(m.group(1)) >= 7, cp.stdout


# ---- make board: the README's commands against it -----------------------------------------------------------------

@pytest.mark.skipif(socat_executable() is None, reason="socat is not installed (apt-get install socat)")
def test_make_board_then_the_readme_commands(tmp_path, redis_server):
    section = README.split("### No board yet? The unix port as one", 1)[1].split("\n### ", 1)[0]
    blocks = readme_blocks(section)
    assert readme_commands("```sh\n" + blocks[0] + "```") == ["make board"]
    cmds = readme_commands("```sh\n" + blocks[1] + "```")
    assert len(cmds) == 4, cmds
    assert "mip" in cmds[1] and cmds[2].startswith("make deploy") and cmds[3].endswith('exec "import main"'), cmds
    env = dict(os.environ)
    for k in CLEAN_ENV:
        env.pop(k, None)
    proc = subprocess.Popen(["make", "-s", "--no-print-directory", "board"], cwd=str(REPO), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, start_new_session=True)
    lines = []
    try:
        port = folder = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (port and folder):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.match(r"^unix board up: PORT=(\S+)$", line.strip())
            if m:
                port = m.group(1)
            m = re.match(r"^its filesystem \(/\) is (\S+)", line.strip())
            if m:
                folder = m.group(1)
        assert port and folder, "".join(lines)
        for cmd in cmds:
            cmd = cmd.replace("<port>", port).replace("/path/to/microredis", str(REPO))
            argv = shlex.split(cmd)
            if argv[0] == ".venv/bin/mpremote":
                argv[0] = MPREMOTE
            if argv[-1] == "import main":
                # the user's config.py (boards/unix/config.py, which make deploy copies): the test's server
                with open(os.path.join(folder, "config.py"), "w") as f:
                    f.write("REDIS_PORT = %d\nREADINGS = 2\nINTERVAL_MS = 200\nDEVICE_ID = 'newcomer-1'\n"
                            % redis_server.port)
            cp = subprocess.run(argv, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=300)
            assert cp.returncode == 0, "%s\n%s%s" % (cmd, cp.stdout, cp.stderr)
            if "exec" in argv and argv[-1] != "import main":
                assert cp.stdout.strip() == "linux", cp.stdout
            if argv[:2] == ["make", "deploy"]:
                assert os.path.exists(os.path.join(folder, "main.py")), os.listdir(folder)
                assert os.path.exists(os.path.join(folder, "lib", "microredis", "client.mpy"))
                # mip's .py files would shadow the .mpy: deploy removed them, and says how to start main.py here
                assert not os.path.exists(os.path.join(folder, "lib", "microredis", "client.py"))
                assert "it would shadow the new .mpy" in cp.stdout, cp.stdout
                assert 'resume exec "import main"' in cp.stdout, cp.stdout
            if "mip" in argv:
                assert "Done" in cp.stdout, cp.stdout
                assert os.path.exists(os.path.join(folder, "lib", "microredis", "client.py"))
            if argv[-1] == "import main":
                assert "done: 2 sent, 0 failed" in cp.stdout, cp.stdout
        assert proc.poll() is None, "the board ended during the commands"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # make and tools/unixboard.py: its own process group
        rest = proc.communicate(timeout=30)[0]
    out = "".join(lines) + rest
    assert "unixboard: stopped" in out, out
    assert not os.path.exists(folder), "the board's temporary folder was left behind"


@pytest.mark.skipif(socat_executable() is None, reason="socat is not installed (apt-get install socat)")
def test_make_board_options_dir_heapsize_env(tmp_path):
    # the README's `tools/unixboard.py --dir DIR`, `--heapsize 64k` and `--env REDIS_PORT=6379`
    assert "`.venv/bin/python tools/unixboard.py --dir DIR`" in README
    assert "`--heapsize 64k`" in README and "`--env REDIS_PORT=6379`" in README
    folder = tmp_path / "board"
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "python"), "tools/unixboard.py", "--dir", str(folder),
                             "--heapsize", "64k", "--env", "REDIS_PORT=6379"], cwd=str(REPO),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        m = re.match(r"^unix board up: PORT=(\S+)$", line.strip())
        assert m, line + proc.stdout.read() if proc.poll() is not None else line
        cp = subprocess.run([MPREMOTE, "connect", m.group(1), "resume", "exec",
                             "import os, gc; gc.collect(); print(os.getenv('REDIS_PORT'), gc.mem_free() < 65536, "
                             "os.getcwd())"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert cp.stdout.split() == ["6379", "True", str(folder)], cp.stdout + cp.stderr
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0 and "unixboard: stopped" in rest, rest
    assert folder.is_dir(), "a --dir folder is the user's: kept"


# ---- the demo's output ---------------------------------------------------------------------------------------------

def test_make_demo_prints_whole_lines_and_counts_in_english():
    cp = make("-s", "demo", timeout=120)
    out = cp.stdout
    assert cp.returncode == 0, out
    for line in out.splitlines():
        assert line.startswith("demo: ") or line.startswith("  board | ") or line.startswith(".venv/bin/python"), \
            "a line of the demo is not whole: %r" % line
        assert "demo:" not in line[1:], "two lines ran into one: %r" % line
    assert re.search(r"^  board \| done: 5 sent, 0 failed, 1 command$", out, re.M), out
