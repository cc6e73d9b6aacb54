# Fake CircuitPython `digitalio`.


class Direction:
    INPUT = 0
    OUTPUT = 1


class DigitalInOut:
    def __init__(self, pin):
        self.pin = pin
        self.direction = Direction.INPUT
        self._v = False

    @property
    def value(self):
        return self._v

    @value.setter
    def value(self, v):
        self._v = v
        print("FAKE pin %r = %d" % (self.pin, int(v)))
