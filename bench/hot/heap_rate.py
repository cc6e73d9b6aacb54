# get() rate over 20,000 GETs (each leaves its value as garbage), to compare -X heapsize values (scratch).
# usage: MICROPYPATH=... micropython -X heapsize=8m bench/hot/heap_rate.py PORT
import sys
import time
import microredis as mr

c = mr.ConnectionHandler.resp3(("127.0.0.1", int(sys.argv[1]))).connect()
c.set(b"hot:k", b"21.50").wait()
for _ in range(200):
    c.get(b"hot:k").wait()
t = time.ticks_us()
for _ in range(20000):
    c.get(b"hot:k").wait()
print("get/s %.0f" % (20000 / (time.ticks_diff(time.ticks_us(), t) / 1e6)))
