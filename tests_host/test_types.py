"""The typed API (lib/microredis/*.pyi) and the board check (issue 19): pyright runs over lib/microredis, boards/<board>/
and boards/common/ against each board's stubs (tools/typecheck.py), so a call the board does not have (os.path,
socket.create_connection, time.monotonic on MicroPython) fails here, not on the board. The stubs match the modules
they describe, and none of them ever reaches a board.

The checker and the stubs come from requirements-dev.txt and `make .venv` (tools/typecheck.py --install); without
pyright the checker tests skip, saying so. The stub/module agreement tests need only CPython.
"""

import ast
import importlib
import re
import sys
import time

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import typecheck  # noqa: E402

LIB = REPO / "lib" / "microredis"
STUBS = sorted(LIB.glob("*.pyi"))
MICROPYTHON_TARGETS = [t for t, spec in typecheck.TARGETS.items() if spec[1]]


def _checker():
    cmd = typecheck.checker()
    if cmd is None:
        pytest.skip("pyright is not installed (requirements-dev.txt pins it; `make .venv` installs it)")
    return cmd


def _stubs_of(target):
    assert typecheck.installed(target), (
        "the %s stubs are missing: run `%s tools/typecheck.py --install` (make .venv does)" % (target, sys.executable))


@pytest.mark.parametrize("target", list(typecheck.TARGETS))
def test_board_code_uses_only_what_the_board_stubs_declare(target):
    cmd = _checker()
    _stubs_of(target)
    t0 = time.time()
    rc, out, _ = typecheck.check(target, cmd)
    took = time.time() - t0
    print("typecheck %s: %.1f s" % (target, took))
    assert rc == 0, "pyright against the %s stubs:\n%s" % (target, out)
    assert "0 errors" in out, out
    assert took < 60, "the %s check took %.0f s (budget: 60 s for all of them)" % (target, took)


PROBE = '''import os
import socket
import time

print(os.path.join("a", "b"))
s = socket.create_connection(("127.0.0.1", 6379))
t = time.monotonic()
'''


@pytest.mark.parametrize("target", MICROPYTHON_TARGETS)
def test_a_cpython_only_call_fails_the_check(target, tmp_path):
    # the same check, over one more file that uses three CPython-only calls: each one is reported
    cmd = _checker()
    _stubs_of(target)
    probe = typecheck.BUILD + "/probe-" + target
    import os
    os.makedirs(probe, exist_ok=True)
    with open(os.path.join(probe, "probe.py"), "w") as f:
        f.write(PROBE)
    rc, out, _ = typecheck.check(target, cmd, extra=[probe])
    assert rc != 0, out
    for line, name in ((5, "path"), (6, "create_connection"), (7, "monotonic")):
        assert re.search(r"probe\.py:%d:\d+ - error: .*\b%s\b" % (line, name), out), (name, out)
    assert out.count(" - error") == 3, out  # nothing else: the library and the board programs stay clean


def _stub_tree(path):
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _public(names):
    return {n for n in names if not n.startswith("_")}


def _stub_classes():
    # class name -> (base names, public members declared in its body), over every stub
    out = {}
    for p in STUBS:
        for node in _stub_tree(p).body:
            if isinstance(node, ast.ClassDef):
                members = set()
                for b in node.body:
                    if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        members.add(b.name)
                    elif isinstance(b, ast.AnnAssign) and isinstance(b.target, ast.Name):
                        members.add(b.target.id)
                out[node.name] = ([ast.unparse(x).split(".")[-1] for x in node.bases], members)
    return out


def _declared(cls, classes):
    # members of a stub class with those of its stub bases
    bases, members = classes.get(cls, ((), set()))
    members = set(members)
    for b in bases:
        members |= _declared(b, classes)
    return members


@pytest.mark.parametrize("stub", [p.stem for p in STUBS])
def test_every_stub_name_exists_in_its_module(stub):
    mod = importlib.import_module("microredis" if stub == "__init__" else "microredis." + stub)
    tree = _stub_tree(LIB / (stub + ".pyi"))
    for node in tree.body:
        names = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names = [node.target.id]
        elif isinstance(node, ast.ImportFrom) and stub == "__init__":
            names = [a.asname for a in node.names if a.asname]
        for n in _public(names):
            if n in ("Arg", "Key", "Reply", "Clock"):  # type aliases and protocols: stub-only
                continue
            assert hasattr(mod, n), "%s.pyi declares %s, which microredis.%s lacks" % (stub, n, stub)
        if isinstance(node, ast.ClassDef) and hasattr(mod, node.name):
            cls = getattr(mod, node.name)
            for b in node.body:
                if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) and not b.name.startswith("_"):
                    assert hasattr(cls, b.name) or _loads(cls, b.name), \
                        "%s.pyi: %s.%s is not in the module" % (stub, node.name, b.name)


