"""mip package files (package.json, package-*.json): complete, resolvable, versioned alike, and installable.

- every lib/microredis/*.py is in exactly one package file, and every URL names an existing file;
- the version agrees across __init__.py, every package file, pyproject.toml and firmware/manifest.py;
- the files are what tools/mkpackages.py generates (`make packages`);
- MicroPython's own mip (frozen in the unix port) installs them over HTTP from a loopback server, and the
  installed copy connects to a real server; the core alone works without pub/sub;
- `mpremote mip install <local package.json>` installs them onto the unix port driven like a board.
"""

import functools
import http.server
import json
import re
import subprocess
import sys
import threading

import pytest

from conftest import REPO

import mkpackages

LIB = REPO / "lib" / "microredis"
PACKAGE_FILES = sorted(p.name for p in REPO.glob("package*.json"))


def _load(name):
    with open(REPO / name, encoding="utf-8") as f:
        return json.load(f)


def _version_init():
    m = re.search(r"^__version__\s*=\s*[\"']([^\"']+)[\"']", (LIB / "__init__.py").read_text(), re.M)
    assert m, "no __version__ in lib/microredis/__init__.py"
    return m.group(1)


def test_package_files_exist():
    assert "package.json" in PACKAGE_FILES
    assert sorted(mkpackages.PACKAGES) == PACKAGE_FILES, \
        "package files at the root and tools/mkpackages.py PACKAGES differ"


def test_every_module_in_exactly_one_package():
    where = {}
    for name in PACKAGE_FILES:
        for target, _url in _load(name)["urls"]:
            where.setdefault(target, []).append(name)
    problems = []
    for py in sorted(LIB.glob("*.py")):
        target = "microredis/" + py.name
        found = where.pop(target, [])
        if len(found) != 1:
            problems.append("%s is in %s" % (py.name, found or "no package file"))
    for target, found in where.items():
        problems.append("%s (in %s) is not a module of lib/microredis/" % (target, found))
    assert not problems, "; ".join(problems) + \
        " - edit PACKAGES in tools/mkpackages.py and run `make packages`"


def test_every_url_resolves_to_its_file():
    for name in PACKAGE_FILES:
        doc = _load(name)
        assert set(doc) <= {"urls", "deps", "version", "hashes"}, (name, sorted(doc))
        for target, url in doc["urls"]:
            assert not url.startswith(("http:", "https:", "github:", "gitlab:", "/")), \
                "%s: %s must be relative to the package file, so github:<owner>/<repo> and local paths both work" \
                % (name, url)
            path = REPO / url
            assert path.is_file(), "%s: %s does not exist" % (name, url)
            assert target == "microredis/" + path.name, (name, target, url)


def test_versions_agree():
    v = _version_init()
    found = {"lib/microredis/__init__.py": v}
    for name in PACKAGE_FILES:
        found[name] = _load(name).get("version")
    m = re.search(r"^version\s*=\s*\"([^\"]+)\"", (REPO / "pyproject.toml").read_text(), re.M)
    found["pyproject.toml"] = m.group(1) if m else None
    manifest = REPO / "firmware" / "manifest.py"
    if manifest.exists():
        m = re.search(r"metadata\([^)]*version\s*=\s*[\"']([^\"']+)[\"']", manifest.read_text(), re.S)
        if m:
            found["firmware/manifest.py"] = m.group(1)
    assert all(x == v for x in found.values()), "versions differ: %r" % found


def test_package_files_are_generated():
    assert mkpackages.expected() == {n: (REPO / n).read_text(encoding="utf-8") for n in mkpackages.PACKAGES}, \
        "package files are out of date: run `make packages`"


# ---- installing -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_repo():
    """The repo served read-only over HTTP on 127.0.0.1 (what github:<owner>/<repo> gives mip, without network)."""
    handler = functools.partial(_QuietHandler, directory=str(REPO))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


CHECK = """
import sys
import microredis as mr
assert mr.__file__.startswith(%(target)r), mr.__file__
h = mr.ConnectionHandler.resp3(('127.0.0.1', %(port)d)).timeout(2000)
c = h.connect()
assert c.set(b'mip:key', b'21.5', ex=60).wait() is True
assert c.get(b'mip:key').wait() == b'21.5'
assert c.xadd(b'mip:stream', {b'temp': b'21.5'}, maxlen=10).wait()
try:
    sub = c.subscribe(b'mip:chan')
except ImportError:
    print('PUBSUB missing')
else:
    sub.close()
    print('PUBSUB ok')
c.close()
h.disconnect()
print('INSTALLED OK', mr.__version__)
"""


def _mip(micropython, url, target):
    code = "import mip\nmip.install(%r, target=%r)\n" % (url, str(target))
    cp = micropython.run(["-c", code], env={"MICROPYPATH": ".frozen"}, timeout=60)
    assert cp.returncode == 0 and "Done" in cp.stdout, "mip.install(%s) failed:\n%s%s" % (url, cp.stdout, cp.stderr)
    return cp


def _check_installed(micropython, redis_server, target):
    cp = micropython.run(["-c", CHECK % {"target": str(target), "port": redis_server.port}],
                         env={"MICROPYPATH": "%s:.frozen" % target}, timeout=60)
    assert cp.returncode == 0 and "INSTALLED OK" in cp.stdout, cp.stdout + cp.stderr
    return cp.stdout


