"""docs/DESIGN.md describes the code as it is: every identifier it names in backticks (outside code blocks and the
section on the test harness) exists in lib/microredis, and a private name given as `module._name` is in that
module."""

import builtins
import io
import keyword
import re
import sys
import tokenize

from conftest import REPO

LIB = REPO / "lib" / "microredis"
DOC = REPO / "docs" / "DESIGN.md"

_STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"sys", "time", "select", "socket", "ssl", "micropython",
                                                           "supervisor", "socketpool", "wifi", "machine"}


def _lib_names():
    # every NAME token of every module (code only: comments and strings do not count), by module
    out = {}
    for p in sorted(LIB.glob("*.py")):
        names = set()
        for t in tokenize.generate_tokens(io.StringIO(p.read_text(encoding="utf-8")).readline):
            if t.type == tokenize.NAME:
                names.add(t.string)
        out[p.stem] = names
    return out


def stale_names(text, by_module):
    """(span, name) for each identifier in an inline code span of `text` that the library does not define."""
    every = set(by_module).union(*by_module.values())
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks show usage and carry prose comments
    text = text.split("\n## Tests", 1)[0]  # that section is about the test harness (fixtures, runner, env)
    out = []
    for span in re.findall(r"`([^`\n]+)`", text):
        if "/" in span or "*" in span or span.endswith(".json"):
            continue  # paths, globs, package files
        for m in re.finditer(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", span):
            parts = m.group(0).split(".")
            if parts[0] in ("mr", "microredis") and len(parts) > 1:
                parts = parts[1:]  # the package (README's `import microredis as mr`): its names are the modules'
            head = parts[0]
            if parts[-1] in ("py", "md", "json", "mpy") or head in _STDLIB or keyword.iskeyword(head) or \
                    hasattr(builtins, head) or (head.isupper() and "_" not in head and len(parts) == 1):
                continue  # file names, the standard library, Python itself, Redis command names (SET, +OK)
            if any(p not in every for p in parts):
                out.append((span, m.group(0)))
            elif len(parts) == 2 and head in by_module and parts[1].startswith("_") and \
                    parts[1] not in by_module[head]:
                out.append((span, m.group(0)))  # `resp._emit`: a private function said to live in resp.py
    return out


def test_design_doc_names_only_what_exists():
    stale = stale_names(DOC.read_text(encoding="utf-8"), _lib_names())
    assert not stale, "docs/DESIGN.md names what lib/microredis does not define: %s" % stale


def test_the_check_sees_stale_names():
    # names that existed once: a removed class, a renamed attribute, a helper said to live in the wrong module
    names = _lib_names()
    doc = ("`Sender` (CoreClient's base); slots `_nm`/`_key`; `client._emit`, `resp._emit`, `Reader.gets()`.\n"
           "```\nr._gone  # fenced code is not checked\n```\n## Tests\n`redis_server` fixture\n")
    assert stale_names(doc, names) == [("Sender", "Sender"), ("_nm", "_nm"), ("resp._emit", "resp._emit")]
