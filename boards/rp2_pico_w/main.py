"""microredis telemetry on a Raspberry Pi Pico W / Pico 2 W (MicroPython): the RP2040's temperature sensor,
the on-board LED, Wi-Fi.

Files on the board (`make deploy PORT=/dev/ttyACM0 BOARD=rp2_pico_w` puts them there):
    /main.py                 this file
    /telemetry.py|.mpy       boards/common/telemetry.py (the shared loop)
    /config.py               your copy of config.example.py (Wi-Fi, Redis address, device id)
    /lib/microredis/         the library (.mpy from `make mpy`, or `mpremote mip install ...`: core + survival)

Sensor: ADC channel 4 is the chip's temperature sensor: 27 - (V - 0.706) / 0.001721 degrees Celsius.
"""
import machine
import network

import telemetry

try:
    import config
except ImportError:
    print("config.py is missing: copy config.example.py to config.py, edit it, and copy it to the board")
    raise

cfg = telemetry.load_config(config)


class PicoW:
    def __init__(self):
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        pm = getattr(config, "WIFI_POWER_SAVE", 0xA11140)  # the CYW43's power saving off: commands arrive at once
        if pm is not None:
            wlan.config(pm=pm)
        self.adc = machine.ADC(4)
        pin = cfg["LED_PIN"]
        self.pin = machine.Pin(pin if pin is not None else "LED", machine.Pin.OUT)  # "LED": the CYW43's GPIO
        self.led(False)

    def network(self):
        return telemetry.wifi_up(cfg)

    def temperature(self):
        volts = self.adc.read_u16() * 3.3 / 65535
        return 27 - (volts - 0.706) / 0.001721

    def led(self, on):
        self.pin.value(1 if on else 0)

    def reset(self):
        machine.reset()


telemetry.start(cfg, PicoW(), "picow-%02x%02x%02x" % tuple(machine.unique_id()[-3:]))
