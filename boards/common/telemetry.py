"""The telemetry program shared by every boards/<board>/main.py (MicroPython, CircuitPython, the unix port).

A board's main.py provides a Device (network, sensor, LED, reset) and calls run(config, device). Each cycle:

  1. bring the network up (the device's job: Wi-Fi with a bounded wait; the caller backs off on failure);
  2. read the sensor and send, in one pipelined write on the telemetry connection:
       SET     sensors:<id>:temp <t> EX <TTL_S>             latest value, expires when the board goes quiet
       PUBLISH sensors:<id> {"id":..,"seq":..,"temp":..}     live feed
       XADD    sensors:<id>:stream MAXLEN ~ <N> * temp <t> seq <n>   bounded history
  3. until the next reading is due, listen on the second connection for commands on cmd:<id>:
       "led on" | "led off" | "led toggle" | "ping"; each is acknowledged with PUBLISH ack:<id> <text>,
       and the LED state is kept in the key sensors:<id>:led.

Outages: a cycle that fails (Wi-Fi down, server gone, a timeout) is reported, both connections are dropped, and
the next cycle waits an exponential, bounded back-off (BACKOFF_MS doubling up to MAX_BACKOFF_MS) before it dials
again. Nothing accumulates between cycles; gc.collect() runs after every cycle and gc.mem_free() is printed every
MEM_REPORT_EVERY readings. After RESET_AFTER consecutive failed cycles (0: never) the device is reset. The command
connection is PINGed every LISTENER_PING_EVERY readings, so a half-open one (after a Wi-Fi drop) is noticed and
re-dialed; one that the server closed is re-dialed at once.
"""

import gc
import time

import microredis as mr
from microredis.clock import default_clock

try:
    from time import sleep_ms
except ImportError:  # CircuitPython, CPython

    def sleep_ms(ms):
        time.sleep(ms / 1000)


# Settings: name -> default. Read from the board's config.py, settings.toml (CircuitPython) or the environment.
DEFAULTS = {
    "WIFI_SSID": None,
    "WIFI_PASSWORD": None,
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": 6379,
    "REDIS_USERNAME": None,
    "REDIS_PASSWORD": None,
    "PROTOCOL": 3,  # 3: RESP3 (falls back to RESP2 on a server without HELLO); 2: RESP2
    "DEVICE_ID": None,  # None: derived from the board's unique id
    "INTERVAL_MS": 5000,  # between readings
    "TTL_S": 60,  # expiry of sensors:<id>:temp
    "STREAM_MAXLEN": 1000,  # XADD MAXLEN ~
    "READINGS": 0,  # stop after this many cycles; 0: run forever
    "WIFI_TIMEOUT_MS": 15000,  # one Wi-Fi connect attempt (three attempts per cycle)
    "TIMEOUT_MS": 2000,  # reply deadline (and dialing bound)
    "BACKOFF_MS": 1000,  # first wait after a failed cycle
    "MAX_BACKOFF_MS": 30000,  # the back-off never exceeds this
    "RESET_AFTER": 0,  # reset the device after this many consecutive failed cycles; 0: never
    "MEM_REPORT_EVERY": 10,  # print gc.mem_free() every N readings (0: never)
    "LISTENER_PING_EVERY": 10,  # PING the command connection every N readings: a dead one is re-dialed (0: never)
    "LED_PIN": None,  # board specific (see the board's config.example.py)
}

COMMANDS_HELP = "led on | led off | led toggle | ping"


def load_config(module=None, getenv=None, defaults=DEFAULTS):
    """A dict of every setting: getenv(NAME) first (when given), then module.NAME, then the default.

    Values from the environment are strings: they are converted to int where the default is an int."""
    cfg = {}
    for name in defaults:
        default = defaults[name]
        v = getenv(name) if getenv is not None else None
        if v is not None and v != "":
            if type(default) is int and type(v) is str:
                v = int(v)
        elif module is not None and hasattr(module, name):
            v = getattr(module, name)
        else:
            v = default
        cfg[name] = v
    return cfg


