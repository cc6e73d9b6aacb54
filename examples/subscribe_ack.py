"""Obey commands sent over pub/sub and acknowledge each one: SUBSCRIBE cmd:<id>, PUBLISH ack:<id> <answer>.

    redis-cli subscribe ack:example-1            # in one terminal
    redis-cli publish cmd:example-1 "led on"     # in another ("quit" ends the script)

RESP3 (Redis 6+): the acknowledgements go out on the subscribed connection itself. The handler's retry policy
re-dials and re-subscribes when the connection breaks (the server restarts, the Wi-Fi drops), and its health check
PINGs a connection that was quiet for 5 s (a half-open one is found that way); messages published during an outage
are lost, as pub/sub keeps nothing (sub.gaps counts the outages). On a board, join Wi-Fi first.
"""
import os
import time

import microredis as mr

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
HOST = env("REDIS_HOST", "127.0.0.1")  # on a board: your Redis server's address
PORT = int(env("REDIS_PORT", "6379"))
ID = env("DEVICE_ID", "example-1")

h = mr.ConnectionHandler((HOST, PORT)).timeout(2000).retry(backoff_ms=500, max_backoff_ms=5000).health_check(5000)
c = sub = None
while sub is None:  # the first connection: the server may not be up yet
    try:
        c = h.connect()
        sub = c.subscribe("cmd:" + ID)
    except (mr.RedisError, OSError) as e:
        print("not connected (%s: %s): again in 1 s" % (type(e).__name__, e))
        time.sleep(1)
print("listening on cmd:" + ID)
while True:
    m = sub.receive(timeout_ms=5000)  # with retry(): re-dials and re-subscribes within the timeout, never raises
    if m is None:
        continue
    cmd = bytes(m.payload).strip().lower()
    if cmd == b"quit":
        break
    answer = {b"led on": "led on", b"led off": "led off", b"ping": "pong"}.get(cmd, "unknown command")
    print("command %r -> %s" % (cmd, answer))
    try:
        c.publish("ack:" + ID, answer).wait()
    except mr.RedisError as e:  # the connection broke just now: the next command re-dials
        print("ack lost (%s: %s)" % (type(e).__name__, e))
sub.close()
c.close()
print("bye (%d outages)" % sub.gaps)
