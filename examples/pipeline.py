"""SET, INCR and GET in one round trip: a pipeline sends the commands in one write, their replies come back in order.

Runs on MicroPython, CircuitPython and CPython. Copy it next to lib/microredis/; on a board, join Wi-Fi first (in
boot.py). The server: REDIS_HOST / REDIS_PORT from the environment (the unix port, CPython, CircuitPython's
settings.toml), else the defaults below.
"""
import os

import microredis as mr

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
HOST = env("REDIS_HOST", "127.0.0.1")  # on a board: your Redis server's address
PORT = int(env("REDIS_PORT", "6379"))

h = mr.ConnectionHandler((HOST, PORT)).timeout(2000)  # ms per reply; .auth(mr.Credentials.password_only("..."))
c = h.connect()
with c.pipeline():  # nothing is sent until the block ends; each call returns a Future
    f_set = c.set("example:greeting", "hello from a board", ex=60)  # expires in 60 s
    f_incr = c.incr("example:boots")
    f_get = c.get("example:greeting")
f_set.wait()  # raises the command's error, if the server answered with one
print("boots:", f_incr.wait())
print("greeting:", f_get.wait())

# Futures may also be left unwaited (fire and forget): their replies are read when the slot is needed
for i in range(10):
    c.set("example:n:%d" % i, i)
print("mget:", c.mget(["example:n:%d" % i for i in range(10)]).wait())
c.close()
