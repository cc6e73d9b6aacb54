"""CPython side of the benchmark (run by bench/run.py; not a test).

usage: python cp_bench.py HOST PORT ROUNDS TARGET_MS MODE      MODE: rate | profile
rate: microredis (frame_capacity 16) against redis-py (protocol 3) with its pure-Python RESP3 parser and with
hiredis, all in this one process, alternated (who goes first rotates) per round. profile: cProfile of microredis
SETs, calls per SET. Prints one line: RESULT <json>.
"""
import json
import os
import sys
import time

HOST, PORT, ROUNDS, TARGET_MS, MODE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import microredis as mr  # noqa: E402

KEYS = [b"bench:cp%d" % i for i in range(16)]


def microredis_client():
    return mr.ConnectionHandler.resp3((HOST, PORT)).memory(mr.MemoryParameters(frame_capacity=16)).connect()


def rates():
    import redis
    from redis._parsers import _RESP3Parser
    try:
        from redis._parsers import _HiredisParser
        import hiredis
        hv = hiredis.__version__
    except ImportError as e:
        _HiredisParser, hv = None, "missing (%s)" % e
    c = microredis_client()
    libs = {"microredis": None, "redis-py": _RESP3Parser, "redis-py+hiredis": _HiredisParser}
    fns = {}
    for name, parser in libs.items():
        if name == "microredis":
            def s(c=c):
                if c.set(b"bench:cp", b"21.50").wait() is not True:
                    raise AssertionError

            def b(c=c):
                with c.pipeline():
                    fs = [c.set(k, b"21.50") for k in KEYS]
                for f in fs:
                    if f.wait() is not True:
                        raise AssertionError
        elif parser is None:
            continue
        else:
            r = redis.Redis(connection_pool=redis.ConnectionPool(host=HOST, port=PORT, protocol=3,
                                                                 parser_class=parser))
            r.ping()
            if type(r.connection_pool._available_connections[0]._parser) is not parser:
                raise AssertionError("redis-py did not take parser_class")
            pipe = r.pipeline(transaction=False)

            def s(r=r):
                if r.set(b"bench:cp", b"21.50") is not True:
                    raise AssertionError

            def b(pipe=pipe):
                for k in KEYS:
                    pipe.set(k, b"21.50")
                if not all(x is True for x in pipe.execute()):
                    raise AssertionError
        fns[name] = {"set": s, "p16": b}

    def rate(fn, n, k):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return n * k / (time.perf_counter() - t0)

    out = {name: {"set": [], "p16": []} for name in fns}
    names = list(fns)
    reps = {}
    for name in names:
        for op, k in (("set", 1), ("p16", 16)):
            reps[(name, op)] = max(1, int(rate(fns[name][op], 50, 1) * TARGET_MS / 1000))
    for rnd in range(ROUNDS):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        for op, k in (("set", 1), ("p16", 16)):
            for name in order:
                out[name][op].append(rate(fns[name][op], reps[(name, op)], k))
    return {"rate": out, "redis-py": redis.__version__, "hiredis": hv,
            "redis-py-file": os.path.dirname(redis.__file__)}


def profile():
    import cProfile
    import pstats
    c = microredis_client()
    n = 2000
    for _ in range(100):
        c.set(b"bench:cp", b"21.50").wait()
    p = cProfile.Profile()
    p.enable()
    for _ in range(n):
        c.set(b"bench:cp", b"21.50").wait()
    p.disable()
    st = pstats.Stats(p)
    rows = []
    for (fname, line, func), (cc, nc, tt, ct, callers) in st.stats.items():
        where = os.path.basename(fname) if fname != "~" else "builtin"
        rows.append(("%s:%s" % (where, func), nc / n, tt * 1e6 / n, ct * 1e6 / n))
    rows.sort(key=lambda r: -r[2])
    return {"n": n, "rows": rows, "total_us": st.total_tt * 1e6 / n}


print("RESULT " + json.dumps(rates() if MODE == "rate" else profile()))
