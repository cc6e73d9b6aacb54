"""GET into a buffer you own: get_into() copies the value there as it arrives, so polling a setting allocates
nothing (no bytes object per read: the heap does not fragment on a long-running board).

Runs on MicroPython, CircuitPython and CPython; on a board, join Wi-Fi first. REDIS_HOST / REDIS_PORT from the
environment, else the defaults below.
"""
import gc
import os

import microredis as mr

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
HOST = env("REDIS_HOST", "127.0.0.1")  # on a board: your Redis server's address
PORT = int(env("REDIS_PORT", "6379"))
KEY = b"example:setpoint"  # bytes: a str key would be encoded, that is allocated, on every call

buf = bytearray(16)  # allocated once
c = mr.ConnectionHandler((HOST, PORT)).timeout(2000).connect()
c.set(KEY, "21.5").wait()


def poll(times):
    n = 0
    for _ in range(times):
        n = c.get_into(KEY, buf).wait()  # the length, or None for a missing key
    return n


n = poll(1)  # the first call of a kind sets things up; from then on nothing is allocated
print("setpoint:", float(buf[:n]))
if hasattr(gc, "mem_alloc"):  # MicroPython: measure it (a collection must not run in between)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    poll(100)
    print("100 reads allocated %d bytes" % (gc.mem_alloc() - before))
    gc.enable()
c.set(KEY, "x" * 40).wait()
try:
    c.get_into(KEY, buf).wait()
except mr.MemoryFull as e:  # longer than buf: the value is skipped, the connection stays usable
    print("too long:", e)
print("missing key:", c.get_into("example:no-such-key", buf).wait())
c.close()