def unique_id(prefix):
    """prefix + the last 6 hex digits of machine.unique_id() (MicroPython) or microcontroller.cpu.uid."""
    raw = None
    try:
        import machine

        raw = machine.unique_id()
    except (ImportError, AttributeError):
        try:
            import microcontroller

            raw = microcontroller.cpu.uid
        except (ImportError, AttributeError):
            pass
    if not raw:
        return prefix
    hexd = "".join("%02x" % b for b in raw)
    return prefix + "-" + hexd[-6:]


def print_exc(e):
    pe = getattr(__import__("sys"), "print_exception", None)
    if pe is not None:  # MicroPython
        pe(e)
        return
    try:
        import traceback  # CircuitPython, CPython

        traceback.print_exception(type(e), e, e.__traceback__)
    except (ImportError, AttributeError):
        print(repr(e))


def mem_free():
    f = getattr(gc, "mem_free", None)
    return f() if f is not None else -1


class Device:
    """What a board provides. Subclass it in main.py."""

    name = "board"

    def network(self):
        """Bring the network up if it is down; return the stack for ConnectionHandler.connect(stack=...)
        (None: the platform's socket module). Raise OSError when the network cannot be brought up."""
        return None

    def temperature(self):
        """The sensor reading, in degrees Celsius."""
        raise NotImplementedError

    def led(self, on):
        """Switch the LED (a board without one just prints)."""
        print("LED", "on" if on else "off")

    def reset(self):
        """Called after RESET_AFTER consecutive failed cycles."""


class Wlan:
    """MicroPython Wi-Fi station (network.WLAN) with a bounded connect: up() returns at once when connected,
    else tries `attempts` times, each for at most timeout_ms, waiting 1 s, 2 s, ... in between, and raises
    OSError when all failed (the telemetry loop then backs off and calls again)."""

    def __init__(self, ssid, password, hostname=None, timeout_ms=15000, attempts=3, power_save=None):
        if not ssid:
            raise ValueError("WIFI_SSID is not set (config.py)")
        self.ssid = ssid
        self.password = password
        self.hostname = hostname
        self.timeout_ms = timeout_ms
        self.attempts = attempts
        self.power_save = power_save
        self.wlan = None

    def up(self):
        import network

        w = self.wlan
        if w is None:
            if self.hostname:
                try:
                    network.hostname(self.hostname)  # MicroPython 1.20+
                except (AttributeError, ValueError, OSError):
                    pass
            w = self.wlan = network.WLAN(network.STA_IF)
        if w.isconnected():
            return None
        clock = default_clock()
        for attempt in range(1, self.attempts + 1):
            print("wifi: connecting to %r (attempt %d/%d)" % (self.ssid, attempt, self.attempts))
            w.active(True)
            if self.power_save is not None:
                try:
                    w.config(pm=self.power_save)  # e.g. Pico W: 0xA11140 turns power saving off
                except (ValueError, OSError, TypeError):
                    pass
            try:
                w.connect(self.ssid, self.password)
            except OSError as e:
                print("wifi: connect() failed:", e)
            start = clock.ticks_ms()
            while not w.isconnected() and clock.ticks_diff(clock.ticks_ms(), start) < self.timeout_ms:
                sleep_ms(200)
            if w.isconnected():
                print("wifi: connected, address", w.ifconfig()[0])
                return None
            print("wifi: not connected (status %s)" % (w.status(),))
            try:
                w.disconnect()
            except OSError:
                pass
            if attempt < self.attempts:
                sleep_ms(1000 << (attempt - 1))
        raise OSError("wifi: could not connect to %r" % (self.ssid,))


