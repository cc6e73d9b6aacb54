# A telemetry program of the README's shape, for the bench's RAM figures (bench/run.py runs it on x64 and 32-bit).
# usage: micropython [-X heapsize=N] bench/ram/telemetry.py HOST PORT CYCLES
#   One handler and one connection, as boards/common/telemetry.py: retry() and health_check() and a 4 KB reply
#   limit; a CoreClient that carries the commands, an mr.Outbox's XADDs (RAM, 64 readings, MAXLEN ~ 1000,
#   pump(0, c)) and an mr.Inbox's reads of the stream cmd:<id> (group devices, next(0, c)). Per cycle: a reading
#   into the outbox, SET <id>:temp EX 60, PUBLISH <id> and pump() pipelined (one write); every 10th cycle the program adds
#   "led on"/"led off" to cmd:<id> itself, takes it from the inbox and answers it as the board does: SET <id>:led,
#   PUBLISH ack:<id>, done(). Other cycles poll the inbox (next(0)).
#   Prints RESULT <held when set up> <held after CYCLES cycles> <readings delivered> <commands answered>: held =
#   gc.mem_alloc() after gc.collect(), relative to before `import microredis`. Exits 1 without RESULT if anything
#   failed (an outbox error counts: pump() keeps errors in last_error instead of raising).
import gc
import sys

ADDR = (sys.argv[1], int(sys.argv[2]))
CYCLES = int(sys.argv[3])
DEV = "bench-tele"
base = held_setup = 0  # globals declared before the measurement starts, so the module dict does not grow
h = box = c = inbox = m = f1 = f2 = None
seq = answered = 0
t = cmd = None
gc.collect()
base = gc.mem_alloc()

import microredis as mr  # noqa: E402


def handler(name):
    h = mr.ConnectionHandler.resp3(ADDR).timeout(2000).memory(mr.MemoryParameters(256, 4, 4096)).client_name(name)
    h.retry(500, 30000)  # re-dials on the next command
    h.health_check(50000)  # a PING proves a socket idle for longer (the board: 10 x its 5 s interval)
    return h


h = handler(DEV)
box = mr.Outbox(h, "sensors:%s:stream" % DEV, capacity=64, maxlen=1000)
c = h.connect(client=mr.CoreClient)
c.command("DEL", "cmd:" + DEV).wait()  # (the commands of an earlier run)
inbox = mr.Inbox(h, "cmd:" + DEV, "devices", DEV)
gc.collect()
held_setup = gc.mem_alloc() - base

for seq in range(1, CYCLES + 1):
    t = "%.2f" % (20 + (seq % 50) / 10)
    box.add({"temp": t, "seq": seq})
    with c.pipeline():  # one write, one read (t_outbox: test_a_cycle_is_one_write_and_one_read)
        f1 = c.set("sensors:%s:temp" % DEV, t, ex=60)
        f2 = c.publish("sensors:" + DEV, '{"id":"%s","seq":%d,"temp":%s}' % (DEV, seq, t))
        box.pump(0, c)
    f1.wait()
    f2.wait()
    if seq % 10 == 0:  # a command arrives: the board's answer is a SET of the state and an acknowledgement
        c.command("XADD", "cmd:" + DEV, "*", "cmd", "led on" if seq % 20 else "led off").wait()
        m = inbox.next(2000, c)
        if m is None:
            raise RuntimeError("the command added on cycle %d did not arrive: %r" % (seq, inbox.last_error))
        cmd = bytes(m.fields[b"cmd"])
        c.set("sensors:%s:led" % DEV, cmd[4:])
        c.publish("ack:" + DEV, cmd).wait()
        inbox.done(m, c)
        answered += 1
    else:
        m = inbox.next(0, c)
        if m is not None:
            raise RuntimeError("unexpected command %r" % (m.fields,))
    m = None
    gc.collect()

if box.pending or box.dropped or box.last_error is not None:
    raise RuntimeError("outbox: %d pending, %d dropped, last error %r" % (box.pending, box.dropped, box.last_error))
gc.collect()
print("RESULT", held_setup, gc.mem_alloc() - base, CYCLES - box.pending, answered)
