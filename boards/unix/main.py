"""microredis telemetry on the MicroPython unix port: the boards/ program with a simulated sensor.

    MICROPYPATH=lib:boards/common:.frozen REDIS_PORT=6379 READINGS=5 micropython boards/unix/main.py

Settings come from the environment first, then boards/unix/config.py (copy config.example.py; it is not in git),
then the defaults in boards/common/telemetry.py. `make demo` drives this program. The exit status is 1 when no
reading could be sent.
"""
import math
import os
import sys

import telemetry

try:
    import config
except ImportError:
    config = None


class UnixDevice(telemetry.Device):
    name = "unix"

    def __init__(self):
        self.n = 0
        self.led_state = False

    def network(self):
        return None  # the host's network is always up; the platform's socket module is the stack

    def temperature(self):
        # a slow, deterministic wave around 21.5 C, standing in for a sensor
        self.n += 1
        return 21.5 + 1.5 * math.sin(self.n / 3)

    def led(self, on):
        self.led_state = on
        print("LED", "on" if on else "off", "(simulated)")


def main():
    cfg = telemetry.load_config(config, getattr(os, "getenv", None))
    if not cfg["DEVICE_ID"]:
        cfg["DEVICE_ID"] = "unix-1"
    sent = telemetry.run(cfg, UnixDevice())
    if sent == 0:
        sys.exit(1)


main()
