"""Error texts kept off the core's heap (issue 9): the code names each error with a key, texts.py and rare.py hold
the sentences. A key with no text, or a number that means another text, would only show when the error is raised,
so the keys are checked here, read from the sources."""

import re
import sys

from conftest import REPO

LIB = REPO / "lib" / "microredis"
sys.path.insert(0, str(REPO / "lib"))

from microredis import rare, texts, parttexts  # noqa: E402

# the core's table and the optional parts' (texts.text() looks in the second when the first lacks a key)
ALL = dict(texts.TEXTS)
ALL.update(parttexts.TEXTS)


def _sources():
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(LIB.glob("*.py"))}


def test_every_text_key_has_a_text():
    used = set()
    for name, src in _sources().items():
        # text("key", ...), or (MemoryParameters) what = "key" ... text(what)
        for key in re.findall(r"\btext\(\"(\w+)\"", src) + re.findall(r"\bwhat = \"(\w+)\"", src):
            assert key in ALL, "%s.py: text(%r) has no entry in texts.TEXTS or parttexts.TEXTS" % (name, key)
            used.add(key)
    assert set(ALL) == used, "texts have keys nothing uses: %s" % sorted(set(ALL) - used)
    assert not set(texts.TEXTS) & set(parttexts.TEXTS), "a key in both tables"


def test_the_core_loads_only_the_core_texts():
    # a key of the core's modules is in texts.py, so an error of the core never loads parttexts.py
    core = ("errors", "encoder", "resp", "client", "connection", "net", "net_mp", "net_sock", "transport", "clock",
            "ticks", "url", "credentials", "tlsctx", "setopts", "rare", "bigint", "__init__")
    src = _sources()
    for name in core:
        for key in re.findall(r"\btext\(\"(\w+)\"", src[name]):
            assert key in texts.TEXTS, "%s.py: text(%r) is in parttexts.py: a core error would load it" % (name, key)


def test_every_text_formats_with_its_values():
    for name, src in _sources().items():
        for key, rest in re.findall(r"\btext\(\"(\w+)\"((?:, [^()]*(?:\([^()]*\))?[^()]*)?)\)", src):
            n = rest.count(",")  # values passed after the key (none of them holds a comma)
            t = ALL[key]
            if key == "_view":
                n = 2  # (the memoryview: texts.text() takes its item size and dimensions)
            if key == "optional":
                n = 3  # (the module: texts.text() names its package file too)
            assert t.count("%") - 2 * t.count("%%") == n, "%s.py: text(%r%s) for %r" % (name, key, rest, t)


def test_reader_error_numbers_match_rare():
    # resp.py and bigint.py name Reader._bad()'s problems with _E_ constants whose comment is the text
    # rare.py gives for that number (the two made from the reply are None there)
    seen = {}
    for name in ("resp", "bigint"):
        src = _sources()[name]
        consts = {c: (int(n), t) for c, n, t in re.findall(r"^(_E_\w+) = const\((\d+)\)  # (.+)$", src, re.M)}
        for c, (n, t) in consts.items():
            assert seen.setdefault(c, n) == n, "%s means %d in %s.py but %d elsewhere" % (c, n, name, seen[c])
            want = rare._BAD[n]
            if want is None:
                assert c in ("_E_TYPE_BYTE", "_E_NESTING"), c
            else:
                assert t.startswith(want), "%s.py: %s = %d is %r in rare._BAD" % (name, c, n, want)
        for c in re.findall(r"\._bad\((_?[A-Z]\w*),", src):
            assert c in consts, "%s.py: _bad(%s, ...) with no _E_ constant of that name in the module" % (name, c)
    assert len(rare._BAD) == 1 + len(set(seen.values()))
