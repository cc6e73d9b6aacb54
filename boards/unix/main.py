"""microredis telemetry on the MicroPython unix port: the boards/ program with a simulated sensor.

    MICROPYPATH=lib:boards/common:.frozen REDIS_PORT=6379 READINGS=5 micropython boards/unix/main.py

Settings come from the environment first, then boards/unix/config.py (copy config.example.py; it is not in git),
then the defaults in boards/common/telemetry.py. `make demo` drives this program. The exit status is 1 when no
reading was delivered.
"""
import math
import os
import sys

import telemetry

try:
    import config
except ImportError:
    config = None


class UnixDevice:
    def __init__(self):
        self.n = 0

    def network(self):
        return None  # the host's network is always up; the stack is the socket module

    def temperature(self):
        self.n += 1  # a slow, deterministic wave around 21.5 C, standing in for a sensor
        return 21.5 + 1.5 * math.sin(self.n / 3)

    def led(self, on):
        print("LED", "on" if on else "off", "(simulated)")

    def reset(self):
        sys.exit(3)


cfg = telemetry.load_config(config, getattr(os, "getenv", None))
if telemetry.Telemetry(cfg, UnixDevice(), cfg["DEVICE_ID"] or "unix-1").run() == 0:
    sys.exit(1)
