"""`make test-device-unix`: the tests_device/ suite on the MicroPython unix port, driven through mpremote exactly
like a board (socat gives `micropython -i` a pty), against a throwaway redis-server.

Suites, each in a fresh socat + micropython process (sys.exit or a crash ends the unix "board"):
  1. every t_*.py (or the modules named), from source, with the repo mounted:
       mpremote connect <pty> resume mount . exec "import sys; sys.path.insert(0, '/remote/lib'); CFG={...}" \
           run tests_device/run.py
  2. each module with `SMALL_HEAP = True` under `micropython -X heapsize=64k`, one process per module, importing
     the library and the tests from .mpy (a small board cannot compile them from source): the mpy tree is
     mounted instead.

    .venv/bin/python tools/device_unix.py [--no-small-heap] [--small-heap-only] [t_resp t_client ...]
    .venv/bin/python tools/device_unix.py --port 6379 ...      # an already running server on 127.0.0.1
Exit status 0 when every suite passed.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from testkit import RedisServer, device_modules, mpy_tree, run_summary, small_heap  # noqa: E402
from unixboard import UnixBoard, Unavailable  # noqa: E402

def run_suite(port, mods, heapsize=None, mount=None, timeout=600, host="127.0.0.1"):
    """One suite on a fresh unix board. mount: the folder to mount (default: the repo, tests from source).
    Returns (ok, output, seconds)."""
    t0 = time.monotonic()
    cfg = "CFG={'host': %r, 'port': %d, 'modules': %r}" % (host, port, list(mods))
    if mount is None:
        # the repo's lib/ first: a board may also hold an installed (older) microredis in /lib
        setup, mount = "import sys; sys.path.insert(0, '/remote/lib'); ", REPO
    else:
        setup = ""
    with UnixBoard(heapsize=heapsize) as board:
        cp = board.mpremote("mount", mount, "exec", setup + cfg, "run", os.path.join(REPO, "tests_device", "run.py"),
                            timeout=timeout, check=False, cwd=REPO)
    out = cp.stdout
    found = run_summary(out)
    ok = cp.returncode == 0 and found is not None and found[1] == 0 and found[0] > 0
    return ok, out, time.monotonic() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description="tests_device/ on the unix port through mpremote + socat")
    ap.add_argument("modules", nargs="*", help="t_* modules (default: all)")
    ap.add_argument("--port", type=int, help="use the redis-server on 127.0.0.1:PORT instead of starting one")
    ap.add_argument("--no-small-heap", action="store_true", help="skip the -X heapsize=64k suite")
    ap.add_argument("--small-heap-only", action="store_true")
    ap.add_argument("--mpy-tree", help="an existing mpy tree for the small-heap suite")
    ap.add_argument("-q", "--quiet", action="store_true", help="print suite output only on failure")
    args = ap.parse_args(argv)

    mods = args.modules or device_modules()
    small = [m for m in mods if small_heap(m)]
    server = None
    results = []
    try:
        if args.port:
            port = args.port
        else:
            server = RedisServer().start()
            port = server.port
        print("device-unix: redis-server on 127.0.0.1:%d" % port, flush=True)
        suites = []
        if not args.small_heap_only:
            suites.append(("%d modules, from source" % len(mods), mods, None, None))
        if small and not args.no_small_heap:
            # one process per module, as a small board runs them: 64 KB does not hold several modules at once
            tree = args.mpy_tree or mpy_tree(tempfile.mkdtemp(prefix="microredis-mpy-"))
            for m in small:
                suites.append(("-X heapsize=64k, .mpy: %s" % m, [m], "64k", tree))
        for title, ms, heap, mount in suites:
            print("device-unix: suite (%s) via mpremote ..." % title, flush=True)
            ok, out, secs = run_suite(port, ms, heapsize=heap, mount=mount)
            if not ok or not args.quiet:
                print(out.rstrip())
            print("device-unix: suite (%s): %s in %.1f s" % (title, "OK" if ok else "FAILED", secs), flush=True)
            results.append(ok)
    except Unavailable as e:
        print("device-unix: SKIPPED: %s" % e)
        return 0 if os.environ.get("MICROREDIS_REQUIRE_SOCAT") != "1" else 1
    finally:
        if server is not None:
            server.cleanup()
    return 0 if results and all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
