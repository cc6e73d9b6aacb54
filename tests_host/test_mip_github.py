"""The mip-from-GitHub route of the README, offline: `github:<owner>/<repo>/package.json` becomes
raw.githubusercontent.com URLs (the default branch, HEAD, or `@<tag>`), and the package files' relative URLs resolve
against it, so both mips install every module from those URLs. GitHub itself is never contacted: the URLs are
served from this checkout, as GitHub would serve them from the repository.

- mpremote's mip (host side: `mpremote mip install github:...`), in process, with urlopen and the board transport
  replaced by fakes that record what was asked and written;
- MicroPython's own mip (frozen in the unix port: `mip.install("github:...")` on a board), with its `requests`
  module replaced by one that serves raw.githubusercontent.com URLs from this checkout, then the installed copy
  imported.
"""

import io
import json
import re

import pytest

from conftest import REPO

OWNER, NAME = "some-owner", "some-repo"  # any GitHub path: the README says where the real one comes from
RAW = "https://raw.githubusercontent.com/%s/%s/%%s/" % (OWNER, NAME)
LIB = REPO / "lib" / "microredis"
README = (REPO / "README.md").read_text(encoding="utf-8")


def _modules(package_file):
    with open(REPO / package_file, encoding="utf-8") as f:
        return sorted(t.split("/")[1] for t, _ in json.load(f)["urls"])


def test_readme_names_the_github_form_and_where_the_name_comes_from():
    assert "mpremote mip install github:<owner>/<repo>/package.json" in README
    assert "mpremote mip install github:<owner>/<repo>/package-pubsub.json" in README
    assert 'mip.install("github:<owner>/<repo>/package.json")' in README
    assert "git remote get-url origin" in README and "https://github.com/<owner>/<repo>" in README
    assert "https://raw.githubusercontent.com/<owner>/<repo>/HEAD/package.json" in README


def test_mpremote_rewrites_github_urls():
    from mpremote import mip

    url = "github:%s/%s/package.json" % (OWNER, NAME)
    assert mip._rewrite_url(url) == RAW % "HEAD" + "package.json"
    assert mip._rewrite_url(url, "v0.1.0") == RAW % "v0.1.0" + "package.json"


class _Transport:
    """The board side of mpremote's mip: a dict of written files."""

    def __init__(self):
        self.files = {}
        self.dirs = set()

    def fs_exists(self, p):
        return p in self.dirs or p in self.files

    def fs_mkdir(self, p):
        self.dirs.add(p)

    def fs_writefile(self, p, data, progress_callback=None):
        self.files[p] = bytes(data)


@pytest.mark.parametrize("branch", [None, "v0.1.0"])
def test_mpremote_mip_installs_from_github_urls(monkeypatch, branch):
    from mpremote import mip

    asked = []

    def urlopen(url):
        asked.append(url)
        prefix = RAW % (branch or "HEAD")
        assert url.startswith(prefix), url
        return io.BytesIO((REPO / url[len(prefix):]).read_bytes())

    monkeypatch.setattr(mip.urllib.request, "urlopen", urlopen)
    t = _Transport()
    for name in ("package.json", "package-pubsub.json"):
        mip._install_package(t, "github:%s/%s/%s" % (OWNER, NAME, name), "unused-index", "lib", branch, False)
    assert asked[0] == RAW % (branch or "HEAD") + "package.json"
    assert sorted(t.files) == sorted("lib/microredis/" + m for n in ("package.json", "package-pubsub.json")
                                     for m in _modules(n))
    for path, data in t.files.items():
        assert data == (REPO / path).read_bytes(), path


FAKE_REQUESTS = '''
import io, json
ROOT = %(root)r
PREFIX = %(prefix)r


class Response:
    def __init__(self, data, status):
        self.status_code = status
        self.raw = io.BytesIO(data)
        self._data = data

    def json(self):
        return json.loads(self._data)

    def close(self):
        pass


def get(url, **kw):
    print("GET", url)
    if not url.startswith(PREFIX):
        return Response(b"", 404)
    try:
        with open(ROOT + "/" + url[len(PREFIX):], "rb") as f:
            return Response(f.read(), 200)
    except OSError:
        return Response(b"", 404)
'''


def test_micropython_mip_installs_from_github_urls(micropython, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "requests.py").write_text(FAKE_REQUESTS % {"root": str(REPO), "prefix": RAW % "HEAD"})
    target = tmp_path / "lib"
    code = ("import mip, requests\n"
            "mip.requests = requests  # the fake, whichever one mip imported\n"
            "print(mip._rewrite_url('github:%(o)s/%(r)s/package.json'))\n"
            "mip.install('github:%(o)s/%(r)s/package.json', target=%(t)r)\n"
            "mip.install('github:%(o)s/%(r)s/package-pubsub.json', target=%(t)r)\n"
            % {"o": OWNER, "r": NAME, "t": str(target)})
    cp = micropython.run(["-c", code], env={"MICROPYPATH": "%s:.frozen" % fake}, timeout=60)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out
    assert out.splitlines()[0] == RAW % "HEAD" + "package.json", out
    gets = re.findall(r"^GET (\S+)$", out, re.M)
    assert gets and all(u.startswith(RAW % "HEAD") for u in gets), out
    assert sorted(p.name for p in (target / "microredis").iterdir()) == \
        sorted(_modules("package.json") + _modules("package-pubsub.json"))
    for p in (target / "microredis").iterdir():
        assert p.read_bytes() == (LIB / p.name).read_bytes(), p.name
    cp = micropython.run(["-c", "import microredis, microredis.pubsub; print('OK', microredis.__file__)"],
                         env={"MICROPYPATH": "%s:.frozen" % target}, timeout=60)
    assert cp.returncode == 0 and "OK %s" % (target / "microredis") in cp.stdout, cp.stdout + cp.stderr
