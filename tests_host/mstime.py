"""Milliseconds for the portable test clients (chaos_client, hostile_client, test_faults' portable section).

MicroPython's ticks or CPython's monotonic clock, independent of microredis's own clock, which they check."""

import time


def ms():
    if hasattr(time, "ticks_ms"):
        return time.ticks_ms()
    return int(time.monotonic() * 1000)


def since(t0):
    """Milliseconds from ms() value t0 until now (wrap-safe on MicroPython)."""
    if hasattr(time, "ticks_diff"):
        return time.ticks_diff(time.ticks_ms(), t0)
    return ms() - t0
