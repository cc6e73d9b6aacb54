"""Error texts kept off the core's heap (issue 9): the code names each error with a key, texts.py and rare.py hold
the sentences. A key with no text, or a number that means another text, would only show when the error is raised,
so the keys are checked here, read from the sources."""

import re
import sys

from conftest import REPO

LIB = REPO / "lib" / "microredis"
sys.path.insert(0, str(REPO / "lib"))

from microredis import rare, texts  # noqa: E402


def _sources():
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(LIB.glob("*.py"))}


def test_every_text_key_has_a_text():
    used = set()
    for name, src in _sources().items():
        # text("key", ...), or (MemoryParameters) what = "key" ... text(what)
        for key in re.findall(r"\btext\(\"(\w+)\"", src) + re.findall(r"\bwhat = \"(\w+)\"", src):
            assert key in texts.TEXTS, "%s.py: text(%r) has no entry in texts.TEXTS" % (name, key)
            used.add(key)
    assert set(texts.TEXTS) == used, "texts.TEXTS has keys nothing uses: %s" % sorted(set(texts.TEXTS) - used)


def test_every_text_formats_with_its_values():
    for name, src in _sources().items():
        for key, rest in re.findall(r"\btext\(\"(\w+)\"((?:, [^()]*(?:\([^()]*\))?[^()]*)?)\)", src):
            n = rest.count(",")  # values passed after the key (none of them holds a comma)
            t = texts.TEXTS[key]
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
