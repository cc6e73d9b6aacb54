"""The loop of every boards/<board>/main.py. Every INTERVAL_MS: queue {temp, seq} in an mr.Outbox for
sensors:<id>:stream (kept while the network is down, stored once), SET sensors:<id>:temp EX TTL_S and PUBLISH
sensors:<id> the latest value. Meanwhile commands ("led on|off|toggle", "ping": XADD cmd:<id> * cmd "led on") are
taken from the stream cmd:<id> through an mr.Inbox (they wait while the board is away) and acknowledged on ack:<id>."""
import gc
import time

import microredis as mr

DEFAULTS = {  # from the environment, config.py or settings.toml (load_config); see boards/*/config.example.py
    "WIFI_SSID": None, "WIFI_PASSWORD": None, "WIFI_TIMEOUT_MS": 15000, "LED_PIN": None, "DEVICE_ID": None,
    "REDIS_HOST": "127.0.0.1", "REDIS_PORT": 6379, "REDIS_USERNAME": None, "REDIS_PASSWORD": None, "PROTOCOL": 3,
    "INTERVAL_MS": 5000, "READINGS": 0, "TTL_S": 60, "STREAM_MAXLEN": 1000, "OUTBOX_CAPACITY": 64, "OUTBOX_PATH": None,
    "TIMEOUT_MS": 2000, "BACKOFF_MS": 500, "MAX_BACKOFF_MS": 30000, "RESET_AFTER": 0, "MEM_REPORT_EVERY": 10,
    "LISTENER_PING_EVERY": 10, "INBOX_PATH": None}  # (the config.example.py files say what each one does)


def load_config(module=None, getenv=None):
    """Each setting from getenv(NAME) (a str: an int where the default is one), else module.NAME, else DEFAULTS."""
    return {name: int(v) if type(d) is int else v for name, d in DEFAULTS.items()
            for v in ((getenv(name) if getenv is not None else None) or getattr(module, name, d),)}  # "": unset


def wifi_up(cfg):
    """MicroPython: connected at once, or in three attempts of WIFI_TIMEOUT_MS; else OSError. Returns the stack: None"""
    import network  # pyright: ignore[reportMissingImports]  MicroPython (CircuitPython's main.py joins Wi-Fi itself)
    w, ssid = network.WLAN(network.STA_IF), cfg["WIFI_SSID"]
    for attempt in (1, 2, 3):
        if w.isconnected():
            return None
        print("wifi: connecting to %r (attempt %d/3)" % (ssid, attempt))
        w.active(True)
        w.disconnect()  # an attempt still in progress would make connect() fail
        w.connect(ssid, cfg["WIFI_PASSWORD"])
        t0 = time.ticks_ms()  # pyright: ignore[reportAttributeAccessIssue]  (MicroPython's time)
        while not w.isconnected() and time.ticks_diff(time.ticks_ms(), t0) < cfg["WIFI_TIMEOUT_MS"]:  # pyright: ignore[reportAttributeAccessIssue]
            time.sleep_ms(200)  # pyright: ignore[reportAttributeAccessIssue]
    if not w.isconnected():
        raise OSError("wifi: no connection to %r (status %s)" % (ssid, w.status()))


def handler(cfg, name):
    addr = (cfg["REDIS_HOST"], cfg["REDIS_PORT"])
    h = mr.ConnectionHandler.resp2(addr) if cfg["PROTOCOL"] == 2 else mr.ConnectionHandler.resp3(addr)
    h.timeout(cfg["TIMEOUT_MS"]).memory(mr.MemoryParameters(256, 4, 4096)).client_name(name)  # a reply: 4 KB at most
    h.retry(cfg["BACKOFF_MS"], cfg["MAX_BACKOFF_MS"])  # re-dials (and re-subscribes) on the next command
    if cfg["LISTENER_PING_EVERY"]:  # a PING proves an idle socket (a half-open one after an AP reboot) first
        h.health_check(cfg["INTERVAL_MS"] * cfg["LISTENER_PING_EVERY"])
    u, pw = cfg["REDIS_USERNAME"], cfg["REDIS_PASSWORD"]
    return h.auth((mr.Credentials.acl(u, pw) if u else mr.Credentials.password_only(pw)) if pw else None)


