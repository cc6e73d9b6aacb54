"""Runs every tests_device/t_*.py module three ways:

(a) each test_* function under CPython, in this process (SkipTest -> pytest skip);
(b) each module under the real `micropython` binary, via tests_device/run.py;
(c) (b) again with `-X heapsize=64k` for modules that set `SMALL_HEAP = True`, with
    the library and tests_device/ precompiled to .mpy (as on a small board).

All with MICROREDIS_TEST_HOST/PORT pointing at the redis_server fixture; modules that set `CLUSTER = True` also get
MICROREDIS_CLUSTER_NODES, the redis_cluster fixture's nodes (started for them only).
"""

import importlib
import os
import subprocess
import traceback

import pytest

from conftest import REPO, cluster_env
from testkit import device_modules, frozen_small_heap, module_flag, mpy_tree, run_summary, small_heap

import tinytest  # tests_device/ is on sys.path (conftest, pyproject)

MODULES = device_modules()


def _cpython_cases():
    cases = []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:  # report it as a failing test, keep collecting the rest
            err = traceback.format_exc()
            cases.append(pytest.param(name, "<import>", err, id="%s.<import>" % name))
            continue
        for test_name, _ in tinytest.tests_of(mod):
            cases.append(pytest.param(name, test_name, None, id="%s.%s" % (name, test_name)))
    return cases


@pytest.mark.parametrize("module, test_name, import_error", _cpython_cases())
def test_cpython(module, test_name, import_error, redis_env, request, monkeypatch):
    if module_flag(module, "CLUSTER"):
        for k, v in cluster_env(request.getfixturevalue("redis_cluster")).items():
            monkeypatch.setenv(k, v)
    if import_error:
        pytest.fail("import %s failed under CPython:\n%s" % (module, import_error), pytrace=False)
    fn = getattr(importlib.import_module(module), test_name)
    try:
        fn()
    except tinytest.SkipTest as e:
        pytest.skip(str(e) or "skipped")


def _run_on_micropython(micropython, redis_server, module, small_heap=False, request=None):
    env = {"MICROREDIS_TEST_HOST": redis_server.host, "MICROREDIS_TEST_PORT": redis_server.port}
    if request is not None and module_flag(module, "CLUSTER"):
        env.update(cluster_env(request.getfixturevalue("redis_cluster")))
    if small_heap:
        # a small board runs .mpy files: compiling source needs far more RAM than running it
        args, where = ["-m", "run", module], "micropython -X heapsize=64k -m run %s (.mpy)" % module
        cp = micropython.run(args, env=env, heapsize="64k", mpy=True)
    else:
        args, where = ["tests_device/run.py", module], "micropython tests_device/run.py %s" % module
        cp = micropython.run(args, env=env)
    out = cp.stdout + cp.stderr
    found = run_summary(cp.stdout)
    if cp.returncode != 0 or not found:
        pytest.fail("%s: rc=%d\n%s" % (where, cp.returncode, out), pytrace=False)
    passed, failed, _skipped = found
    if failed or " 0 failed" not in cp.stdout:
        pytest.fail("%s: %d failed\n%s" % (where, failed, out), pytrace=False)
    if passed < 1:
        pytest.fail("%s: no test passed\n%s" % (where, out), pytrace=False)


@pytest.mark.parametrize("module", MODULES)
def test_micropython(module, micropython, redis_server, request):
    _run_on_micropython(micropython, redis_server, module, request=request)


@pytest.mark.parametrize("module", [m for m in MODULES if small_heap(m)])
def test_micropython_small_heap(module, micropython, redis_server, request):
    _run_on_micropython(micropython, redis_server, module, small_heap=True, request=request)


def test_modules_found():
    assert MODULES, "no tests_device/t_*.py modules"


@pytest.mark.parametrize("module", [m for m in MODULES if frozen_small_heap(m)])
def test_frozen_firmware_small_heap(module, redis_server, tmp_path):
    """(d) `-X heapsize=64k` on the unix port built with microredis frozen in (firmware/build.sh, run earlier in
    this session by test_firmware.py), the way a RAM-tight board runs it; tests_device/ as .mpy."""
    exe = REPO / "build" / "firmware" / "micropython-unix"
    if not exe.exists():
        pytest.skip("no frozen firmware built (make firmware; see firmware/README.md)")
    mpy_tree(tmp_path, lib=None)  # tests_device/ only: the library is frozen in
    env = dict(os.environ, MICROPYPATH="%s:.frozen" % tmp_path, MICROREDIS_TEST_HOST=redis_server.host,
               MICROREDIS_TEST_PORT=str(redis_server.port))
    cp = subprocess.run([str(exe), "-X", "heapsize=64k", "-m", "run", module], cwd=str(tmp_path), env=env,
                        capture_output=True, text=True, timeout=300)
    found = run_summary(cp.stdout)
    where = "frozen micropython -X heapsize=64k -m run %s" % module
    if cp.returncode != 0 or not found:
        pytest.fail("%s: rc=%d\n%s" % (where, cp.returncode, cp.stdout + cp.stderr), pytrace=False)
    passed, failed, _ = found
    assert failed == 0 and passed >= 1, cp.stdout
