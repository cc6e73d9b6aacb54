"""`make deploy`: put microredis and a boards/ example onto a board.

    make deploy PORT=/dev/ttyACM0 BOARD=rp2_pico_w          # mpremote (MicroPython: .mpy files)
    make deploy PORT=/dev/ttyUSB0 BOARD=esp32
    make deploy BOARD=circuitpython CIRCUITPY=/media/$USER/CIRCUITPY   # plain copy onto the USB drive (.py)
    .venv/bin/python tools/deploy.py --board esp32 --port /dev/ttyUSB0 [--dry-run] [--keep-stale]
    .venv/bin/python tools/deploy.py --check --port /dev/ttyUSB0     # lists .py files that shadow .mpy ones

What goes onto the board (staged first in build/deploy/<board>/):

    MicroPython (esp32, rp2_pico_w, unix)      CircuitPython
    /lib/microredis/*.mpy   (make mpy)          /lib/microredis/*.py   (its .mpy format differs)
    /telemetry.mpy          (boards/common)     /telemetry.py
    /main.py                                    /code.py
    /config.py   (if boards/<board>/config.py)  /settings.toml (if boards/circuitpython/settings.toml)

Files of an earlier install that would shadow the new ones are removed from the board (MicroPython imports
x.py before x.mpy): lib/microredis/* not in the new set (the .py files a `mip install` left, too), and
telemetry.py/.mpy of the other kind. A `mip install` after `make deploy` puts .py files next to the .mpy ones, and
they shadow them silently (more RAM to compile, and the code of whichever version mip fetched): `make deploy`
copies every package already; `--check` lists such twins, and deploying again removes them.

The unix "board" (`make board`) ends when it is reset: start main.py there with
`mpremote connect PORT resume exec "import main"`.
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
            if n.endswith('.py') and n[:-3] + '.mpy' in keep:
                print('removed stale', d + '/' + n, '(it would shadow the new .mpy)')
            else:
                print('removed stale', d + '/' + n)
_clean('lib/microredis', %r)
for _n in %r:
    try:
        os.remove(_n)
        print('removed stale', _n)
    except OSError:
        pass
"""


# Runs on the board for --check: the .py files that shadow a .mpy of the same name (MicroPython imports x.py first)
TWINS = """import os
def _twins(d):
    try:
        names = os.listdir(d)
    except OSError:
        return
    for n in names:
        if n.endswith('.py') and n[:-3] + '.mpy' in names:
            print('TWIN', (d + '/' if d else '') + n)
_twins('lib/microredis')
_twins('')
print('TWINS-DONE')
"""


def check_twins(mpremote, port):
    """Lists the board's .py files that shadow a .mpy (a mip install after make deploy leaves them); 1 if any."""
    cp = subprocess.run([mpremote, "connect", port, "resume", "exec", TWINS], stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if cp.returncode != 0 or "TWINS-DONE" not in cp.stdout:
        print(cp.stdout)
        print("deploy: mpremote failed (rc=%d)" % cp.returncode)
        return 2
    twins = [ln.split(" ", 1)[1].strip() for ln in cp.stdout.splitlines() if ln.startswith("TWIN ")]
    for t in twins:
        print("deploy: %s shadows %s (MicroPython imports x.py before x.mpy)" % (t, t[:-3] + ".mpy"))
    if twins:
        print("deploy: %d .py file(s) shadow .mpy ones (a mip install after make deploy leaves them): run make deploy "
              "again, which removes them, or `mpremote connect %s rm <file>`" % (len(twins), port))
        return 1
    print("deploy: no .py file shadows a .mpy on %s" % port)
    return 0


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
    ap.add_argument("--check", action="store_true",
                    help="copy nothing: list the board's .py files that shadow .mpy ones (exit 1 if any)")
    args = ap.parse_args(argv)
    if args.check:
        if not args.port:
            raise SystemExit("deploy: --check needs --port (the board's serial port)")
        mpremote = tool("mpremote")
        if mpremote is None:
            raise SystemExit("deploy: no mpremote (run `make .venv`)")
        return check_twins(mpremote, args.port)

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
    if args.board == "unix":
        # a reset ends the unix port's process (the "board" of `make board`): run main.py in it instead
        print("deploy: done; start main.py: %s connect %s resume exec \"import main\" (on the unix board a reset "
              "would end its process; its settings: boards/unix/config.py, or the board's environment, e.g. "
              "tools/unixboard.py --env REDIS_PORT=6379)" % (os.path.relpath(mpremote, REPO), args.port))
    else:
        print("deploy: done; reset the board (or `mpremote connect %s reset`) to start main.py" % args.port)
    print("deploy: every package is on the board now, as .mpy: a later `mip install` would add .py files that "
          "shadow them (MicroPython imports x.py first); deploy again to remove them (--check lists them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