class Telemetry:
    def __init__(self, cfg, device, device_id):
        self.cfg, self.dev, self.id, self.clock, self.commands = cfg, device, device_id, mr.clock.default_clock(), 0
        self.h = handler(cfg, device_id)  # one connection: commands, the outbox's XADDs, the inbox's reads
        self.box = mr.Outbox(self.h, "sensors:%s:stream" % device_id, cfg["OUTBOX_CAPACITY"], None,
                             cfg["OUTBOX_PATH"], cfg["STREAM_MAXLEN"])
        self.inbox = mr.Inbox(self.h, "cmd:" + device_id, "devices", device_id, cfg["INBOX_PATH"], block_ms=1000)
        self.c = self.stack = self.led_on = self.said = self.listening = None

    def why(self, e):  # "Type: text", but "the same error as above" while its cause (a handler's last_error, which
        s = "%s: %s" % (type(e).__name__, e)  # a failed dial quotes) is the one printed last: told once, not per cycle
        k = [str(x) for x in (self.h.last_error, s) if x and str(x) in s][0]
        self.said, k = k, k == self.said
        return "the same error as above" if k else s

    def client(self):
        if self.c is None:  # once: after that the handler's retry policy re-dials this same client
            self.c = self.h.connect(self.stack, None, mr.CoreClient)  # the core: the command catalogue stays unloaded
        return self.c

    def send(self, seq, t):
        box = self.box
        box.add({"temp": t, "seq": seq})  # never blocks; when the outbox is full the oldest reading goes
        self.stack = self.dev.network()  # Wi-Fi up (a bounded wait), or OSError
        c = self.client()
        with c.pipeline():  # one write: SET, PUBLISH and the outbox's XADDs; one read
            f1 = c.set("sensors:%s:temp" % self.id, t, ex=self.cfg["TTL_S"])
            f2 = c.publish("sensors:" + self.id, '{"id":"%s","seq":%d,"temp":%s}' % (self.id, seq, t))
            box.pump(0, c)  # on c, the one connection (never raises: box.last_error)
        f1.wait()
        n = f2.wait()
        print("#%d %s C: %d subscriber%s; stream: %d delivered, %d pending%s" % (seq, t, n, "" if n == 1 else "s",
              box.delivered, box.pending, " (%r)" % box.last_error if box.pending else ""))

    def listen(self, ms, n):  # commands for ms, from the inbox: they wait in the stream while the board is away
        if ms <= 0:
            return
        clock, start, box = self.clock, self.clock.ticks_ms(), self.inbox
        try:
            c = self.client()  # one connection: the inbox reads (and blocks) on it too
            if not self.listening:
                self.listening = print("listening for commands on cmd:%s (led on|off|toggle, ping)" % self.id) or 1
            while ms - clock.ticks_diff(clock.ticks_ms(), start) > 0:
                e = box.next(max(1, ms - clock.ticks_diff(clock.ticks_ms(), start)), c)  # never raises
                if e is not None:
                    self.handle(bytes(e.fields.get(b"cmd", b"")).strip().lower())
                    box.done(e, c)  # applied: not handed over again, even after a reboot (INBOX_PATH)
        except (mr.RedisError, OSError) as e:  # (an answer that could not go out: the command comes again)
            print("commands: " + self.why(e))
            time.sleep(max(0, ms - clock.ticks_diff(clock.ticks_ms(), start)) / 1000)

    def handle(self, cmd):
        self.commands += 1
        ack = "pong" if cmd == b"ping" else "error: unknown command %r" % (cmd,)
        if cmd == b"led on" or cmd == b"led off" or cmd == b"led toggle":
            self.led_on = (not self.led_on) if cmd == b"led toggle" else cmd == b"led on"
            self.dev.led(self.led_on)
            ack = "led on" if self.led_on else "led off"
        print("command %r -> %s" % (cmd, ack))
        c = self.client()
        if ack[:4] == "led ":
            c.set("sensors:%s:led" % self.id, ack[4:])  # the state, for dashboards (its reply precedes the ack's)
        c.publish("ack:" + self.id, ack).wait()

    def run(self):
        cfg, box, clock, n, fails = self.cfg, self.box, self.clock, 0, 0
        limit, report, reset = cfg["READINGS"], cfg["MEM_REPORT_EVERY"], cfg["RESET_AFTER"]
        print("microredis %s telemetry: %s -> %s:%s" % (mr.__version__, self.id, cfg["REDIS_HOST"], cfg["REDIS_PORT"]))
        while not limit or n < limit:
            n += 1
            start, seq, t = clock.ticks_ms(), box.added + 1, "%.2f" % self.dev.temperature()
            try:
                self.send(seq, t)
                fails, self.said = 0, None
            except (mr.RedisError, OSError, MemoryError) as e:
                fails += 1
                print("#%d %s C: failed (%d in a row): %s" % (seq, t, fails, self.why(e)))
                if reset and fails >= reset:
                    self.dev.reset()
            gc.collect()
            if report and (n == 1 or n % report == 0):
                print("mem_free %d" % getattr(gc, "mem_free", lambda: -1)())
            self.listen((cfg["INTERVAL_MS"] if n != limit else 0) - clock.ticks_diff(clock.ticks_ms(), start), n)
        box.pump(cfg["TIMEOUT_MS"], self.c)  # what is left, for up to TIMEOUT_MS
        box.close()
        k = self.commands  # failed: still pending, or dropped from a full outbox (box.dropped)
        print("done: %d sent, %d failed, %d command%s" % (box.delivered, box.pending + box.dropped, k, "s"[k == 1:]))
        return box.delivered


def start(cfg, device, device_id):
    try:  # a board's main(): an exception escaping run() is a bug, not an outage: show it, then reset the board
        Telemetry(cfg, device, cfg["DEVICE_ID"] or device_id).run()
    except Exception as e:
        getattr(__import__("sys"), "print_exception", print)(e)  # MicroPython: with its traceback
        print("unexpected error: resetting in 10 s (Ctrl-C for the REPL)")
        time.sleep(10)
        device.reset()
