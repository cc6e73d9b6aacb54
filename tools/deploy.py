"""`make deploy`: put microredis and a boards/ example onto a board.

    make deploy PORT=/dev/ttyACM0 BOARD=rp2_pico_w          # mpremote (MicroPython: .mpy files)
    make deploy PORT=/dev/ttyUSB0 BOARD=esp32
    make deploy BOARD=circuitpython CIRCUITPY=/media/$USER/CIRCUITPY   # plain copy onto the USB drive (.py)
    .venv/bin/python tools/deploy.py --board esp32 --port /dev/ttyUSB0 [--dry-run] [--keep-stale]

What goes onto the board (staged first in build/deploy/<board>/):

    MicroPython (esp32, rp2_pico_w, unix)      CircuitPython
    /lib/microredis/*.mpy   (make mpy)          /lib/microredis/*.py   (its .mpy format differs)
    /telemetry.mpy          (boards/common)     /telemetry.py
    /main.py                                    /code.py
    /config.py   (if boards/<board>/config.py)  /settings.toml (if boards/circuitpython/settings.toml)

Files of an earlier install that would shadow the new ones are removed from the board (MicroPython imports
x.py before x.mpy): lib/microredis/* not in the new set, and telemetry.py/.mpy of the other kind.
"""

import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LIB = os.path.join(REPO, "lib", "microredis")
sys.path.insert(0, HERE)

from testkit import Unavailable, compile_mpy as _compile_mpy, tool  # noqa: E402

BOARDS = ("esp32", "rp2_pico_w", "circuitpython", "unix")

# Runs on the board before the copy: makes lib/ (mpremote's `cp -r dir :lib/` needs it), and removes the files
# of an earlier install that would shadow the new ones
PREPARE = """import os
try:
    os.mkdir('lib')
except OSError:
    pass
"""
CLEAN = PREPARE + """
def _clean(d, keep):
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        if n not in keep and (n.endswith('.py') or n.endswith('.mpy')):
            os.remove(d + '/' + n)
            print('removed stale', d + '/' + n)
_clean('lib/microredis', %r)
for _n in %r:
    try:
        os.remove(_n)
        print('removed stale', _n)
    except OSError:
        pass
"""


def compile_mpy(src, dst, name):
    try:
        _compile_mpy(src, dst, name)
    except (Unavailable, RuntimeError) as e:
        raise SystemExit("deploy: %s" % e)


def stage(board, out):
    """Build the tree that goes onto the board; returns (out, names in lib/microredis, stale top-level names)."""
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "lib", "microredis"))
    bdir = os.path.join(REPO, "boards", board)
    sources = sorted(f for f in os.listdir(LIB) if f.endswith(".py"))
    cpy = board == "circuitpython"
    names = []
    for f in sources:
        src = os.path.join(LIB, f)
        if cpy:
            shutil.copy2(src, os.path.join(out, "lib", "microredis", f))
            names.append(f)
            continue
        name = f[:-3] + ".mpy"
        built = os.path.join(REPO, "build", "mpy", "microredis", name)
        dst = os.path.join(out, "lib", "microredis", name)
        if os.path.exists(built) and os.path.getmtime(built) >= os.path.getmtime(src):
            shutil.copy2(built, dst)  # from `make mpy`
        else:
            compile_mpy(src, dst, "microredis/" + f)
        names.append(name)
    common = os.path.join(REPO, "boards", "common", "telemetry.py")
    if cpy:
        shutil.copy2(common, os.path.join(out, "telemetry.py"))
        shutil.copy2(os.path.join(bdir, "main.py"), os.path.join(out, "code.py"))
        stale = ["telemetry.mpy"]
        settings = os.path.join(bdir, "settings.toml")
        if os.path.exists(settings):
            shutil.copy2(settings, os.path.join(out, "settings.toml"))
        else:
            print("deploy: no boards/circuitpython/settings.toml: copy settings.example.toml to it, edit it, "
                  "and deploy again (the board's own settings.toml is left as it is)")
    else:
        compile_mpy(common, os.path.join(out, "telemetry.mpy"), "telemetry.py")
        shutil.copy2(os.path.join(bdir, "main.py"), os.path.join(out, "main.py"))
        stale = ["telemetry.py"]
        config = os.path.join(bdir, "config.py")
        if os.path.exists(config):
            shutil.copy2(config, os.path.join(out, "config.py"))
        else:
            print("deploy: no boards/%s/config.py: copy config.example.py to it, edit it, and deploy again "
                  "(the board's own config.py is left as it is)" % board)
    return out, names, stale


