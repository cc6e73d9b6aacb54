# get() rate on MicroPython at the heap size given with -X heapsize (run by bench/run.py; not a test).
# usage: micropython -X heapsize=N mp_getrate.py HOST PORT COUNT
# Prints: RESULT <GETs per second over COUNT c.get(key).wait() calls, after 100 warm-up calls>
import sys
import time
import microredis as mr

c = mr.ConnectionHandler.resp3((sys.argv[1], int(sys.argv[2]))).connect(client=mr.CoreClient)
n = int(sys.argv[3])
c.set(b"bench:k", b"21.50").wait()
for _ in range(100):
    c.get(b"bench:k").wait()
t0 = time.ticks_us()
for _ in range(n):
    c.get(b"bench:k").wait()
us = time.ticks_diff(time.ticks_us(), t0)
print("RESULT", n * 1000000 / us)
