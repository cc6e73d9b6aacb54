"""Telemetry into a Redis Cluster. Every key of this device carries one {hash tag}, so all of them live in one slot:
the board talks to one node over one connection, and a pipeline or a multi-key command works as on one server.
When the slot moves (resharding) or its node fails over, the client follows MOVED/ASK and reads the slot map again;
commands arrive by sharded pub/sub (Redis 7+ / Valkey), re-subscribed on the slot's new owner (a gap: commands
published in between are lost; use a stream, see inbox_commands.py, where that matters).

Needs package-cluster.json and package-pubsub.json. On a board, join Wi-Fi first. REDIS_CLUSTER (host:port,...),
DEVICE_ID, READINGS, INTERVAL_MS from the environment, else the defaults below.
"""
import os

import microredis as mr

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
NODES = [(a[:a.rfind(":")], int(a[a.rfind(":") + 1:])) for a in env("REDIS_CLUSTER", "127.0.0.1:7000").split(",")]
DEV = "{%s}" % env("DEVICE_ID", "dev42")  # the hash tag: only the part in braces picks the slot
READINGS = int(env("READINGS", "20"))
INTERVAL_MS = int(env("INTERVAL_MS", "1000"))

cl = mr.Cluster(NODES).timeout(2000)  # any one startup node that answers is enough; .auth(...), .tls() as usual
c = cl.connect()  # reads the slot map; connections are opened on first use, one per node used
cmds = c.ssubscribe(DEV + ":cmd")  # on the same connection as the commands (RESP3)
stored = seq = 0
while seq < READINGS:
    seq += 1
    try:
        with c.pipeline():  # one write: every key under DEV, so one node
            c.set(DEV + ":temp", "%.1f" % (20 + seq % 7 / 2))
            f = c.xadd(DEV + ":readings", {"seq": seq}, maxlen=1000)
            c.incr(DEV + ":n")
        f.wait()
        stored += 1
    except mr.RedisError as e:  # e.g. a node lost mid-command: the next one goes to its successor
        print("#%d not stored: %r" % (seq, e))
    print("#%d: %d stored, on %s:%d" % ((seq, stored) + cmds.node))
    m = None
    try:
        m = cmds.receive(INTERVAL_MS)  # a command, waited for at most INTERVAL_MS
    except mr.RedisError as e:  # the node lost: subscribed again on the next receive
        print("subscription: %r" % e)
    if m is not None:
        print("command:", m.payload)
        if m.payload == b"quit":
            break
print("done: %d stored, %d redirects, %d map reads, %d subscription gaps" % (stored, cl.redirects, cl.refreshes,
                                                                            cmds.gaps))
cmds.close()
c.close()
