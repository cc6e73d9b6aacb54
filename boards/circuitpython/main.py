"""microredis telemetry on CircuitPython (any board with Wi-Fi: ESP32-S2/S3/C3, Pico W ...): the MCU's
temperature sensor, the on-board LED, Wi-Fi through wifi.radio and socketpool.

Files on the CIRCUITPY drive (`make deploy BOARD=circuitpython CIRCUITPY=/media/$USER/CIRCUITPY`):
    /code.py                 this file (CircuitPython runs code.py; main.py works too)
    /telemetry.py            boards/common/telemetry.py (the shared loop)
    /settings.toml           your copy of settings.example.toml (Wi-Fi, Redis address, device id)
    /lib/microredis/*.py     the library as .py: CircuitPython's .mpy format differs from MicroPython's
"""
import os

import microcontroller
import socketpool
import wifi

import telemetry

# settings.toml: CIRCUITPY_WIFI_SSID and CIRCUITPY_WIFI_PASSWORD are CircuitPython's own Wi-Fi settings
cfg = telemetry.load_config(None, lambda n: os.getenv(("CIRCUITPY_" + n) if n in ("WIFI_SSID", "WIFI_PASSWORD") else n))


class CircuitPythonBoard:
    def __init__(self):
        self.pool = socketpool.SocketPool(wifi.radio)  # one pool for the life of the program
        self.io = None
        try:
            import board
            import digitalio
            self.io = digitalio.DigitalInOut(getattr(board, cfg["LED_PIN"] or "LED"))  # pyright: ignore[reportArgumentType]
            self.io.direction = digitalio.Direction.OUTPUT
        except (ImportError, ValueError, AttributeError) as e:
            print("no LED:", e)

    def network(self):
        for attempt in (1, 2, 3):  # bounded: the reading waits in the outbox, and the next cycle tries again
            if wifi.radio.connected:
                return self.pool  # -> ConnectionHandler.connect(stack=pool)
            print("wifi: connecting to %r (attempt %d/3)" % (cfg["WIFI_SSID"], attempt))
            try:
                wifi.radio.connect(cfg["WIFI_SSID"], cfg["WIFI_PASSWORD"], timeout=cfg["WIFI_TIMEOUT_MS"] / 1000)
            except Exception as e:  # ConnectionError ("No network with that ssid"), OSError ...
                print("wifi:", e)
        if not wifi.radio.connected:
            raise OSError("wifi: no connection to %r" % cfg["WIFI_SSID"])
        return self.pool

    def temperature(self):
        return microcontroller.cpu.temperature

    def led(self, on):
        if self.io is None:
            print("LED", "on" if on else "off", "(no LED on this board)")
        else:
            self.io.value = on

    def reset(self):
        microcontroller.reset()


telemetry.start(cfg, CircuitPythonBoard(), "cpy-%02x%02x%02x" % tuple(microcontroller.cpu.uid[-3:]))
