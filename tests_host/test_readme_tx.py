"""README's "Transactions" and "Scripts" examples run as printed (the address swapped for the test server), on the
MicroPython unix port from .mpy and on CPython."""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _example(port):
    sec = README[README.index("### Transactions (opt-in"):README.index("### Client-side cache")]
    blocks = re.findall(r"```python\n(.*?)```", sec, re.S)
    assert len(blocks) == 2, "README: one example in Transactions, one in Scripts"
    code = "\n".join(blocks)
    assert '("192.168.1.10", 6379)' in code
    code = code.replace('("192.168.1.10", 6379)', '("127.0.0.1", %d)' % port)
    return code + "\nc.delete(b'cfg:board-1', b'boots:board-1', b'stock', b'counter').wait()\nprint('README OK')\n"


@pytest.mark.parametrize("interp", ["micropython", "cpython"])
def test_readme_transaction_and_script_examples_run(redis_server, micropython, interp):
    code = _example(redis_server.port)
    if interp == "micropython":
        cp = micropython.run(["-c", code], mpy=True)
    else:
        env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
        cp = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    out = cp.stdout + (cp.stderr or "")
    assert cp.returncode == 0 and "README OK" in out, out
    assert re.search(r"^1 \{b'interval': b'10'\}$", out, re.M), out  # the printed values the README shows
    assert re.search(r"^5$", out, re.M), out
