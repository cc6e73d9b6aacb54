"""Commands that reach a board which was away: each waits in the stream cmd:<id> until the board's mr.Inbox reads
it (a consumer group keeps what the board has not acknowledged), and one applied is never applied again.

    redis-cli xadd cmd:example-1 '*' cmd "led on"       # any time, also while this script is not running
    redis-cli subscribe ack:example-1                   # the answers ("quit" ends the script)

Needs the survival package (mpremote mip install .../package-survival.json). On a board, join Wi-Fi first.
REDIS_HOST / REDIS_PORT / DEVICE_ID / INBOX_PATH from the environment, else the defaults below.
"""
import os

import microredis as mr

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
HOST = env("REDIS_HOST", "127.0.0.1")  # on a board: your Redis server's address
PORT = int(env("REDIS_PORT", "6379"))
ID = env("DEVICE_ID", "example-1")
PATH = env("INBOX_PATH", None)  # e.g. "/inbox.id": "applied up to" kept across reboots (one flash write a command)

h = mr.ConnectionHandler((HOST, PORT)).timeout(2000).retry(backoff_ms=200, max_backoff_ms=5000)
c = h.connect()
inbox = mr.Inbox(h, "cmd:" + ID, "devices", ID, path=PATH, max_deliveries=5)  # poison goes to cmd:<id>:dead
print("taking commands from cmd:" + ID)
led = False
while True:
    e = inbox.next(timeout_ms=5000, client=c)  # blocks up to 5 s on c; never raises (inbox.last_error)
    if e is None:
        continue
    cmd = bytes(e.fields.get(b"cmd", b"")).strip().lower()
    # at least once: the effect first, then done(); a crash in between repeats this one command after a reboot.
    # For a command that must never repeat, call inbox.done(e) first (at most once).
    if cmd in (b"led on", b"led off"):
        led = cmd == b"led on"
    answer = {b"led on": "led on", b"led off": "led off", b"ping": "pong", b"quit": "bye"}.get(cmd, "unknown")
    try:
        c.publish("ack:" + ID, answer).wait()
    except (mr.RedisError, OSError) as err:  # an outage: no done(), so the command comes again
        print("no answer:", err)
        continue
    inbox.done(e, client=c)
    print("%s -> %s (delivery %d)" % (cmd, answer, e.deliveries))
    if cmd == b"quit":
        break
print("bye (%d re-delivered, %d skipped, %d dead)" % (inbox.redelivered, inbox.skipped, inbox.dead))
