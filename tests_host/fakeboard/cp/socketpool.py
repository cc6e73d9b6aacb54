# Fake CircuitPython `socketpool`: tests_device/fakepool.py, a faithful SocketPool over real sockets.
from fakepool import SocketPool  # noqa: F401
