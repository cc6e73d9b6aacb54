"""microredis telemetry on an ESP32 (MicroPython): the chip's temperature sensor, the on-board LED, Wi-Fi.

Files on the board (`make deploy PORT=/dev/ttyUSB0 BOARD=esp32` puts them there):
    /main.py                 this file
    /telemetry.py|.mpy       boards/common/telemetry.py (the shared loop)
    /config.py               your copy of config.example.py (Wi-Fi, Redis address, device id)
    /lib/microredis/         the library (.mpy from `make mpy`, or `mpremote mip install ...`: core + survival)

Sensor: esp32.mcu_temperature() (ESP32-S2, -S3, -C3, -C6: degrees Celsius). The original ESP32 has only
esp32.raw_temperature() (Fahrenheit, uncalibrated, missing on some chip revisions): good enough for a demo.
"""
import esp32
import machine

import telemetry

try:
    import config
except ImportError:
    print("config.py is missing: copy config.example.py to config.py, edit it, and copy it to the board")
    raise

cfg = telemetry.load_config(config)


class Esp32:
    def __init__(self):
        pin = cfg["LED_PIN"]
        self.pin = machine.Pin(pin, machine.Pin.OUT) if pin is not None else None
        self.active_low = bool(getattr(config, "LED_ACTIVE_LOW", False))
        self.led(False)

    def network(self):
        return telemetry.wifi_up(cfg)

    def temperature(self):
        if hasattr(esp32, "mcu_temperature"):
            return esp32.mcu_temperature()  # pyright: ignore[reportAttributeAccessIssue]  (S2, S3, C3...)
        return (esp32.raw_temperature() - 32) / 1.8  # the original ESP32: Fahrenheit

    def led(self, on):
        if self.pin is None:
            print("LED", "on" if on else "off", "(no LED_PIN configured)")
        else:
            self.pin.value(1 if on != self.active_low else 0)

    def reset(self):
        machine.reset()


telemetry.start(cfg, Esp32(), "esp32-%02x%02x%02x" % tuple(machine.unique_id()[-3:]))
