"""Tick clocks for platforms whose time module has no ticks_diff (CircuitPython, CPython); see clock.py."""

# A clock is any object with ticks_ms() and ticks_diff(new, old). Deadlines are
# always computed with ticks_diff, never by comparing raw ticks, so a counter that
# wraps (2**30 on MicroPython boards, 2**29 on CircuitPython) is harmless as long as
# no single wait is longer than half the period.


class PeriodicTicks:
    """ticks_ms()/ticks_diff()/ticks_add() for a raw tick source that wraps at `period`.

    ticks_diff returns a signed int in [-period/2, period/2). Every intermediate value
    stays inside (-period, period), so for period <= 2**30 nothing leaves the small-int
    range of a 32-bit MicroPython/CircuitPython build and nothing is allocated.
    """

    def __init__(self, ticks_fn, period=1 << 29):
        self._fn = ticks_fn
        self.period = period
        self._half = period >> 1

    def ticks_ms(self):
        # The source already wraps; the modulo only normalises a source that does not.
        return self._fn() % self.period

    def ticks_add(self, ticks, delta):
        return (ticks + delta) % self.period

    def ticks_diff(self, new, old):
        d = (new - old) % self.period   # [0, period): floor modulo, also on MicroPython
        if d >= self._half:
            d -= self.period
        return d


# DESIGN.md calls the CircuitPython clock Ticks29; it is the same arithmetic.
Ticks29 = PeriodicTicks


class MonotonicTicks:
    """CPython: a monotonic millisecond counter that never wraps, so plain subtraction."""

    def __init__(self, ns_fn):
        self._ns = ns_fn

    def ticks_ms(self):
        return self._ns() // 1000000

    def ticks_add(self, ticks, delta):
        return ticks + delta

    def ticks_diff(self, new, old):
        return new - old


def _platform(time):
    try:
        import supervisor  # pyright: ignore[reportMissingImports]  CircuitPython: ticks_ms() wraps at 2**29
        return PeriodicTicks(supervisor.ticks_ms, 1 << 29)
    except ImportError:
        return MonotonicTicks(time.monotonic_ns)
