"""Three asyncio tasks, one RESP3 connection: a sensor loop (SET the latest value, PUBLISH it, each reading into an
mr.Outbox), a command listener (pub/sub, each command acknowledged on ack:<id>) and an outbox flusher (XADD to a
stream, exactly once, over the outbox's own connection). Needs package-aio, -pubsub and -survival. On a board, join
Wi-Fi first. REDIS_HOST / REDIS_PORT / READINGS / INTERVAL_MS / DEVICE_ID from the environment, else the defaults.
"""
import os
try:
    import asyncio
except ImportError:
    import uasyncio as asyncio
import microredis as mr
from microredis import aio

env = getattr(os, "getenv", lambda name, default: default)  # a MicroPython board has no environment
HOST, PORT = env("REDIS_HOST", "127.0.0.1"), int(env("REDIS_PORT", "6379"))  # on a board: your server
READINGS, INTERVAL_MS = int(env("READINGS", "10")), int(env("INTERVAL_MS", "500"))
ID = env("DEVICE_ID", "board-1")
led = [False]

async def sensor(c, box):
    for seq in range(1, READINGS + 1):
        temp = "%.1f" % (20 + seq % 7 / 2)
        box.add({"temp": temp, "seq": seq})  # never touches the network
        await asyncio.gather(c.set("sensors:%s:temp" % ID, temp, ex=60),  # both in one write
                             c.publish("sensors:" + ID, '{"seq": %d, "temp": %s}' % (seq, temp)))
        print("#%d %s C, led %s" % (seq, temp, "on" if led[0] else "off"))
        await asyncio.sleep(INTERVAL_MS / 1000)

async def listener(c, sub):
    async for m in sub:  # each command as it arrives; the connection keeps serving the other tasks
        led[0] = {b"led on": True, b"led off": False}.get(m.payload, led[0])
        await c.publish("ack:" + ID, b"ok " + m.payload)

async def flusher(box):
    while True:
        box.pump()  # synchronous: one attempt, at most one dial and one reply timeout; never raises
        await asyncio.sleep(INTERVAL_MS * 2 / 1000)

async def main():
    box = mr.Outbox(mr.ConnectionHandler((HOST, PORT)).timeout(2000), "sensors:%s:stream" % ID, maxlen=1000)
    async with await aio.connect(mr.ConnectionHandler.resp3((HOST, PORT)).timeout(2000)) as c:
        tasks = [asyncio.create_task(listener(c, await c.subscribe("cmd:" + ID))), asyncio.create_task(flusher(box))]
        await sensor(c, box)
        for t in tasks:
            t.cancel()
    box.pump(timeout_ms=5000)  # what is left
    print("done: %d delivered, %d pending" % (box.delivered, box.pending))
    box.close()
asyncio.run(main())
