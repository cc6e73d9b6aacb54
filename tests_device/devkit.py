# Helpers the client tests share (tests_device/t_*.py): the test server's handler, an in-process client over a
# scripted transport (whole or in chunks), transport wrappers that count socket calls or interrupt one, raw RESP,
# files for the file-backed tests, asyncio on both runtimes.
# Kept out of tinytest.py, which the 64 KiB-heap modules load: this one is loaded only by modules that drive a
# client. microredis is imported inside the functions that need it, so importing this module loads nothing more
# (tinytest is loaded by every test module anyway).
import os

import cfg
from tinytest import sleep_ms, now_ms


def handler(proto=3, tmo=2000, mem=None):
    """A ConnectionHandler for the test server (RESP3 or RESP2), timeout tmo ms, optional MemoryParameters."""
    from microredis.connection import ConnectionHandler

    h = ConnectionHandler(cfg.server(), proto).timeout(tmo)
    if mem is not None:
        h.memory(mem)
    return h


def admin(*delete):
    """Another connection to the test server (RESP3), for what the connection under test cannot do itself; the keys
    named are deleted first."""
    a = handler().connect()
    if delete:
        a.command(b"DEL", *delete).wait()
    return a


def uncapped():
    """A connection to the test server with no cap on a reply's size, for server-wide listings (CLIENT LIST, INFO):
    they grow with the clients and commands the whole session left behind, and with the server (a CLIENT LIST line is
    about 217 bytes on Redis 6.2, 263 on 7.0, 333 on Valkey 8.1), past the default 16 KB memory_limit."""
    from microredis.resp import MemoryParameters

    return handler(mem=MemoryParameters(memory_limit=None)).connect()


def client_list(kind=None):
    """The lines of CLIENT LIST (CLIENT LIST TYPE kind: b"normal", b"pubsub"), read whole whatever their size."""
    a = uncapped()
    try:
        return a.command(b"CLIENT", b"LIST", *((b"TYPE", kind) if kind else ())).wait().split(b"\n")
    finally:
        a.close()


def has_command(name):
    """True when the test server knows the command (COMMAND INFO answers [nil] for one it does not): a test of what
    only some servers have (SSUBSCRIBE, FCALL: Redis 7 and Valkey, not 6.2) asks the server, not its version."""
    a = handler().connect()
    try:
        return a.command(b"COMMAND", b"INFO", name).wait()[0] is not None
    finally:
        a.close()


def tmpdir():
    """Where the file-backed tests write: cfg.get("tmpdir"), else $TMPDIR, else /tmp, else the current folder."""
    d = cfg.get("tmpdir") or cfg.getenv("TMPDIR") or "/tmp"
    try:
        os.stat(d)
        return d
    except OSError:
        return "."


def tmppath(kind, name):
    """A file name in tmpdir() for a test of kind ("outbox", "inbox"), with nothing there yet (see cleanup())."""
    p = tmpdir() + "/mr_%s_%s_%d" % (kind, name, now_ms() % 1000000)
    cleanup(p)
    return p


def cleanup(p):
    """Removes the file p and the twins a rewrite leaves (.cur, .tmp)."""
    for suffix in ("", ".cur", ".tmp"):
        try:
            os.remove(p + suffix)
        except OSError:
            pass


class Script:
    # an in-process transport: records what is sent (out), serves the scripted bytes of inb (add() appends)
    def __init__(self):
        self.inb = b""
        self.out = b""
        self.closed = False

    def add(self, data):
        self.inb += data

    def send(self, buf, n):
        self.out += bytes(buf[0:n])

    def send_obj(self, o):
        self.out += bytes(o)

    def recv_into(self, buf, start, ms):
        n = len(buf) - start
        if n > len(self.inb):
            n = len(self.inb)
        if n == 0:
            if ms < 0:
                raise AssertionError("the client waits for a reply the script does not have")
            return 0
        buf[start:start + n] = self.inb[0:n]
        self.inb = self.inb[n:]
        return n

    def close(self):
        self.closed = True


class Chunks(Script):
    # delivers each chunk given to add() in its own receive (as TCP may split a reply anywhere); with nothing left it
    # waits like a socket that gets no more data
    def __init__(self):
        Script.__init__(self)
        self.chunks = []

    def add(self, *chunks):
        for c in chunks:
            self.chunks.append(c)

    def recv_into(self, buf, start, ms):
        if not self.chunks:
            sleep_ms(ms if 0 <= ms < 1000 else 50)
            return 0
        c = self.chunks[0]
        n = len(buf) - start
        if n > len(c):
            n = len(c)
        buf[start:start + n] = c[0:n]
        if n < len(c):
            self.chunks[0] = c[n:]
        else:
            self.chunks.pop(0)
        return n


def fake_client(t, params, timeout, decode=False, protocol=3):
    """A commands.Client on transport t (no socket, no handshake), already speaking `protocol`."""
    from microredis.connection import _Conn
    from microredis.commands import Client
    from microredis.clock import default_clock

    conn = _Conn(t, params, decode)
    conn.protocol = protocol
    c = Client(conn, timeout, default_clock())
    conn.client = c
    return c