def test_mip_installs_core_then_pubsub(micropython, redis_server, http_repo, tmp_path):
    target = tmp_path / "lib"
    _mip(micropython, http_repo + "/package.json", target)
    core = sorted(p.name for p in (target / "microredis").iterdir())
    expected = sorted(t.split("/")[1] for t, _ in _load("package.json")["urls"])
    assert core == expected
    # the core alone: connects and sends commands; subscribe() says pub/sub is not installed
    out = _check_installed(micropython, redis_server, target)
    assert "PUBSUB missing" in out
    _mip(micropython, http_repo + "/package-pubsub.json", target)
    out = _check_installed(micropython, redis_server, target)
    assert "PUBSUB ok" in out
    installed = sorted(p.name for p in (target / "microredis").iterdir())
    both = set(t.split("/")[1] for n in ("package.json", "package-pubsub.json") for t, _ in _load(n)["urls"])
    assert installed == sorted(both)
    for name in installed:  # byte-identical copies
        assert (target / "microredis" / name).read_bytes() == (LIB / name).read_bytes()


def test_mpremote_mip_install_local_path_on_unix_board(tmp_path, redis_server):
    from unixboard import UnixBoard, Unavailable

    try:
        board = UnixBoard(cwd=str(tmp_path))
    except Unavailable as e:
        pytest.skip(str(e))
    with board:
        for name in PACKAGE_FILES:
            cp = board.mpremote("mip", "install", "--target", "lib", str(REPO / name), timeout=60)
            assert "Done" in cp.stdout, cp.stdout
        cp = board.mpremote("exec", CHECK % {"target": str(tmp_path / "lib"), "port": redis_server.port},
                            timeout=60, check=False)
    assert cp.returncode == 0 and "INSTALLED OK" in cp.stdout and "PUBSUB ok" in cp.stdout, cp.stdout
    assert sorted(p.name for p in (tmp_path / "lib" / "microredis").iterdir()) == \
        sorted(p.name for p in LIB.glob("*.py"))


def test_mkpackages_check_passes():
    cp = subprocess.run([sys.executable, str(REPO / "tools" / "mkpackages.py"), "--check"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert cp.returncode == 0, cp.stdout


TX_CHECK = """
import microredis as mr
h = mr.ConnectionHandler.resp3(('127.0.0.1', %(port)d)).timeout(2000)
c = h.connect()
try:
    c.transaction()
except ImportError as e:
    print('TX missing:', e)
else:
    with c.transaction() as t:
        f = t.incr(b'mip:tx')
    assert f.wait() >= 1
    assert c.register_script('return 7').run().wait() == 7
    assert issubclass(mr.WatchError, mr.RedisError)
    print('TX ok')
c.close()
"""


def test_mip_installs_package_tx(micropython, redis_server, http_repo, tmp_path):
    # without package-tx.json, transaction() names the file to install; with it, transactions and scripts work
    target = tmp_path / "lib"
    _mip(micropython, http_repo + "/package.json", target)
    run = ["-c", TX_CHECK % {"port": redis_server.port}]
    cp = micropython.run(run, env={"MICROPYPATH": "%s:.frozen" % target}, timeout=60)
    assert cp.returncode == 0 and "TX missing" in cp.stdout and "package-tx.json" in cp.stdout, cp.stdout + cp.stderr
    _mip(micropython, http_repo + "/package-tx.json", target)
    assert sorted(p.name for p in (target / "microredis").iterdir() if p.name in ("transaction.py", "scripts.py")) \
        == ["scripts.py", "transaction.py"]
    cp = micropython.run(run, env={"MICROPYPATH": "%s:.frozen" % target}, timeout=60)
    assert cp.returncode == 0 and "TX ok" in cp.stdout, cp.stdout + cp.stderr


MISSING_CHECK = """
import microredis as mr
h = mr.ConnectionHandler.resp3(('127.0.0.1', 6379))
for what, f in (('Outbox', lambda: mr.Outbox), ('Sentinel', lambda: mr.Sentinel), ('retry', h.retry),
                ('health_check', lambda: h.health_check(1000)), ('WatchError', lambda: mr.WatchError),
                ('aio', lambda: mr.aio), ('cache', lambda: mr.cache)):
    try:
        f()
        print(what, 'loaded')
    except ImportError as e:
        print(what, 'missing:', e)
"""


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_missing_package_file_is_named(runtime, micropython, tmp_path):
    # only package.json installed: each optional part names the package file that brings it, not only its module
    # ("no module named 'microredis.outbox'" said nothing about package-survival.json)
    lib = tmp_path / "microredis"
    lib.mkdir()
    for dest, _src in _load("package.json")["urls"]:
        (tmp_path / dest).write_bytes((REPO / "lib" / dest).read_bytes())
    if runtime == "cpython":
        cp = subprocess.run([sys.executable, "-c", MISSING_CHECK], env={"PYTHONPATH": str(tmp_path)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    else:
        cp = micropython.run(["-c", MISSING_CHECK], env={"MICROPYPATH": "%s:.frozen" % tmp_path}, timeout=60)
    out = cp.stdout
    assert cp.returncode == 0, out + cp.stderr
    for what, package, module in (("Outbox", "survival", "outbox"), ("Sentinel", "survival", "sentinel"),
                                  ("retry", "survival", "retry"), ("health_check", "survival", "retry"),
                                  ("WatchError", "tx", "transaction"), ("aio", "aio", "aio"),
                                  ("cache", "cache", "cache")):
        assert "%s missing: microredis.%s is not installed: install package-%s.json (mip) or copy %s.py" % (
            what, module, package, module) in out, out
