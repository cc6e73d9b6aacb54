"""microredis telemetry on CircuitPython (any board with Wi-Fi: ESP32-S2/S3/C3, Pico W ...): the MCU's
temperature sensor, the on-board LED, Wi-Fi through wifi.radio and socketpool.

Files on the CIRCUITPY drive (`make deploy BOARD=circuitpython CIRCUITPY=/media/$USER/CIRCUITPY`):
    /code.py                 this file (CircuitPython runs code.py; main.py works too)
    /telemetry.py            boards/common/telemetry.py (the shared loop)
    /settings.toml           your copy of settings.example.toml (Wi-Fi, Redis address, device id)
    /lib/microredis/*.py     the library as .py: CircuitPython's .mpy format differs from MicroPython's

Sensor: microcontroller.cpu.temperature (degrees Celsius).
"""
import os
import time

import microcontroller
import socketpool
import wifi

import telemetry


def getenv(name):
    # settings.toml: CIRCUITPY_WIFI_SSID / CIRCUITPY_WIFI_PASSWORD are CircuitPython's own Wi-Fi settings
    if name == "WIFI_SSID" or name == "WIFI_PASSWORD":
        return os.getenv("CIRCUITPY_" + name)
    return os.getenv(name)


class CircuitPythonBoard(telemetry.Device):
    name = "cpy"

    def __init__(self, cfg):
        self.ssid = cfg["WIFI_SSID"]
        self.password = cfg["WIFI_PASSWORD"]
        if not self.ssid:
            raise ValueError("CIRCUITPY_WIFI_SSID is not set (settings.toml)")
        self.pool = None
        self.io = None
        try:
            import board
            import digitalio

            pin = getattr(board, cfg["LED_PIN"] or "LED", None)
            if pin is not None:
                self.io = digitalio.DigitalInOut(pin)
                self.io.direction = digitalio.Direction.OUTPUT
        except (ImportError, ValueError, AttributeError) as e:
            print("no LED:", e)

    def _connected(self):
        c = getattr(wifi.radio, "connected", None)  # CircuitPython 9+
        return c if c is not None else wifi.radio.ipv4_address is not None

    def network(self):
        if not self._connected():
            for attempt in (1, 2, 3):  # bounded: then the telemetry loop backs off and calls again
                print("wifi: connecting to %r (attempt %d/3)" % (self.ssid, attempt))
                try:
                    wifi.radio.connect(self.ssid, self.password, timeout=15)
                except Exception as e:  # ConnectionError ("No network with that ssid"), OSError ...
                    print("wifi:", e)
                if self._connected():
                    print("wifi: connected, address", wifi.radio.ipv4_address)
                    break
                time.sleep(1 << (attempt - 1))
            else:
                raise OSError("wifi: could not connect to %r" % (self.ssid,))
        if self.pool is None:
            self.pool = socketpool.SocketPool(wifi.radio)  # one pool for the life of the program
        return self.pool  # -> ConnectionHandler.connect(stack=pool)

    def temperature(self):
        return microcontroller.cpu.temperature

    def led(self, on):
        if self.io is None:
            print("LED", "on" if on else "off", "(no LED on this board)")
        else:
            self.io.value = on

    def reset(self):
        microcontroller.reset()


def main():
    telemetry.start(telemetry.load_config(None, getenv), CircuitPythonBoard, "cpy")


main()
