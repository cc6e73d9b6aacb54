"""Converts an Outbox log of the first format (magic 0xA5, Fletcher-16, numbers implied by position) to journal.py's."""
# Loaded once, on the first start after an upgrade. The pending readings keep their order and numbers; the first
# format's ID runs cannot be expressed in the new one, so those readings get new IDs when they are sent: a reading
# whose XADD landed while its reply or acknowledgement was lost may then be stored twice (never lost).

import struct


def _chk(buf):
    a = 0
    b = 0
    for x in buf:
        a = (a + x) % 255
        b = (b + a) % 255
    return (b << 8) | a


def _old(f):
    # one record of the first format: (type, payload), or None at the end or at the first bad byte
    h = f.read(4)
    if len(h) < 4 or h[0] != 0xA5:
        return None
    n = h[2] | (h[3] << 8)
    rest = f.read(n + 2)
    if len(rest) < n + 2 or _chk(h + rest[:n]) != rest[n] | (rest[n + 1] << 8):
        return None
    return h[1], rest[:n]


def convert(path, log):
    import os
    from .journal import head, reading_record, remove
    done = 0
    try:
        with open(path + ".cur", "rb") as f:
            data = f.read()
        i = 0
        while i + 10 <= len(data):
            if _chk(data[i:i + 8]) == data[i + 8] | (data[i + 9] << 8):
                done = struct.unpack("<Q", data[i:i + 8])[0]
            i += 10
    except OSError:
        pass
    tmp = path + ".tmp"
    last = (0, 0)
    with open(path, "rb") as src:
        r = _old(src)
        if r is not None and r[0] == 72:  # "H": first reading number, last ID handed out
            k, lm, ls = struct.unpack("<QQQ", r[1])
            last = (lm, ls)
            r = _old(src)
        else:
            k = 0
        if done < k:
            done = k
        with open(tmp, "wb") as out:
            out.write(head(done, last[0], last[1], 0))
            while r is not None:
                if r[0] == 82:  # "R"
                    if k >= done:
                        p = r[1]
                        d = {}
                        i = 1
                        for _ in range(p[0]):
                            n = p[i] | (p[i + 1] << 8)
                            f = bytes(p[i + 2:i + 2 + n])
                            i += 2 + n
                            n = p[i] | (p[i + 1] << 8)
                            d[f] = bytes(p[i + 2:i + 2 + n])
                            i += 2 + n
                        out.write(reading_record(k, d))
                    k += 1
                r = _old(src)
            out.flush()
    remove(path)
    os.rename(tmp, path)
    remove(path + ".cur")
