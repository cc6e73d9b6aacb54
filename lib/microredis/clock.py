"""Millisecond tick clocks whose ticks_diff survives the counter's wrap (MicroPython, CircuitPython, CPython)."""

# A clock is any object with ticks_ms() and ticks_diff(new, old). Deadlines are always computed with ticks_diff,
# never by comparing raw ticks, so a counter that wraps (2**30 on MicroPython boards, 2**29 on CircuitPython) is
# harmless as long as no single wait is longer than half the period. On MicroPython the time module is the clock,
# so the classes for the other platforms (PeriodicTicks, Ticks29, MonotonicTicks) live in ticks.py and load only
# where they are used.

_default = None


def default_clock():
    """The platform's clock, chosen by what exists rather than by platform name."""
    global _default
    if _default is None:
        import time
        if hasattr(time, "ticks_diff"):
            # MicroPython: the time module itself is a clock (its period differs by port, 2**30 on boards and
            # 2**62 on unix, and ticks_diff already knows it).
            _default = time
        else:
            from .ticks import _platform
            _default = _platform(time)
    return _default


def sleep_ms(ms):
    # the backoff waits of outbox.py and retry.py (here, not in ticks.py: a board must not load a module during an
    # outage); time.sleep_ms where the port has it, else time.sleep
    import time
    s = getattr(time, "sleep_ms", None)
    if s is not None:
        s(ms)
    else:
        time.sleep(ms / 1000)


def __getattr__(name):
    # PeriodicTicks, Ticks29, MonotonicTicks (any other name fails there with AttributeError)
    from . import ticks
    return getattr(ticks, name)