class Telemetry:
    def __init__(self, cfg, device):
        self.cfg = cfg
        self.dev = device
        did = cfg["DEVICE_ID"] or unique_id(device.name)
        if " " in did:
            raise ValueError("DEVICE_ID must not contain spaces")
        self.device_id = did
        self.key_temp = "sensors:%s:temp" % did
        self.key_led = "sensors:%s:led" % did
        self.channel = "sensors:%s" % did
        self.stream = "sensors:%s:stream" % did
        self.cmd_channel = "cmd:%s" % did
        self.ack_channel = "ack:%s" % did
        self.h = self._handler(did)  # telemetry: SET, PUBLISH, XADD, acknowledgements
        self.hl = self._handler(did + "-cmd")  # the command listener (RESP2 needs its own connection)
        self.c = None
        self.lc = None
        self.sub = None
        self.listen = True
        self.led_on = False
        self.stack = None
        self.clock = default_clock()
        self.sent = 0
        self.failed = 0
        self.commands = 0

    def _handler(self, name):
        cfg = self.cfg
        addr = (cfg["REDIS_HOST"], int(cfg["REDIS_PORT"]))
        if int(cfg["PROTOCOL"]) == 2:
            h = mr.ConnectionHandler.resp2(addr)
        else:
            h = mr.ConnectionHandler.resp3(addr, fallback=True)
        h.timeout(int(cfg["TIMEOUT_MS"]))
        # small, fixed buffers: a reply (or a command message) may take up to 4 KB while it is parsed
        h.memory(mr.MemoryParameters(buffer_size=256, frame_capacity=4, memory_limit=4096))
        h.client_name(name)
        pw = cfg["REDIS_PASSWORD"]
        if pw:
            user = cfg["REDIS_USERNAME"]
            h.auth(mr.Credentials.acl(user, pw) if user else mr.Credentials.password_only(pw))
        return h

    # ---- connections -------------------------------------------------------------------------------------------
    def _connect(self):
        self.stack = self.dev.network()
        if self.c is None:
            self.c = self.h.connect(stack=self.stack)
        if self.listen and self.sub is None:
            try:
                self.lc = self.hl.connect(stack=self.stack)
                self.sub = self.lc.subscribe(self.cmd_channel)
                print("listening for commands on %s (%s)" % (self.cmd_channel, COMMANDS_HELP))
            except (ImportError, AttributeError) as e:
                # the library was installed without microredis/pubsub.py (package-pubsub.json)
                print("commands disabled (no pub/sub in this microredis install):", e)
                self.listen = False
                self._drop_listener()

    def _drop_listener(self):
        self.sub = None
        self.lc = None
        self.hl.disconnect()

    def drop(self):
        """Forget both connections; the next cycle dials again."""
        self.c = None
        self.h.disconnect()
        self._drop_listener()

    # ---- one reading -------------------------------------------------------------------------------------------
    def send(self, seq, temp):
        c = self.c
        t = "%.2f" % temp
        payload = '{"id":"%s","seq":%d,"temp":%s}' % (self.device_id, seq, t)
        with c.pipeline():  # three commands, one write
            f1 = c.set(self.key_temp, t, ex=int(self.cfg["TTL_S"]))
            f2 = c.publish(self.channel, payload)
            f3 = c.xadd(self.stream, {"temp": t, "seq": seq}, maxlen=int(self.cfg["STREAM_MAXLEN"]),
                        approximate=True)
        f1.wait()
        listeners = f2.wait()
        entry = f3.wait()
        print("#%d %s C -> %s (%d subscriber%s), stream id %s"
              % (seq, t, self.key_temp, listeners, "" if listeners == 1 else "s", _s(entry)))

    # ---- commands ----------------------------------------------------------------------------------------------
    def handle(self, payload):
        cmd = bytes(payload).strip().lower()
        self.commands += 1
        if cmd == b"led on" or cmd == b"led off" or cmd == b"led toggle":
            on = (not self.led_on) if cmd == b"led toggle" else cmd == b"led on"
            self.dev.led(on)
            self.led_on = on
            state = "on" if on else "off"
            ack = "led " + state
            if self.c is not None:
                self.c.set(self.key_led, state)  # fire and forget: its reply is read with the next one
        elif cmd == b"ping":
            ack = "pong"
        else:
            ack = "error: unknown command %r (%s)" % (_s(cmd), COMMANDS_HELP)
        print("command %r -> %s" % (_s(cmd), ack))
        if self.c is not None:
            self.c.publish(self.ack_channel, ack).wait()

    def check_listener(self):
        """A half-open connection (the Wi-Fi went away and came back) never delivers again: PING it, and drop it
        when it does not answer, so the next cycle subscribes again."""
        if self.sub is None:
            return
        try:
            self.sub.ping()
        except (mr.RedisError, OSError) as e:
            print("listener: no answer to PING (%s): re-subscribing" % e)
            self._drop_listener()

    def idle(self, ms):
        """Wait ms milliseconds, handling commands meanwhile (a plain sleep without a listener)."""
        clock = self.clock
        start = clock.ticks_ms()
        while True:
            left = ms - clock.ticks_diff(clock.ticks_ms(), start)
            if left <= 0:
                return
            sub = self.sub
            if sub is None:
                sleep_ms(left)
                return
            try:
                m = sub.receive(timeout_ms=left)
            except (mr.RedisError, OSError) as e:
                # the command connection failed: the next cycle subscribes again
                print("listener: %s: %s" % (type(e).__name__, e))
                self._drop_listener()
                continue
            if m is not None:
                try:
                    self.handle(m.payload)
                except (mr.RedisError, OSError) as e:
                    # the acknowledgement (telemetry connection) failed: the next cycle dials again
                    print("acknowledgement failed: %s: %s" % (type(e).__name__, e))
                    self.c = None
                    self.h.disconnect()

    # ---- the loop ----------------------------------------------------------------------------------------------
    def run(self):
        cfg = self.cfg
        limit = int(cfg["READINGS"])
        interval = int(cfg["INTERVAL_MS"])
        backoff0 = int(cfg["BACKOFF_MS"])
        backoff_max = int(cfg["MAX_BACKOFF_MS"])
        reset_after = int(cfg["RESET_AFTER"])
        report = int(cfg["MEM_REPORT_EVERY"])
        ping_every = int(cfg["LISTENER_PING_EVERY"])
        print("microredis %s telemetry: device %s -> %s:%s every %d ms%s"
              % (mr.__version__, self.device_id, cfg["REDIS_HOST"], cfg["REDIS_PORT"], interval,
                 (", %d readings" % limit) if limit else ""))
        clock = self.clock
        seq = 0
        fails = 0
        while not limit or seq < limit:
            seq += 1
            start = clock.ticks_ms()
            wait = interval
            try:
                self._connect()
                self.send(seq, self.dev.temperature())
                self.sent += 1
                fails = 0
                if ping_every and seq % ping_every == 0:
                    self.check_listener()
            except (mr.RedisError, OSError, MemoryError) as e:
                fails += 1
                self.failed += 1
                self.drop()
                wait = min(backoff_max, backoff0 << min(fails - 1, 16))
                if wait < interval:
                    wait = interval
                print("#%d failed (%d in a row): %s: %s; next try in %d ms" % (seq, fails, type(e).__name__, e, wait))
                if reset_after and fails >= reset_after:
                    print("%d failed cycles in a row: resetting" % fails)
                    self.dev.reset()
            gc.collect()
            if report and (seq == 1 or seq % report == 0):
                print("mem_free %d" % mem_free())
            if limit and seq >= limit:
                break
            self.idle(wait - clock.ticks_diff(clock.ticks_ms(), start))
        self.close()
        print("done: %d sent, %d failed, %d command%s" % (self.sent, self.failed, self.commands,
                                                          "" if self.commands == 1 else "s"))
        return self.sent

    def close(self):
        try:
            if self.sub is not None:
                self.sub.close()
            if self.c is not None:
                self.c.close()
        except (mr.RedisError, OSError):
            pass
        self.drop()


def _s(v):
    if isinstance(v, (bytes, bytearray)):
        try:
            return bytes(v).decode()
        except UnicodeError:
            return repr(v)
    return str(v)


def run(cfg, device):
    """Run the telemetry loop; returns the number of readings sent (when READINGS limits it)."""
    return Telemetry(cfg, device).run()


def start(cfg, make_device, id_prefix):
    """A board's main(): the device from its settings, then run() for ever. An exception that escapes run() is a
    bug, not an outage (those are handled in the loop): show it, then reset the board and start over."""
    if not cfg["DEVICE_ID"]:
        cfg["DEVICE_ID"] = unique_id(id_prefix)
    device = make_device(cfg)  # a settings error stops here, with its message, at the REPL
    try:
        run(cfg, device)
    except Exception as e:
        print_exc(e)
        print("unexpected error: resetting in 10 s (Ctrl-C for the REPL)")
        time.sleep(10)
        device.reset()
