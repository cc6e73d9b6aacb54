# Smoke test of a firmware with microredis frozen in (firmware/test.sh runs it on the
# QEMU MPS2_AN385 board through mpremote, and on the frozen unix binary).
# Self-contained: boards without a filesystem run it with `mpremote run`.
# Prints facts about the board, then "N passed, N failed"; raises on a failure so
# that mpremote / the unix binary exits with rc 1 (it never calls sys.exit, which
# soft-resets a board).
import sys
import gc

passed = 0
failed = 0


def check(name, cond, info=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   %s%s" % (name, (": " + str(info)) if info != "" else ""))
    else:
        failed += 1
        print("FAIL %s%s" % (name, (": " + str(info)) if info != "" else ""))


impl = sys.implementation
check("sys.implementation.name", impl.name == "micropython", impl.name)
print("info sys.implementation:", impl, "platform:", sys.platform)
check("sys.implementation._mpy", getattr(impl, "_mpy", 0) & 0xFF == 6, getattr(impl, "_mpy", None))
print("info sys.path:", sys.path, "small int max: %#x" % sys.maxsize)

# Import microredis from the frozen modules only: no folder on the board or in the
# current directory may shadow it.
saved_path = sys.path[:]
sys.path[:] = [".frozen"]
for name in [n for n in sys.modules if n == "microredis" or n.startswith("microredis.")]:
    del sys.modules[name]
try:
    import microredis

    check("import microredis (frozen)", True, getattr(microredis, "__file__", "?"))
except Exception as e:  # noqa: BLE001
    microredis = None
    check("import microredis (frozen)", False, repr(e))
finally:
    sys.path[:] = saved_path

if microredis is not None:
    print("info microredis.__version__:", getattr(microredis, "__version__", "(none)"))
    # every submodule that is frozen must import; a missing one is only reported
    for sub in ("errors", "resp", "encoder", "clock", "ticks", "net", "transport", "net_mp", "net_sock",
                "tlsctx", "connection", "credentials", "url", "client", "commands", "pubsub"):
        full = "microredis." + sub
        try:
            __import__(full)
            check("import " + full, True)
        except ImportError as e:
            if sub in str(e) and "no module named" in str(e):
                print("info %s: not frozen" % full)
            else:
                check("import " + full, False, repr(e))
        except Exception as e:  # noqa: BLE001
            check("import " + full, False, repr(e))

    resp = getattr(microredis, "resp", None)
    if resp is not None and hasattr(resp, "Reader") and hasattr(microredis, "MemoryParameters"):
        try:
            r = resp.Reader(microredis.MemoryParameters(buffer_size=64, frame_capacity=4, memory_limit=4096))
            r.feed(b"$5\r\nhel")
            need = r.gets() is resp.NEED_DATA
            r.feed(b"lo\r\n:42\r\n")
            check("resp.Reader round trip", need and r.gets() == b"hello" and r.gets() == 42)
        except Exception as e:  # noqa: BLE001
            check("resp.Reader round trip", False, repr(e))

# Memory facts: the GC heap, and the tools the zero-allocation tests rely on.
try:
    import micropython
except ImportError:
    micropython = None
gc.collect()
free = gc.mem_free()
alloc = gc.mem_alloc()
print("info heap: gc.mem_free()=%d gc.mem_alloc()=%d total=%d" % (free, alloc, free + alloc))
check("gc.mem_alloc", alloc > 0, alloc)
if micropython is not None and hasattr(micropython, "heap_lock"):
    buf = None
    locked = None  # create the globals first: a new global allocates
    micropython.heap_lock()
    try:
        buf = bytearray(16)
        locked = False
    except MemoryError:
        locked = True
    micropython.heap_unlock()
    check("micropython.heap_lock blocks allocation", locked)
    if hasattr(micropython, "mem_total"):
        print("info micropython.mem_total():", micropython.mem_total())
else:
    check("micropython.heap_lock present", False)

try:
    import time

    t0 = time.ticks_ms()
    check("time.ticks_ms/ticks_diff", time.ticks_diff(time.ticks_ms(), t0) >= 0, getattr(time, "__file__", "built-in"))
except ImportError as e:
    print("info no time module:", e)

print("%d passed, %d failed" % (passed, failed))
if failed:
    raise Exception("%d failed" % failed)
