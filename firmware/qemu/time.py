# A `time` module for the QEMU MPS2_AN385 test board, frozen by firmware/manifest_qemu.py.
# MicroPython's qemu port has no `time` module (MICROPY_PY_TIME=0); this one reads the
# CMSDK APB Timer0 (0x40000000, 25 MHz, down-counter) through machine.mem32. It is a test
# aid only: it never goes onto a real board, whose firmware has a native `time`.
#
# ticks_ms/ticks_us wrap at 2**30 like on boards, and nothing here allocates (every value
# stays a small int), so zero-allocation tests can call it under micropython.heap_lock().
# The counter reloads every 2**30 cycles (about 43 s): call a ticks function at least that
# often, or the elapsed time of a longer silence is undercounted.
import machine
from micropython import const

_TIMER = const(0x40000000)  # CTRL, VALUE at +4, RELOAD at +8
_PERIOD = const(0x3FFFFFFF)  # reload value; the counter period is 2**30 cycles
_MASK = const(0x3FFFFFFF)  # ticks period 2**30
_HALF = const(0x20000000)
_CYC_MS = const(25000)  # 25 MHz
_CYC_US = const(25)

_mem = machine.mem32
if not (_mem[_TIMER] & 1):
    _mem[_TIMER + 8] = _PERIOD
    _mem[_TIMER + 4] = _PERIOD
    _mem[_TIMER] = 1

_last = _mem[_TIMER + 4]
_ms = 0
_ms_rem = 0
_us = 0
_us_rem = 0


def _poll():
    global _last, _ms, _ms_rem, _us, _us_rem
    v = _mem[_TIMER + 4]
    d = (_last - v) & _MASK
    _last = v
    _ms_rem += d % _CYC_MS
    _ms = (_ms + d // _CYC_MS) & _MASK
    if _ms_rem >= _CYC_MS:
        _ms_rem -= _CYC_MS
        _ms = (_ms + 1) & _MASK
    _us_rem += d % _CYC_US
    _us = (_us + d // _CYC_US) & _MASK
    if _us_rem >= _CYC_US:
        _us_rem -= _CYC_US
        _us = (_us + 1) & _MASK


def ticks_ms():
    _poll()
    return _ms


def ticks_us():
    _poll()
    return _us


def ticks_cpu():
    return _mem[_TIMER + 4]


def ticks_add(t, delta):
    return (t + delta) & _MASK


def ticks_diff(new, old):
    return ((new - old + _HALF) & _MASK) - _HALF


def sleep_ms(n):
    t0 = ticks_ms()
    while ticks_diff(ticks_ms(), t0) < n:
        pass


def sleep_us(n):
    t0 = ticks_us()
    while ticks_diff(ticks_us(), t0) < n:
        pass


def sleep(s):
    sleep_ms(int(s * 1000))


def time():
    # seconds since the board started (there is no RTC)
    return ticks_ms() // 1000
