"""The arguments of set() with options (ex, px, nx, ...), loaded on first use: a core that never sets them
keeps their code and constants out of RAM."""


def set_args(key, value, ex, px, nx, xx, keepttl, get, exat, pxat):
    args = [b"SET", key, value]
    for name, v in ((b"EX", ex), (b"PX", px), (b"EXAT", exat), (b"PXAT", pxat)):
        if v is not None:
            if type(v) is not int or v <= 0:
                raise ValueError("%s must be a positive int" % name.decode())
            args.append(name)
            args.append(v)
    if nx and xx:
        raise ValueError("nx and xx are mutually exclusive")
    for name, v in ((b"NX", nx), (b"XX", xx), (b"KEEPTTL", keepttl), (b"GET", get)):
        if v:
            args.append(name)
    return args