def main(argv=None):
    ap = argparse.ArgumentParser(description="copy microredis and a boards/ example onto a board")
    ap.add_argument("--board", default="esp32", choices=BOARDS)
    ap.add_argument("--port", help="serial port for mpremote (e.g. /dev/ttyACM0)")
    ap.add_argument("--circuitpy", help="CircuitPython: the mounted CIRCUITPY drive (copied with plain file copies)")
    ap.add_argument("--keep-stale", action="store_true", help="do not remove earlier files from the board")
    ap.add_argument("--dry-run", action="store_true", help="only stage into build/deploy/<board>/")
    args = ap.parse_args(argv)

    out, names, stale = stage(args.board, os.path.join(REPO, "build", "deploy", args.board))
    top = sorted(n for n in os.listdir(out) if n != "lib")
    print("deploy: staged %s: lib/microredis/ (%d files), %s" % (os.path.relpath(out, REPO), len(names), ", ".join(top)))
    if args.dry_run:
        return 0

    if args.circuitpy:
        dest = args.circuitpy
        if not os.path.isdir(dest):
            raise SystemExit("deploy: %s is not a folder (the mounted CIRCUITPY drive)" % dest)
        libdir = os.path.join(dest, "lib", "microredis")
        if not args.keep_stale and os.path.isdir(libdir):
            for n in os.listdir(libdir):
                if n not in names and (n.endswith(".py") or n.endswith(".mpy")):
                    os.remove(os.path.join(libdir, n))
                    print("removed stale", os.path.join("lib", "microredis", n))
        for n in stale:
            if os.path.exists(os.path.join(dest, n)):
                os.remove(os.path.join(dest, n))
        shutil.copytree(out, dest, dirs_exist_ok=True)
        print("deploy: copied to %s; CircuitPython restarts code.py when the files change" % dest)
        return 0

    if not args.port:
        raise SystemExit("deploy: give PORT=/dev/ttyACM0 (mpremote), or CIRCUITPY=<drive> for CircuitPython")
    mpremote = tool("mpremote")
    if mpremote is None:
        raise SystemExit("deploy: no mpremote (run `make .venv`)")
    if args.board == "circuitpython":
        print("deploy: note: CircuitPython's drive is read-only to the board while USB has it mounted; "
              "if the copy fails, use CIRCUITPY=<mounted drive> instead of PORT")
    cmd = [mpremote, "connect", args.port, "resume"]
    cmd += ["exec", PREPARE if args.keep_stale else CLEAN % (names, stale), "+"]
    # explicit destinations: `cp -r dir :` has surprising semantics, and ":/" would be the host's / on the unix port
    cmd += ["fs", "cp", "-r", os.path.join(out, "lib", "microredis"), ":lib/"]
    for n in sorted(os.listdir(out)):
        if n != "lib":
            cmd += ["+", "fs", "cp", os.path.join(out, n), ":" + n]
    print("deploy: mpremote connect %s resume fs cp -r ... :" % args.port, flush=True)
    rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, check=False).returncode
    if rc != 0:
        print("deploy: mpremote failed (rc=%d)" % rc)
        return rc
    print("deploy: done; reset the board (or `mpremote connect %s reset`) to start main.py" % args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
