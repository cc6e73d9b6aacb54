"""Lua scripts: client.register_script(lua) -> Script; script.run(keys, args) sends EVALSHA, and EVAL when the server
answers NOSCRIPT (it restarted, SCRIPT FLUSH, a failover), so a script is sent whole only when the server lacks it."""
# Loaded by the first client.register_script() (commands.py); the core never imports it. Not a hot path: a run
# allocates its argument list and the object it returns (README "Scripts").

from .errors import ConnectionError, InvalidFuture, ProtocolError, RedisError, ReplyError

# MicroPython has hashlib.sha1 where the port is built with TLS (MICROPY_PY_HASHLIB_SHA1 defaults to MICROPY_PY_SSL);
# CircuitPython has only hashlib.new("sha1"). Without either, the server computes the SHA-1 (SCRIPT LOAD).
try:
    from hashlib import sha1  # pyright: ignore[reportAttributeAccessIssue]  (not CircuitPython's)
except ImportError:
    try:
        from hashlib import new as _new  # pyright: ignore[reportAttributeAccessIssue]  (CircuitPython's, and CPython's)
    except ImportError:
        sha1 = None
    else:
        def sha1(data):
            return _new("sha1", data)

_HEX = b"0123456789abcdef"

_PEND = 0
_DONE = 1
_TAKEN = 2
_FPENDING = 1  # client.py: a Future whose reply has not been read


def _hex(d):
    # MicroPython's hash objects have digest() but no hexdigest()
    out = bytearray(2 * len(d))
    for i in range(len(d)):
        out[2 * i] = _HEX[d[i] >> 4]
        out[2 * i + 1] = _HEX[d[i] & 15]
    return bytes(out)


def _seq(x, name):
    if type(x) is not list and type(x) is not tuple:
        raise TypeError("%s must be a list or a tuple" % name)
    return x


def _noscript(m):
    # The server's own NOSCRIPT, not a script's error_reply("NOSCRIPT ..."): that script ran, and EVAL would run it
    # a second time
    return type(m) is str and m.startswith("NOSCRIPT ") and "No matching script" in m


class Script:
    """A registered Lua script. `sha` is its SHA-1 (40 hex digits, bytes), computed on the board with
    hashlib.sha1; on a port without it, register_script() sends SCRIPT LOAD and the first run() waits for the
    server's answer (`sha` is None until then)."""

    def __init__(self, client, script):
        if type(script) is str:
            script = script.encode()
        elif type(script) is not bytes:
            raise TypeError("the script must be str or bytes")
        self._client = client
        self.script = script
        self.sha = None
        self._load = None  # without hashlib.sha1: the future of SCRIPT LOAD
        self._runs = None  # Runs whose EVALSHA reply had not been read at the last run() (see _sweep)
        if sha1 is not None:
            try:
                self.sha = _hex(sha1(script).digest())
            except ValueError:  # hashlib.new() without sha1 (or a FIPS-mode CPython)
                pass
        if self.sha is None:
            self._load = client._cmd(None, ("SCRIPT", "LOAD", script))

    def run(self, keys=(), args=(), client=None):
        """EVALSHA (EVAL on NOSCRIPT) -> an object with ready() and wait() like a Future; wait() gives the script's
        reply or raises its error (a ReplyError). client: another Client, or a transaction (the script then goes
        as EVAL, since a NOSCRIPT inside MULTI could not be answered)."""
        c = self._client if client is None else client
        tx = getattr(c, "_tx", False)
        a = ["EVAL" if tx else "EVALSHA", None, len(_seq(keys, "keys"))]
        a.extend(keys)
        a.extend(_seq(args, "args"))
        if tx:
            a[1] = self.script
            return c._cmd(None, a)
        a[1] = self._hash(c)
        for i in range(3, len(a)):
            if type(a[i]) is bytearray or type(a[i]) is memoryview:
                a[i] = bytes(a[i])  # the EVAL sent after NOSCRIPT carries what run() was given, not what is there now
        if self._runs:
            self._sweep()
        r = Run(self, c, a)
        if self._runs is None:
            self._runs = []
        self._runs.append(r)
        return r

    def _sweep(self):
        # A run nobody waits must still run: the EVAL after its NOSCRIPT goes out at the next run() of this script
        # (before that run's EVALSHA) once the NOSCRIPT has been read, waited or not. Never blocks: only replies
        # already read are looked at; runs whose reply is still to come are kept for the next run().
        keep = []
        for r in self._runs:
            f = r._future
            if r._state != _PEND or f is None or r._args is None or r._args[0] != "EVALSHA":
                continue
            if f._state == _FPENDING:
                keep.append(r)
                continue
            v = f._value
            if isinstance(v, ReplyError) and _noscript(v.message):
                r._take()  # sends its EVAL now
        self._runs = keep

    def _hash(self, c):
        if self.sha is None:
            f = self._load
            self._load = None
            if f is None:  # the first SCRIPT LOAD failed (its error was raised): ask again
                f = c._cmd(None, ("SCRIPT", "LOAD", self.script))
            v = f.wait()
            if type(v) is str:
                v = v.encode()
            if type(v) is not bytes or len(v) != 40:
                raise ProtocolError("SCRIPT LOAD answered %r, not a SHA-1" % (v,))
            self.sha = v
        return self.sha

    def __repr__(self):
        return "<Script %s>" % (self.sha.decode() if self.sha else "(SHA-1 from the server pending)")


class Run:
    """The pending result of script.run(): ready() and wait() as on a Future (the value is handed over once).
    After NOSCRIPT the EVAL goes out when this result is waited (or found ready), so after commands sent since."""

    def __init__(self, script, c, args):
        self._script = script
        self._client = c
        self._args = args
        self._state = _PEND
        self._value = None
        self._future = c._cmd(None, args)

    def _take(self):
        f = self._future
        try:
            v = f.wait()
        except RedisError as e:
            v = e
            a = self._args
            if isinstance(e, ReplyError) and _noscript(e.message) and a[0] == "EVALSHA":
                a[0] = "EVAL"
                a[1] = self._script.script
                self._future = None
                try:
                    self._future = self._client._cmd(None, a)
                    return
                except RedisError as e2:
                    v = e2
                except BaseException as e3:
                    self._cut(e3)  # (^C while the EVAL was written)
                    raise
        except BaseException as e:
            self._cut(e)  # (^C while the reply was read: the core dropped the connection)
            raise
        self._future = None
        self._value = v
        self._state = _DONE
        self._args = None

    def _cut(self, e):
        # interrupted: this result fails; it is never left without a future to wait
        self._future = None
        self._value = ConnectionError("the script's run was interrupted by %r" % e)
        self._state = _DONE
        self._args = None

    def ready(self):
        """True once wait() will not block. Never blocks, never raises the script's error."""
        while self._state == _PEND:
            if not self._future.ready():
                return False
            self._take()
        return True

    def wait(self):
        while self._state == _PEND:
            self._take()
        if self._state == _TAKEN:
            raise InvalidFuture("this result was already waited (its value was handed over)")
        v = self._value
        self._value = None
        self._state = _TAKEN
        if isinstance(v, Exception):
            raise v
        return v
