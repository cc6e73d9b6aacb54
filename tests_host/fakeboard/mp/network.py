# Fake MicroPython `network` (see README.md).
from _fakewifi import LINK

STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_GOT_IP = 3
STAT_NO_AP_FOUND = 201
_hostname = "mpy"


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = on

    def config(self, **kw):
        print("FAKE wlan config %s" % sorted(kw.items()))

    def connect(self, ssid, password):
        if not self._active:
            raise OSError("wifi not active")
        LINK.connect(ssid)

    def disconnect(self):
        LINK.connected = False

    def isconnected(self):
        return LINK.check()

    def status(self):
        return STAT_GOT_IP if LINK.connected else STAT_NO_AP_FOUND

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
