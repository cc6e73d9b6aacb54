# Tiny test helpers for tests_device/ (plain MicroPython; also CPython 3.8+).
# A test module is `t_<name>.py` with functions `test_*()` taking no argument.
import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"
# Note: under CPython in the dev venv `import micropython` succeeds (an
# Adafruit-Blinka stub), so detect the platform with IS_MICROPYTHON.


# One millisecond clock for every test: now_ms(), since(t0) = ms elapsed since t0 = now_ms() (wrap-safe),
# sleep_ms(n). MicroPython's own functions (nothing to load); CPython and CircuitPython: time.monotonic().
try:
    from time import ticks_ms as now_ms, ticks_diff, sleep_ms
except ImportError:
    import time as _time

    def now_ms():
        return int(_time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def sleep_ms(n):
        _time.sleep(n / 1000)


def since(t0):
    return ticks_diff(now_ms(), t0)


class SkipTest(Exception):
    pass


def skip(reason=""):
    raise SkipTest(reason)


def eq(a, b, msg=""):
    if not (a == b):
        raise AssertionError("%r != %r%s" % (a, b, (": " + msg) if msg else ""))


def ok(cond, msg=""):
    if not cond:
        raise AssertionError(msg or "condition is false")


def raises(exc_type, fn, *args, **kw):
    """Call fn(*args, **kw); return the exc_type instance it raised, else fail."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    name = getattr(exc_type, "__name__", repr(exc_type))
    raise AssertionError("%s not raised by %s" % (name, getattr(fn, "__name__", repr(fn))))


def allocs(fn):
    """Bytes allocated by fn() (no arguments: f(*a) allocates itself).

    On MicroPython: runs fn() once with gc disabled and the heap locked and
    returns the gc.mem_alloc() delta; an allocation under the lock fails the test
    (AssertionError). Warm fn up before. On CPython: runs fn(), returns None.
    """
    if not IS_MICROPYTHON:
        fn()
        return None
    import gc
    import micropython

    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        micropython.heap_lock()
        try:
            fn()
        except MemoryError as e:
            micropython.heap_unlock()
            sys.print_exception(e)  # shows the line that allocated
            raise AssertionError("allocated while the heap was locked")
        micropython.heap_unlock()
        return gc.mem_alloc() - before
    finally:
        gc.enable()


def _names_in_source(path):
    names = []
    try:
        f = open(path)
    except OSError:
        return names
    try:
        for line in f:
            if line.startswith("def test_"):
                names.append(line[4:].split("(")[0].strip())
    finally:
        f.close()
    return names


def tests_of(module):
    """[(name, fn)] of the module's callable test_* attributes, in source order
    when the source can be read (else sorted by name)."""
    found = {}
    for name in dir(module):
        if name.startswith("test_"):
            obj = getattr(module, name)
            if callable(obj):
                found[name] = obj
    order = []
    path = getattr(module, "__file__", None)
    if path and path.endswith(".py"):
        for name in _names_in_source(path):
            if name in found and name not in order:
                order.append(name)
    for name in sorted(found):
        if name not in order:
            order.append(name)
    return [(name, found[name]) for name in order]
