"""Checksummed records and synced writes on a board's flash, for the Outbox's journal and the Inbox's file."""
# Record: MAGIC | type | length (2 bytes LE) | payload | CRC-32 (4 bytes LE) of everything before it. A write cut
# short or a flipped bit never passes the CRC; readers resynchronise on the next offset that holds a whole record.

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

import struct

_MAGIC = const(0x9E)
_HDR = const(4)
_OVER = const(8)  # header + CRC


try:
    from binascii import crc32 as _crc32
except ImportError:  # a port built without it: the same CRC in Python (slow, but only records on flash use it)
    _crc32 = None


def crc(data):
    if _crc32 is not None:
        return _crc32(data) & 0xFFFFFFFF
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def record(typ, payload):
    n = len(payload)
    out = bytearray(_OVER + n)
    out[0] = _MAGIC
    out[1] = typ
    out[2] = n & 0xFF
    out[3] = n >> 8
    out[_HDR:_HDR + n] = payload
    struct.pack_into("<I", out, _HDR + n, crc(memoryview(out)[:_HDR + n]))
    return out


def sync(f):
    f.flush()
    import os
    fs = getattr(os, "fsync", None)
    if fs is not None and hasattr(f, "fileno"):
        fs(f.fileno())  # CPython: just this file (os.sync would flush every file system)
    else:
        s = getattr(os, "sync", None)
        if s is not None:
            s()


def size(path):
    import os
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def remove(path):
    import os
    try:
        os.remove(path)
    except OSError:
        pass
