# Fake CircuitPython `wifi` (see README.md).
from _fakewifi import LINK


class _Radio:
    @property
    def connected(self):
        return LINK.check()

    @property
    def ipv4_address(self):
        return "127.0.0.1" if LINK.connected else None

    def connect(self, ssid, password=None, *, channel=0, bssid=None, timeout=None):
        LINK.connect(ssid)
        if not LINK.connected:
            raise ConnectionError("No network with that ssid")


radio = _Radio()
