# Fake CircuitPython `microcontroller` (see README.md).


class _Cpu:
    temperature = 36.5
    uid = bytearray(b"\x01\x02\x03\x04\x05\x06")


cpu = _Cpu()


def reset():
    print("FAKE microcontroller.reset()")
    raise SystemExit(3)
