# Fake MicroPython `esp32` (see README.md): an S3-style chip with mcu_temperature().


def mcu_temperature():
    return 41


def raw_temperature():
    return 106
