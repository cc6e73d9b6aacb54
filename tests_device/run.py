# Plain test runner for tests_device/ (MicroPython; also CPython 3.8+).
#
#   micropython tests_device/run.py                 # every t_*.py beside this file
#   micropython tests_device/run.py t_resp t_encoder
#   micropython tests_device/run.py t_resp.test_bulk  # one test
#   mpremote ... exec "CFG={'modules': ['t_resp'], 'port': 6379}" run tests_device/run.py
#
# Ends with a line "N passed, N failed" (", N skipped" when any). It never calls
# sys.exit (that soft-resets a board): on a failure it raises Exception("N failed")
# last, so the process / mpremote exits with rc 1.
import sys
import os

try:
    import gc
except ImportError:  # pragma: no cover
    gc = None

_IS_MP = sys.implementation.name == "micropython"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _dirname(path):
    i = path.rfind("/")
    return path[:i] if i > 0 else ("/" if i == 0 else "")


def _join(a, b):
    if not a:
        return b
    return a + b if a.endswith("/") else a + "/" + b


def _print_exc(e):
    if hasattr(sys, "print_exception"):
        sys.print_exception(e)
    else:
        import traceback

        traceback.print_exception(type(e), e, e.__traceback__, file=sys.stdout)


def _find_dir(cfg, file_hint):
    d = cfg.get("dir")
    if d:
        return d
    if file_hint and not file_hint.startswith("<"):  # "<stdin>" under mpremote run
        return _dirname(file_hint)
    if _exists("tests_device/tinytest.py"):  # mpremote mount of the repo
        return "tests_device"
    return ""


def _setup_path(d):
    # relative sys.path entries fail on some VFS setups (mpremote mount): go absolute
    if d and not d.startswith("/") and hasattr(os, "getcwd"):
        d = _join(os.getcwd(), d)
    if d not in sys.path:
        sys.path.insert(0, d)
    # the repo's lib/ beside tests_device/ (unix port, mpremote mount); on a
    # board the library is in /lib, already on sys.path
    lib = _join(_dirname(d) if d else "..", "lib")
    if lib not in sys.path and _exists(_join(lib, "microredis")):
        sys.path.append(lib)
    return d


def _module_names(d):
    names = []
    for f in os.listdir(d or "."):
        if f.startswith("t_"):
            for ext in (".py", ".mpy"):
                if f.endswith(ext):
                    n = f[: -len(ext)]
                    if n not in names:
                        names.append(n)
    names.sort()
    return names


def _split(arg):
    """'tests_device/t_x.py' -> ('t_x', None); 't_x.test_y' -> ('t_x', 'test_y')."""
    arg = arg[arg.rfind("/") + 1 :]
    for ext in (".py", ".mpy"):
        if arg.endswith(ext):
            arg = arg[: -len(ext)]
    i = arg.find(".")
    if i > 0:
        return arg[:i], arg[i + 1 :]
    return arg, None


def run(targets=None, cfg=None, file_hint=None):
    """Run the targets (module names, or 'module.test_name'); return (passed, failed, skipped)."""
    cfg = cfg or {}
    d = _setup_path(_find_dir(cfg, file_hint))
    import tinytest
    import cfg as cfgmod

    if cfg:
        cfgmod.CFG = cfg
        try:
            import builtins

            builtins.CFG = cfg
        except (ImportError, AttributeError, TypeError):
            pass

    if not targets:
        targets = cfg.get("modules") or _module_names(d)
    passed = failed = skipped = 0
    for target in targets:
        modname, only = _split(target)
        try:
            __import__(modname)
            mod = sys.modules[modname]
        except Exception as e:
            failed += 1
            print("FAIL %s (import): %s: %s" % (modname, type(e).__name__, e))
            _print_exc(e)
            continue
        for name, fn in tinytest.tests_of(mod):
            if only and name != only:
                continue
            full = modname + "." + name
            t0 = tinytest.now_ms()
            try:
                fn()
            except tinytest.SkipTest as e:
                skipped += 1
                print("SKIP %s: %s" % (full, e))
            except Exception as e:
                failed += 1
                print("FAIL %s: %s: %s" % (full, type(e).__name__, e))
                _print_exc(e)
            else:
                passed += 1
                print("ok   %s (%d ms)" % (full, tinytest.since(t0)))
            if gc:
                gc.collect()
        # free the module: boards have little RAM
        mod = None
        try:
            del sys.modules[modname]
        except KeyError:
            pass
        if gc:
            gc.collect()
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return passed, failed, skipped


def main():
    g = globals()
    cfg = g.get("CFG") or {}  # set by `mpremote exec "CFG={...}"` before `run`
    argv = getattr(sys, "argv", None) or []  # [] under mpremote
    targets = [a for a in argv[1:] if a]
    passed, failed, skipped = run(targets, cfg, g.get("__file__"))
    if failed:
        raise Exception("%d failed" % failed)
    if not (passed or skipped):
        raise Exception("no tests ran")


if __name__ == "__main__":
    main()
