# Shared by network.py (MicroPython) and wifi.py (CircuitPython): a Wi-Fi link that can fail and drop.
import os


def _env(name):
    v = os.getenv(name) if hasattr(os, "getenv") else None
    return int(v) if v else 0


class Link:
    def __init__(self):
        self.connected = False
        self.connects = 0
        self.checks = 0
        self.fail = _env("FAKE_WIFI_FAIL_CONNECTS")
        self.drop_at = _env("FAKE_WIFI_DROP_AT")

    def connect(self, ssid):
        self.connects += 1
        ok = self.connects > self.fail
        print("FAKE wifi connect %r #%d %s" % (ssid, self.connects, "ok" if ok else "fails"))
        self.connected = ok

    def check(self):
        if self.connected:
            self.checks += 1
            if self.checks == self.drop_at:
                print("FAKE wifi dropped")
                self.connected = False
        return self.connected


LINK = Link()
