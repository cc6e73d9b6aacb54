"""Integers of more than 18 digits in a reply (RESP3 big numbers, huge integers), loaded by the reader on the first,
and the digits of an int argument of more than 20 (encoder.py)."""

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_E_INTEGER = const(11)  # invalid integer (Reader._bad(), as in resp.py)
_BIG_CHUNK = const(4000)  # digits per int() call: CPython refuses str->int beyond 4300 digits


def big(r, buf, start, p, eol):
    # the value of the digits buf[p:eol] (the sign is the caller's); r: the Reader, whose _bad() words an error
    i = p
    while i < eol:
        c = buf[i]
        if c < 48 or c > 57:  # digits only: int() would also take "_" and spaces
            raise r._bad(_E_INTEGER, buf, start, i)
        i += 1
    # chunks combined pairwise: CPython's int() refuses more than 4300 digits, and digit by digit is quadratic; the
    # first chunk is the short one, as if zero-padded
    i = _BIG_CHUNK
    n = eol - p
    k = p + (n % i or i)
    v = [int(bytes(buf[p:k]))]
    while k < eol:
        v.append(int(bytes(buf[k:k + i])))
        k += i
    b = 10 ** i  # i, not the const: mpy-cross would fold 10 ** 4000 into a 4 KB constant
    while len(v) > 1:
        if len(v) & 1:
            v.insert(0, 0)
        i = 0
        while i * 2 < len(v):
            v[i] = v[2 * i] * b + v[2 * i + 1]
            i += 1
        v = v[:i]
        b = b * b
    return v[0]


def digits(v):
    # the decimal digits of the int v as bytes: str(v), except past CPython's limit of 4300 digits
    # (sys.set_int_max_str_digits; MicroPython has none), where they come in chunks of _BIG_CHUNK digits
    try:
        return str(v).encode()
    except ValueError:
        pass
    i = _BIG_CHUNK
    b = 10 ** i  # (see big())
    neg = v < 0
    if neg:
        v = -v
    out = []
    while v >= b:
        v, r = divmod(v, b)
        r = str(r)
        out.append("0" * (i - len(r)) + r)  # every chunk but the first holds exactly i digits
    out.append(str(v) if not neg else "-" + str(v))
    out.reverse()
    return "".join(out).encode()
