"""`make mpy` output (build/mpy/microredis/*.mpy) is complete, current, and runs the shared tests on the unix port.

The library is imported from those .mpy files (MICROPYPATH=build/mpy:tests_device), as a board that got them with
`make deploy` does; the tests themselves run from source.
"""

import subprocess

import pytest

from conftest import REPO

LIB = REPO / "lib" / "microredis"
OUT = REPO / "build" / "mpy" / "microredis"
MODULES = ["t_resp", "t_client", "t_commands", "t_pubsub"]


@pytest.fixture(scope="module")
def built():
    cp = subprocess.run(["make", "-s", "mpy"], cwd=str(REPO), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert cp.returncode == 0, "make mpy failed:\n" + cp.stdout
    return OUT


def test_make_mpy_builds_every_module(built):
    sources = sorted(p.stem for p in LIB.glob("*.py"))
    outputs = sorted(p.stem for p in built.glob("*.mpy"))
    assert outputs == sources
    for name in sources:
        mpy = built / (name + ".mpy")
        head = mpy.read_bytes()[:4]
        assert head[:2] == b"M\x06", "%s: not mpy v6 bytecode (%r)" % (mpy, head)
        assert mpy.stat().st_mtime >= (LIB / (name + ".py")).stat().st_mtime, "%s is older than its source" % mpy


RUN = """
import microredis, microredis.client
assert microredis.__file__.endswith('__init__.mpy'), microredis.__file__
assert microredis.client.__file__.endswith('client.mpy'), microredis.client.__file__
print('LIBRARY FROM', microredis.__file__)
import run
run.main()
"""


@pytest.mark.parametrize("module", [m for m in MODULES if (REPO / "tests_device" / (m + ".py")).exists()])
def test_shared_tests_from_mpy(built, module, micropython, redis_server):
    env = {
        "MICROPYPATH": ":".join([str(REPO / "build" / "mpy"), str(REPO / "tests_device"), ".frozen"]),
        "MICROREDIS_TEST_HOST": redis_server.host,
        "MICROREDIS_TEST_PORT": redis_server.port,
    }
    cp = micropython.run(["-c", RUN.replace("run.main()", "run.sys.argv[:] = ['run', %r]\nrun.main()" % module)],
                         env=env, timeout=300)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 0, out
    assert "LIBRARY FROM %s" % (OUT / "__init__.mpy") in cp.stdout, out
    assert " 0 failed" in cp.stdout and " passed" in cp.stdout, out
