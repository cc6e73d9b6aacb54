"""Telemetry that survives outages: each reading goes into an mr.Outbox, which keeps it while the server or the
network is down and then stores it exactly once in a stream (XADD with an explicit ID: a reading re-sent after a
lost reply is recognised, never stored twice). add() never blocks; pump() never raises (box.last_error says why
nothing went out) and re-dials by itself, with backoff.

Needs the survival package (mpremote mip install .../package-survival.json). On a board, join Wi-Fi first.
REDIS_HOST / REDIS_PORT / READINGS / INTERVAL_MS from the environment, else the defaults below.
"""
import os
import time

import microredis as mr

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
HOST = env("REDIS_HOST", "127.0.0.1")  # on a board: your Redis server's address
PORT = int(env("REDIS_PORT", "6379"))
READINGS = int(env("READINGS", "20"))
INTERVAL_MS = int(env("INTERVAL_MS", "1000"))

h = mr.ConnectionHandler((HOST, PORT)).timeout(2000)  # the outbox's own handler: use another one for your commands
# capacity: readings kept while nothing can be sent (then the oldest go, counted in box.dropped);
# path="/outbox.log" keeps them on flash across reboots (about 2 flash writes a reading)
box = mr.Outbox(h, "example:temps", capacity=64, path=None, maxlen=1000)
box.backoff_ms, box.max_backoff_ms = 200, 5000  # re-dials: 0.2 s, 0.4 s ... up to 5 s (defaults: 0.5 s, 30 s)
for seq in range(1, READINGS + 1):
    box.add({"temp": "%.1f" % (20 + seq % 7 / 2), "seq": seq})  # a new dict each time: the outbox keeps it
    box.pump()  # at most one dial and one reply timeout
    print("#%d: %d delivered, %d pending%s" % (seq, box.delivered, box.pending,
                                               " (%s)" % box.last_error if box.pending else ""))
    time.sleep(INTERVAL_MS / 1000)
box.pump(timeout_ms=10000)  # the rest, trying for up to 10 s
print("done: %d delivered, %d pending, %d dropped, %d recognised re-sends" % (
    box.delivered, box.pending, box.dropped, box.duplicates))
box.close()
