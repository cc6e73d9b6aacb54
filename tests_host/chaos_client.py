"""The client half of the chaos soak (tests_host/test_chaos.py), portable: CPython imports it, MicroPython runs it:

    CHAOS_PORT=<proxy port> CHAOS_SECONDS=20 CHAOS_RUN=<prefix> micropython tests_host/chaos_client.py

It runs pipelined batches of SET key_i value_i / GET key_i / INCR counter / GET or get_into key_j (an older key)
through the fault proxy, and on any documented error drops the client and connect()s again (now and then with a
handler of the other protocol, RESP2 or RESP3). It prints what each wait() gave, one
line each, for the host to check against the server afterwards:

    S <key>               SET key acknowledged (wait() returned True)
    G <key> <acked> <val> GET key gave val (hex; "-" for None); acked: 1 if its SET was acknowledged before the GET
    I <n>                 INCR acknowledged with value n
    E <name>              a documented error (microredis.RedisError subclass)
    X <name> <text>       any other exception, or a wrong-typed value: always a failure
    SLOW <what> <ms>      a wait() or connect() that overran its deadline (+ margin): a failure
    DONE <batches>

A value encodes its key (value_i = b"v|" + key_i), so a reply delivered to the wrong future is detected.
"""

import sys
import time

import microredis as mr
from mstime import ms as _ms, since as _since  # tests_host/, next to this script

try:
    import random
except ImportError:  # pragma: no cover
    random = None

TIMEOUT_MS = 300
MARGIN_MS = 1500


def _hex(b):
    return "".join("%02x" % x for x in b)


def _rand(n):
    return random.getrandbits(16) % n


def value_of(key):
    return b"v|" + key


def _handler(addr, proto):
    h = mr.ConnectionHandler(addr, proto).timeout(TIMEOUT_MS)
    return h.memory(mr.MemoryParameters(buffer_size=256, frame_capacity=4, memory_limit=4096))


def run(addr, seconds, prefix, out):
    """out(line) receives the report lines. prefix: bytes, unique per run."""
    h = _handler(addr, 3)
    buf = bytearray(64)
    ctr = prefix + b":ctr"
    acked = []  # keys whose SET was acknowledged
    c = None
    i = 0
    batches = 0
    t_end = _ms()
    start = t_end
    while _since(start) < seconds * 1000:
        if c is None:
            if _rand(4) == 0:
                # now and then the next dial speaks the other protocol (a new handler; the old one is dropped)
                h.disconnect()
                h = _handler(addr, 5 - h.protocol)
            t0 = _ms()
            try:
                c = h.connect()
            except mr.RedisError as e:
                out("E " + type(e).__name__)
                c = None
            except Exception as e:  # noqa: BLE001
                out("X %s connect: %s" % (type(e).__name__, e))
                c = None
            ms = _since(t0)
            if ms > 3 * TIMEOUT_MS + MARGIN_MS:
                out("SLOW connect %d" % ms)
            if c is None:
                time.sleep(0.01)
                continue
        i += 1
        key = prefix + b":k:" + str(i).encode()
        old = acked[_rand(len(acked))] if acked else key
        old_acked = "1" if acked else "0"
        futs = []
        sent = _ms()
        try:
            n = _rand(4)
            with c.pipeline():
                futs.append(("S", key, c.set(key, value_of(key))))
                if n != 1:
                    futs.append(("G", key, "0", c.get(key)))
                if n != 2:
                    futs.append(("I", c.incr(ctr)))
                if n == 0:
                    futs.append(("J", old, old_acked, c.get_into(old, buf)))
                elif n != 3:
                    futs.append(("G", old, old_acked, c.get(old)))
        except mr.RedisError as e:
            out("E " + type(e).__name__)
        except Exception as e:  # noqa: BLE001
            out("X %s send: %s" % (type(e).__name__, e))
        broken = False
        for f in futs:
            try:
                v = f[-1].wait()
            except mr.RedisError as e:
                out("E " + type(e).__name__)
                broken = True
                continue
            except Exception as e:  # noqa: BLE001
                out("X %s wait: %s" % (type(e).__name__, e))
                broken = True
                continue
            finally:
                ms = _since(sent)
                if ms > TIMEOUT_MS + MARGIN_MS:
                    out("SLOW wait %d" % ms)
            kind = f[0]
            if kind == "S":
                if v is True:
                    out("S " + f[1].decode())
                    acked.append(f[1])
                else:
                    out("X SET gave %r" % (v,))
            elif kind == "J":
                # get_into: the length, the value in buf[:length]
                if v is None:
                    out("G %s %s -" % (f[1].decode(), f[2]))
                elif type(v) is int and 0 <= v <= len(buf):
                    out("G %s %s %s" % (f[1].decode(), f[2], _hex(buf[:v])))
                else:
                    out("X GET_INTO gave %r" % (v,))
            elif kind == "G":
                if v is None:
                    out("G %s %s -" % (f[1].decode(), f[2]))
                elif type(v) is bytes:
                    out("G %s %s %s" % (f[1].decode(), f[2], _hex(v)))
                else:
                    out("X GET gave %r" % (v,))
            else:
                if type(v) is int:
                    out("I %d" % v)
                else:
                    out("X INCR gave %r" % (v,))
        if broken or c._conn is None:
            try:
                c.close()
            except mr.RedisError:
                pass
            except Exception as e:  # noqa: BLE001
                out("X %s close: %s" % (type(e).__name__, e))
            c = None
        batches += 1
        if len(acked) > 200:
            acked = acked[-100:]
    try:
        if c is not None:
            c.close()
        h.disconnect()
    except mr.RedisError:
        pass
    except Exception as e:  # noqa: BLE001
        out("X %s disconnect: %s" % (type(e).__name__, e))
    out("DONE %d" % batches)


def main():
    import os
    port = int(os.getenv("CHAOS_PORT"))
    seconds = int(os.getenv("CHAOS_SECONDS") or "20")
    prefix = (os.getenv("CHAOS_RUN") or "chaos-mp").encode()
    random.seed(_ms())
    run(("127.0.0.1", port), seconds, prefix, print)


if __name__ == "__main__":
    main()
    sys.exit(0)
