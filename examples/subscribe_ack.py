"""Obey commands sent over pub/sub and acknowledge each one: SUBSCRIBE cmd:<id>, PUBLISH ack:<id> <answer>.

    redis-cli subscribe ack:example-1            # in one terminal
    redis-cli publish cmd:example-1 "led on"     # in another ("quit" ends the script)

RESP3 (Redis 6+): the acknowledgements go out on the subscribed connection itself. When the connection breaks
(the server restarts, the Wi-Fi drops) the script dials and subscribes again, by hand for now (a few lines below);
messages published meanwhile are lost, as pub/sub keeps nothing. On a board, join Wi-Fi first.
"""
import os
import time

import microredis as mr

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
HOST = env("REDIS_HOST", "127.0.0.1")  # on a board: your Redis server's address
PORT = int(env("REDIS_PORT", "6379"))
ID = env("DEVICE_ID", "example-1")

h = mr.ConnectionHandler((HOST, PORT)).timeout(2000)
sub = None
while True:
    try:
        if sub is None:  # (re)subscribe; once the handler has a retry policy, the subscription does this itself
            c = h.connect()  # dials again when the last connection broke
            sub = c.subscribe("cmd:" + ID)
            print("listening on cmd:" + ID)
        m = sub.receive(timeout_ms=5000)
        if m is None:
            sub.ping()  # quiet for 5 s: prove the connection (a half-open one fails here)
            continue
        cmd = bytes(m.payload).strip().lower()
        if cmd == b"quit":
            break
        answer = {b"led on": "led on", b"led off": "led off", b"ping": "pong"}.get(cmd, "unknown command")
        print("command %r -> %s" % (cmd, answer))
        c.publish("ack:" + ID, answer).wait()
    except (mr.RedisError, OSError) as e:
        print("connection lost (%s: %s): again in 1 s" % (type(e).__name__, e))
        sub = None
        time.sleep(1)
sub.close()
c.close()
print("bye")