def _loads(cls, name):
    # a catalogue method not loaded yet: its group's module holds it (commands.Catalogue loads it on first use)
    import microredis.commands as c
    g = c._group(name) if isinstance(cls, type) and issubclass(cls, c.Catalogue) else None
    return g is not None and any(hasattr(getattr(importlib.import_module("microredis." + g[0]), k), name)
                                 for k in g[1])


@pytest.mark.parametrize("stub", [p.stem for p in STUBS if p.stem != "__init__"])
def test_every_public_method_has_a_type(stub):
    # a method added to a module without its stub would be invisible (an error) in the editor
    mod = importlib.import_module("microredis." + stub)
    classes = _stub_classes()
    for node in _stub_tree(LIB / (stub + ".pyi")).body:
        if not isinstance(node, ast.ClassDef) or "Protocol" in [ast.unparse(b) for b in node.bases]:
            continue  # (a Protocol is a stub-only type)
        cls = getattr(mod, node.name)
        declared = _declared(node.name, classes)
        own = {n for k in cls.__mro__ if k.__module__.startswith("microredis") for n in vars(k)}
        for n in _public(own):
            if callable(getattr(cls, n, None)) and not isinstance(getattr(cls, n), type):
                assert n in declared, "microredis.%s.%s.%s has no type in %s.pyi" % (stub, node.name, n, stub)


def test_the_aio_stub_awaits_every_command():
    # aio.pyi's AsyncClient repeats the catalogue with Awaitable results: the same list as Client's Futures
    def futures(cls, want):
        out = set()
        for p in STUBS:
            for node in _stub_tree(p).body:
                if isinstance(node, ast.ClassDef) and node.name in cls:
                    for b in node.body:
                        if isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) and b.returns is not None \
                                and ast.unparse(b.returns).startswith(want) and not b.name.startswith("_"):
                            out.add(b.name)
        return out
    sync = futures(_declared_bases("Client"), "Future")
    aio = futures({"AsyncClient"}, "Awaitable")
    assert sync - {"scan_iter"} == aio, (sorted(sync - aio), sorted(aio - sync))


def _declared_bases(cls):
    classes = _stub_classes()
    out = {cls}
    for b in classes.get(cls, ((), set()))[0]:
        out |= _declared_bases(b)
    return out


@pytest.mark.parametrize("module", ["commands", "cmdargs", "strings", "keyspace", "hashes", "lists", "server", "sets",
                                    "zsets", "streams"])
def test_the_catalogue_modules_import_nothing_from_the_platform(module):
    # these two switch reportAttributeAccessIssue off (their mixins call self._cmd): sound only while they use no
    # module of the platform, whose attributes that rule checks
    tree = ast.parse((LIB / (module + ".py")).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pytest.fail("%s.py imports %s" % (module, [a.name for a in node.names]))
        if isinstance(node, ast.ImportFrom):
            if node.module == "sys":  # (commands.py: which implementation, the same attribute on every board)
                assert [a.name for a in node.names] == ["implementation"], ast.unparse(node)
                continue
            assert node.level > 0 or node.module == "micropython", "%s.py imports from %s" % (module, node.module)


def test_no_stub_reaches_a_board():
    # .mpy builds, deploy and the firmware take *.py (Makefile MPY_SRC, tools/deploy.py, manifest package());
    # the mip package files list .py files only (test_packaging checks a mip install holds exactly lib's .py)
    import mkpackages
    for name, text in mkpackages.expected().items():
        assert ".pyi" not in text and "py.typed" not in text, name
    make = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "MPY_SRC := $(wildcard lib/microredis/*.py)" in make
    assert 'f.endswith(".py")' in (REPO / "tools" / "deploy.py").read_text(encoding="utf-8")
    # and a CPython install carries them (PEP 561)
    assert '"py.typed", "*.pyi"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert (LIB / "py.typed").exists()


def test_the_library_itself_carries_no_annotation():
    # the types are the .pyi stubs' alone: lib/microredis/*.py, what a board compiles or loads, has no annotation, so
    # its .mpy files (and the RAM they take) are those of the untyped code (issue 19: the types cost a board nothing)
    found = []
    for p in sorted(LIB.glob("*.py")):
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.AnnAssign):
                found.append("%s:%d" % (p.name, n.lineno))
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = n.args
                args = a.posonlyargs + a.args + a.kwonlyargs + [x for x in (a.vararg, a.kwarg) if x is not None]
                if n.returns is not None or any(x.annotation is not None for x in args):
                    found.append("%s:%d" % (p.name, n.lineno))
    assert not found, "annotations in the library (put them in its .pyi stub): %s" % found
