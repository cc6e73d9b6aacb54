"""Checks with pyright that lib/microredis and boards/ use only what each board's stubs declare; installs the stubs.

    .venv/bin/python tools/typecheck.py --install   the pinned stubs into .venv/stubs/<target>/ (make .venv does it)
    .venv/bin/python tools/typecheck.py [TARGET ...] check (all targets by default); exit 1 on any error

A target is a kind of board: its stubs (one folder each, since every MicroPython port's stubs install the same
module names), and the files that run there: the library, the board's main.py and boards/common/. The MicroPython
stub packages carry their own reduced stdlib (micropython-stdlib-stubs), used as pyright's typeshed, so `os.path`,
`socket.create_connection` or `time.monotonic` fail the check. circuitpython-stubs ship no stdlib: on that target
the stdlib is CPython's (pyright's own typeshed) and only CircuitPython's own modules (wifi, socketpool,
supervisor, microcontroller ...) are checked against the board.

Deliberate platform branches (hasattr/getattr/try-import) carry `# pyright: ignore[rule]` on their line, with the
platform they are for. The rules that are off concern the library's own typing (attributes that start as None and
are set on connect, tuple slots), not what a board offers; see RULES.

Plain CPython, no pytest: tests_host/test_types.py runs it. The .pyi stubs next to lib/microredis/*.py give the
public API its types (for editors and this check); nothing here is ever installed on a board.
"""

import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
STUBS = os.path.join(sys.prefix, "stubs")  # the venv that runs this: .venv/stubs/<target>/
BUILD = os.path.join(REPO, "build", "types")

MP_STDLIB = "micropython-stdlib-stubs==1.29.0.post2"
# target -> (stub requirements, their stdlib is pyright's typeshed, the board folder, the config template)
TARGETS = {
    "esp32": (["micropython-esp32-stubs==1.29.0.post1", MP_STDLIB], True, "esp32", "config.example.py"),
    # micropython-rp2-stubs is RPI_PICO_W's module set too (network, the same socket): identical files
    "rp2_pico_w": (["micropython-rp2-stubs==1.29.0.post1", MP_STDLIB], True, "rp2_pico_w", "config.example.py"),
    "unix": (["micropython-unix-stubs==1.29.0.post1", MP_STDLIB], True, "unix", "config.example.py"),
    "circuitpython": (["circuitpython-stubs==10.3.1"], False, "circuitpython", None),
}
# modules that never run on a target: open_transport() takes net_mp.py for sockets with readinto (MicroPython's)
# and net_sock.py for the others (CircuitPython's socketpool, CPython's socket)
NEVER_ON = {"circuitpython": ["net_mp.py"]}

# basic mode, less the rules about the library's own typing: a slot that starts as None and is set on connect, a
# tuple reused as a record, a method replaced on an instance. What a board lacks (a module, an attribute, a
# signature, a builtin) stays an error: reportMissingImports, reportAttributeAccessIssue, reportCallIssue,
# reportArgumentType, reportUndefinedVariable.
RULES = {
    "reportMissingModuleSource": "none",  # the board's modules are stubs only
    "reportOptionalMemberAccess": "none",
    "reportOptionalSubscript": "none",
    "reportOptionalCall": "none",
    "reportOptionalIterable": "none",
    "reportOptionalOperand": "none",
    "reportAssignmentType": "none",
    "reportIndexIssue": "none",
    "reportRedeclaration": "none",
    "reportGeneralTypeIssues": "none",
    "reportOperatorIssue": "none",
}


def stub_dir(target):
    return os.path.join(STUBS, target)


def _stamp(target):
    return os.path.join(stub_dir(target), ".installed")


def installed(target):
    """The pinned stubs of target are in place (the stamp names exactly the current pins)."""
    try:
        with open(_stamp(target), encoding="utf-8") as f:
            return f.read().split() == TARGETS[target][0]
    except OSError:
        return False


def install(targets):
    for t in targets:
        if installed(t):
            continue
        d = stub_dir(t)
        shutil.rmtree(d, ignore_errors=True)
        print("typecheck: installing %s into %s" % (" ".join(TARGETS[t][0]), d))
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-input", "-q", "--no-deps",
                               "--target", d] + TARGETS[t][0])
        with open(_stamp(t), "w", encoding="utf-8") as f:
            f.write(" ".join(TARGETS[t][0]))


def checker():
    """The pyright command, or None where it is not installed (requirements-dev.txt pins it)."""
    try:
        import pyright  # noqa: F401  (the PyPI wrapper; it runs the bundled pyright with node)
    except ImportError:
        return None
    return [sys.executable, "-m", "pyright"]


def write_config(target, extra=()):
    """build/types/<target>/pyrightconfig.json (pyright takes only relative include paths) and its config.py."""
    reqs, mp_stdlib, board, template = TARGETS[target]
    out = os.path.join(BUILD, target)
    os.makedirs(out, exist_ok=True)

    def rel(*p):
        return os.path.relpath(os.path.join(*p), out)

    cfg = {
        "include": [rel(REPO, "lib", "microredis"), rel(REPO, "boards", board), rel(REPO, "boards", "common")]
        + [rel(x) for x in extra],
        # config.py: the user's copy (its template stands in for it)
        "exclude": [rel(REPO, "boards", board, "config.py")] + [rel(REPO, "lib", "microredis", m)
                                                                  for m in NEVER_ON.get(target, ())],
        "stubPath": rel(stub_dir(target)),
        "extraPaths": [rel(REPO, "lib"), rel(REPO, "boards", "common")],
        "pythonVersion": "3.8",
        "typeCheckingMode": "basic",
    }
    if mp_stdlib:
        cfg["typeshedPath"] = rel(stub_dir(target))
    cfg.update(RULES)
    with open(os.path.join(out, "pyrightconfig.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2)
    # `import config` in main.py: the template, found next to pyrightconfig.json (the execution root)
    cfgpy = os.path.join(out, "config.py")
    if template:
        shutil.copyfile(os.path.join(REPO, "boards", board, template), cfgpy)
    elif os.path.exists(cfgpy):
        os.remove(cfgpy)
    return out


def check(target, cmd=None, extra=()):
    """(returncode, output, seconds) of pyright over target's files (and the paths in extra) against its stubs."""
    cmd = cmd or checker()
    out = write_config(target, extra)
    t0 = time.time()
    # --pythonpath: no interpreter's site-packages (the venv's Adafruit-Blinka has CPython modules named like the
    # board's: micropython, board, microcontroller); pyright finds only the stubs and the repo
    cp = subprocess.run(cmd + ["-p", os.path.join(out, "pyrightconfig.json"), "--pythonpath",
                               os.path.join(out, "no-python")],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, cwd=out,
                        env=dict(os.environ, PYRIGHT_PYTHON_IGNORE_WARNINGS="1"))  # no look-up of a newer pyright
    return cp.returncode, cp.stdout, time.time() - t0


def main(argv):
    if "--install" in argv:
        install([a for a in argv if a in TARGETS] or list(TARGETS))
        return 0
    targets = [a for a in argv if not a.startswith("-")] or list(TARGETS)
    cmd = checker()
    if cmd is None:
        print("typecheck: pyright is not installed (make .venv installs requirements-dev.txt)")
        return 2
    rc = 0
    for t in targets:
        if not installed(t):
            print("typecheck: the %s stubs are missing: run `%s tools/typecheck.py --install`" % (t, sys.executable))
            return 2
        code, text, secs = check(t, cmd)
        print("== %s (%.1f s)\n%s" % (t, secs, text.rstrip()))
        rc = rc or code
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