def chunked_client(protocol=3, decode=False, buffer_size=128, limit=4096, timeout=300, cap=8, t=None):
    """(client, transport): a fake_client() on t, by default a new Chunks, with these MemoryParameters."""
    from microredis.resp import MemoryParameters

    if t is None:
        t = Chunks()
    params = MemoryParameters(buffer_size=buffer_size, frame_capacity=cap, memory_limit=limit)
    return fake_client(t, params, timeout, decode, protocol), t


def outcome(f):
    """f.wait()'s value, or the name of the class of the exception it raised."""
    try:
        return f.wait()
    except Exception as e:
        return type(e).__name__


def interpose(c, w):
    """Puts transport wrapper w between client c and its transport (sends and receives); returns w."""
    c._transport = w
    c._encoder.sink = w
    return w


class Counting:
    # wraps a transport to count socket calls
    def __init__(self, t):
        self.t = t
        self.sends = 0
        self.recvs = 0

    def send(self, buf, n):
        self.sends += 1
        self.t.send(buf, n)

    def send_obj(self, o):
        self.sends += 1
        self.t.send_obj(o)

    def recv_into(self, buf, start, ms):
        self.recvs += 1
        return self.t.recv_into(buf, start, ms)

    def close(self):
        self.t.close()


def counting(c):
    return interpose(c, Counting(c._transport))


class Interrupt:
    # wraps a transport: an exception put in recv_fail (send_fail) is raised, once, by the next receive (send), which
    # then reads (sends) nothing: ^C while a reply is read (a command is written)
    def __init__(self, t):
        self.t = t
        self.recv_fail = None
        self.send_fail = None

    def send(self, buf, n):
        e = self.send_fail
        if e is not None:
            self.send_fail = None
            raise e
        self.t.send(buf, n)

    def send_obj(self, o):
        e = self.send_fail
        if e is not None:
            self.send_fail = None
            raise e
        self.t.send_obj(o)

    def recv_into(self, buf, start, ms):
        e = self.recv_fail
        if e is not None:
            self.recv_fail = None
            raise e
        return self.t.recv_into(buf, start, ms)

    def close(self):
        self.t.close()


def interrupt(c):
    return interpose(c, Interrupt(c._transport))


def bulk(b):
    """b as a RESP bulk string."""
    return b"$" + str(len(b)).encode() + b"\r\n" + b + b"\r\n"


def command(*args):
    """A command (str or bytes arguments) as RESP, written by hand (not by the encoder under test)."""
    out = ("*%d\r\n" % len(args)).encode()
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out += bulk(a)
    return out


def count_calls(obj, name):
    """Replaces obj.<name> with a wrapper that still calls it; returns a list that grows by one item a call."""
    calls = []
    real = getattr(obj, name)

    def counted(*args):
        calls.append(1)
        return real(*args)
    setattr(obj, name, counted)
    return calls


# ---- asyncio, the same on MicroPython's and CPython's (asyncio is imported by the first call, not with this module)
def aio_run(coro):
    """asyncio.run(coro); on MicroPython in a fresh event loop, so no task of an earlier test is left in its queues."""
    import asyncio
    from tinytest import IS_MICROPYTHON

    if IS_MICROPYTHON and hasattr(asyncio, "new_event_loop"):
        asyncio.new_event_loop()
    return asyncio.run(coro)


def aio_wait_for(coro, ms):
    """asyncio.wait_for in milliseconds (raises asyncio.TimeoutError)."""
    import asyncio

    if hasattr(asyncio, "wait_for_ms"):
        return asyncio.wait_for_ms(coro, ms)
    return asyncio.wait_for(coro, ms / 1000)


def aio_sleep(ms):
    import asyncio

    if hasattr(asyncio, "sleep_ms"):
        return asyncio.sleep_ms(ms)
    return asyncio.sleep(ms / 1000)


def heap_per_call(fn, n=20):
    """Bytes of heap traffic per call of fn (micropython.mem_total(): every request, bytecode frames included, which
    allocs() cannot see), over n calls after 3 warm-up calls, gc off; None where there is no such count (CPython)."""
    try:
        import micropython
        mem_total = micropython.mem_total
    except (ImportError, AttributeError):
        return None
    import gc
    for _ in range(3):
        fn()
    gc.collect()
    gc.disable()
    try:
        m = mem_total()
        for _ in range(n):
            fn()
        return (mem_total() - m) // n
    finally:
        gc.enable()


# ---- a catalogue test on both protocols (t_commands, t_streams) ---------------------------------------------------
def clean_keys(h, pre):
    """Deletes every key under pre through handler h (re-dials if a test broke the connection), then disconnects."""
    from tinytest import eq
    c = h.connect()
    keys = list(c.scan_iter(match=pre + b"*", count=100))
    if keys:
        c.delete(*keys).wait()
    eq(c._pending, 0)
    c.close()
    h.disconnect()


def each_protocol(fn, prefix, tmo=2000):
    """fn(client, key prefix, protocol) once per protocol (RESP3, then RESP2), on a fresh connection; the keys under
    prefix + b"3:"/b"2:" are deleted after."""
    for proto in (3, 2):
        h = handler(proto, tmo)
        c = h.connect()
        pre = prefix + (b"3:" if proto == 3 else b"2:")
        try:
            fn(c, pre, proto)
        finally:
            clean_keys(h, pre)


def server_version(c):
    """The server's major version, from INFO server."""
    info = c.info(b"server").wait()
    i = info.find(b"redis_version:") + 14
    return int(info[i:info.find(b".", i)])
