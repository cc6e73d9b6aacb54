# Fake MicroPython `machine` (see README.md).


class Pin:
    OUT = 1
    IN = 0

    def __init__(self, id, mode=IN):
        self.id = id
        self._v = 0

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = v
        print("FAKE pin %r = %d" % (self.id, v))


class ADC:
    def __init__(self, ch):
        self.ch = ch

    def read_u16(self):
        return 14021 if self.ch == 4 else 0  # about 0.706 V: 27 C on the RP2040 sensor


def unique_id():
    return b"\xde\xad\xbe\xef\x01\x02"


def reset():
    print("FAKE machine.reset()")
    raise SystemExit(3)
