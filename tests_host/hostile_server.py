"""A scripted, hostile RESP server for tests: a tiny Redis look-alike that answers one chosen command of a connection
with a scripted (wrong, huge, endless, malformed...) reply.

    srv = HostileServer().start()          # 127.0.0.1:<free port>, one thread per connection
    h = mr.ConnectionHandler.resp3(srv.address).auth(mr.Credentials.acl("cp:time_int", "pw"))
    ...
    srv.stop()

How a connection picks its script: the AUTH user name is "<run>:<case>" (the client sends AUTH first in its
handshake). The case's script (CASES[case]) is applied to the FIRST connection that names "<run>:<case>" only; later
connections with the same name get the plain look-alike, so a client can re-dial and check that it recovers.

A script is a dict with any of:
  pre_auth:    steps run when AUTH arrives, before its +OK (an extra reply the client did not ask for)
  auth:        steps that replace the +OK of AUTH
  hello:       steps that replace the HELLO 3 map
  after_hello: steps run right after the HELLO reply (same write when both are bytes: they are joined)
  on:          {b"CMD": steps}: replaces the reply to the first CMD of the connection

Steps: bytes (sent), a float (sleep that many seconds), "rst" (close with RST), "fin" (orderly close), "hang" (answer
nothing more; drain the client until it closes), ("repeat", data, interval_s, max_s) (send data every interval_s
until max_s passed or the client is gone), or a list of those. After steps that do not close, the connection goes
on with normal answers.

The look-alike: PING, ECHO, SET, GET, INCR, DEL, TIME, SELECT, CLIENT, AUTH, HELLO (a map for 3), SUBSCRIBE /
UNSUBSCRIBE (push confirmations with RESP3, arrays with RESP2), QUIT; others -> -ERR. Values live in one dict per
server, shared by its connections.
"""

import select
import socket
import threading
import time

from testkit import HOST, Listener, close_quietly, reset as _rst

HELLO3 = (b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n6.2.0\r\n$5\r\nproto\r\n:3\r\n"
          b"$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
          b"$7\r\nmodules\r\n*0\r\n")

BIG = b"x" * 5000  # larger than the clients' memory_limit (2048)


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


# ---- the scripts, by case name (the client side, tests_host/hostile_client.py, names the same cases) ------------
CASES = {
    # converted replies with wrong shapes
    "time_int": {"on": {b"TIME": b":5\r\n"}},
    "time_short": {"on": {b"TIME": b"*1\r\n:1\r\n"}},
    "time_text": {"on": {b"TIME": b"*2\r\n$3\r\nabc\r\n$1\r\n1\r\n"}},
    "time_null": {"on": {b"TIME": b"_\r\n"}},
    "time_good": {"on": {b"TIME": b"*2\r\n$10\r\n1700000000\r\n$6\r\n123456\r\n"}},
    "scan_int": {"on": {b"SCAN": b":5\r\n"}},
    "scan_short": {"on": {b"SCAN": b"*1\r\n$1\r\n0\r\n"}},
    "scan_badcursor": {"on": {b"SCAN": b"*2\r\n$1\r\nx\r\n*0\r\n"}},
    "scan_null": {"on": {b"SCAN": b"_\r\n"}},
    "scan_good": {"on": {b"SCAN": b"*2\r\n$1\r\n7\r\n*1\r\n$1\r\nk\r\n"}},
    "hgetall_listkey_r2": {"on": {b"HGETALL": b"*2\r\n*1\r\n:1\r\n:2\r\n"}},
    "hgetall_int": {"on": {b"HGETALL": b":5\r\n"}},
    "hgetall_map_listkey": {"on": {b"HGETALL": b"%1\r\n*1\r\n:1\r\n:2\r\n"}},
    "hgetall_good_r2": {"on": {b"HGETALL": b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n"}},
    "smembers_lists": {"on": {b"SMEMBERS": b"*1\r\n*0\r\n"}},
    "smembers_set_lists": {"on": {b"SMEMBERS": b"~1\r\n*0\r\n"}},
    "smembers_int": {"on": {b"SMEMBERS": b":5\r\n"}},
    "incrbyfloat_text": {"on": {b"INCRBYFLOAT": b"$3\r\nabc\r\n"}},
    "incrbyfloat_list": {"on": {b"INCRBYFLOAT": b"*0\r\n"}},
    "incrbyfloat_map": {"on": {b"INCRBYFLOAT": b"%0\r\n"}},
    "incrbyfloat_good": {"on": {b"INCRBYFLOAT": b"$4\r\n2.50\r\n"}},
    "hincrbyfloat_text": {"on": {b"HINCRBYFLOAT": b"$2\r\nzz\r\n"}},
    "zscore_list": {"on": {b"ZSCORE": b"*1\r\n:1\r\n"}},
    "zincrby_text": {"on": {b"ZINCRBY": b"+notanumber\r\n"}},
    "zadd_incr_text": {"on": {b"ZADD": b"$1\r\nx\r\n"}},
    "zrange_ws_short": {"on": {b"ZRANGE": b"*1\r\n*0\r\n"}},
    "zrange_ws_text": {"on": {b"ZRANGE": b"*1\r\n*2\r\n$1\r\na\r\n$1\r\nx\r\n"}},
    "zrange_ws_flat_text_r2": {"on": {b"ZRANGE": b"*2\r\n$1\r\na\r\n$1\r\nx\r\n"}},
    "zrange_ws_nested_int": {"on": {b"ZRANGE": b"*2\r\n:1\r\n*0\r\n"}},
    "zrange_ws_good": {"on": {b"ZRANGE": b"*1\r\n*2\r\n$1\r\na\r\n,1.5\r\n"}},
    "xrange_int_entry": {"on": {b"XRANGE": b"*1\r\n:5\r\n"}},
    "xrange_short_entry": {"on": {b"XRANGE": b"*1\r\n*1\r\n$3\r\n1-1\r\n"}},
    "xrange_listkey_fields": {"on": {b"XRANGE": b"*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n*0\r\n$1\r\nv\r\n"}},
    "xrange_good": {"on": {b"XRANGE": b"*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"}},
    "blpop_int": {"on": {b"BLPOP": b":5\r\n"}},
    "blpop_short": {"on": {b"BLPOP": b"*1\r\n$1\r\na\r\n"}},
    "expire_text": {"on": {b"EXPIRE": b"$2\r\nno\r\n"}},
    "set_int": {"on": {b"SET": b":1\r\n"}},
    "get_decode_bad": {"on": {b"GET": b"$2\r\n\xff\xfe\r\n"}},
    "get_decode_bad_simple": {"on": {b"GET": b"+\xff\xfe\r\n"}},
    "get_decode_bad_err": {"on": {b"GET": b"-ERR \xff\xfe\r\n"}},
    "hgetall_decode_bad_key": {"on": {b"HGETALL": b"%1\r\n$2\r\n\xff\xfe\r\n$1\r\nv\r\n"}},
    "get_into_too_long": {"on": {b"GET": bulk(b"z" * 100)}},
    "get_into_aggregate": {"on": {b"GET": b"*1\r\n$1\r\na\r\n"}},
    "get_into_map": {"on": {b"GET": b"%1\r\n$1\r\na\r\n$1\r\nb\r\n"}},
    "get_into_int": {"on": {b"GET": b":5\r\n"}},
    "get_into_ok": {"on": {b"GET": b"+OK\r\n"}},
    "get_into_attr_int": {"on": {b"GET": b"|1\r\n+a\r\n+b\r\n:3\r\n"}},
    # protocol-level hostility
    "huge_bulk": {"on": {b"GET": [b"$999999999\r\n", "hang"]}},
    "huge_array": {"on": {b"GET": [b"*999999999\r\n", "hang"]}},
    "huge_array_flood": {"on": {b"GET": [b"*999999999\r\n" + b":1\r\n" * 50000, "hang"]}},
    "huge_map_flood": {"on": {b"GET": [b"%999999999\r\n" + b":1\r\n" * 50000, "hang"]}},
    "endless_stream_agg": {"on": {b"GET": [b"*?\r\n", ("repeat", b":1\r\n", 0.02, 4.0), "hang"]}},
    "endless_stream_str": {"on": {b"GET": [b"$?\r\n", ("repeat", b";4\r\nabcd\r\n", 0.02, 4.0), "hang"]}},
    "endless_trickle_bulk": {"on": {b"GET": [b"$1000\r\n", ("repeat", b"y", 0.02, 4.0), "hang"]}},
    "negative_len": {"on": {b"GET": b"$-5\r\n"}},
    "garbage_line": {"on": {b"GET": b"hello world\r\n"}},
    "bad_int": {"on": {b"INCR": b":12x\r\n"}},
    "over_limit_bulk": {"on": {b"GET": bulk(BIG)}},
    "deep_nesting": {"on": {b"GET": b"*1\r\n" * 100 + b":1\r\n"}},
    "reset_mid_reply": {"on": {b"GET": [b"$10\r\nabc", 0.05, "rst"]}},
    "fin_mid_reply": {"on": {b"GET": [b"$10\r\nabc", 0.05, "fin"]}},
    "push_before_reply": {"on": {b"GET": b">2\r\n$4\r\ninfo\r\n$1\r\nx\r\n$3\r\nval\r\n"}},
    "oversized_push_get_into": {"on": {b"GET": b">2\r\n$4\r\ninfo\r\n" + bulk(BIG) + b"$5\r\nhello\r\n"}},
    "oversized_push_get": {"on": {b"GET": b">2\r\n$4\r\ninfo\r\n" + bulk(BIG) + b"$5\r\nhello\r\n"}},
    "push_handler_raises": {"on": {b"GET": b">2\r\n$4\r\ninfo\r\n$1\r\nx\r\n$3\r\nval\r\n"}},
    "push_int_kind": {"on": {b"GET": b">3\r\n:1\r\n:2\r\n:3\r\n$3\r\nval\r\n"}},
    "push_empty": {"on": {b"GET": b">0\r\n$3\r\nval\r\n"}},
    # malformed pub/sub pushes (the client subscribes to b"ch")
    "push_sub_bigint": {"on": {b"SUBSCRIBE": b">3\r\n$9\r\nsubscribe\r\n:200000000\r\n:2\r\n"}},
    "push_sub_nullchan": {"on": {b"SUBSCRIBE": b">3\r\n$9\r\nsubscribe\r\n_\r\n:1\r\n"}},
    "push_sub_listchan": {"on": {b"SUBSCRIBE": b">3\r\n$9\r\nsubscribe\r\n*1\r\n:1\r\n:1\r\n"}},
    "push_msg_intpayload": {"on": {b"SUBSCRIBE": b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                                                 b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:5\r\n"}},
    "push_msg_nullchan": {"on": {b"SUBSCRIBE": b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                                               b">3\r\n$7\r\nmessage\r\n_\r\n$1\r\nx\r\n"}},
    "push_msg_bigint_payload": {"on": {b"SUBSCRIBE": b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                                                     b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:200000000\r\n"}},
    "push_pmsg_short": {"on": {b"SUBSCRIBE": b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                                             b">3\r\n$8\r\npmessage\r\n$1\r\np\r\n$1\r\nx\r\n"}},
    # RESP2 subscribed mode: the same hostility as plain arrays
    "r2_sub_bigint": {"on": {b"SUBSCRIBE": b"*3\r\n$9\r\nsubscribe\r\n:200000000\r\n:2\r\n"}},
    "r2_msg_intpayload": {"on": {b"SUBSCRIBE": b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
                                               b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:5\r\n"}},
    "get_into_huge": {"on": {b"GET": [b"$999999999\r\n", ("repeat", b"q" * 64, 0.02, 4.0), "hang"]}},
    # handshake hostility
    "hello_err": {"hello": b"-ERR unknown command 'HELLO'\r\n"},
    "hello_err_fallback": {"hello": b"-ERR unknown command 'HELLO'\r\n"},
    "hello_noauth": {"hello": b"-NOAUTH Authentication required.\r\n"},
    "hello_int": {"hello": b":1\r\n"},
    "hello_hang": {"hello": "hang"},
    "hello_huge": {"hello": [b"%999999999\r\n", "hang"]},
    "hello_reset": {"after_hello": "rst"},
    "hello_fin": {"after_hello": "fin"},
    "auth_err": {"auth": b"-WRONGPASS invalid username-password pair\r\n"},
    "pre_auth_reply": {"pre_auth": b":7\r\n"},
    "after_hello_early": {"after_hello": b"$5\r\nEARLY\r\n"},
}


class _Closed(Exception):
    pass


def parse_command(buf):
    """(args, rest) for one RESP array of bulk strings at the start of buf; (None, buf) when incomplete."""
    if not buf:
        return None, buf
    if buf[:1] != b"*":
        raise ValueError("not a RESP array: %r" % buf[:20])
    eol = buf.find(b"\r\n")
    if eol < 0:
        return None, buf
    n = int(buf[1:eol])
    p = eol + 2
    args = []
    for _ in range(n):
        eol = buf.find(b"\r\n", p)
        if eol < 0:
            return None, buf
        if buf[p:p + 1] != b"$":
            raise ValueError("not a bulk string: %r" % buf[p:p + 20])
        k = int(buf[p + 1:eol])
        p = eol + 2
        if len(buf) < p + k + 2:
            return None, buf
        args.append(buf[p:p + k])
        p += k + 2
    return args, buf[p:]


class HostileServer(Listener):
    def __init__(self, cases=None, host=HOST):
        self.cases = CASES if cases is None else cases
        self.host = host
        self.store = {}
        self.used = set()
        self.log = []  # (case, event): what the server did, for failure messages
        self._lock = threading.Lock()
        self._stopping = False
        self._lsock = None
        self._thread = None
        self._conns = []

    def start(self):
        self._lsock = self.listen(32)
        self._thread = threading.Thread(target=self._accept_loop, name="hostile-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stopping = True
        if self._thread is not None:
            self._thread.join(5)
        close_quietly(self._lsock)
        for t in list(self._conns):
            t.join(5)

    def _accept_loop(self):
        while not self._stopping:
            try:
                r, _, _ = select.select([self._lsock], [], [], 0.05)
            except (OSError, ValueError):
                return
            if r:
                try:
                    c, _ = self._lsock.accept()
                except OSError:
                    continue
                t = threading.Thread(target=self._serve, args=(c,), daemon=True)
                self._conns = [x for x in self._conns if x.is_alive()] + [t]
                t.start()

    # ---- one connection --------------------------------------------------------------------------------------
    def _serve(self, s):
        st = {"case": None, "name": "-", "proto": 2, "done": set(), "subs": set()}
        s.settimeout(0.05)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        try:
            while not self._stopping:
                try:
                    args, buf = parse_command(buf)
                except ValueError as e:
                    self.log.append((st["name"], "bad input %s" % e))
                    return
                if args is None:
                    try:
                        d = s.recv(65536)
                    except socket.timeout:
                        continue
                    if not d:
                        return
                    buf += d
                    continue
                self._answer(s, st, args)
        except (_Closed, OSError):
            return
        finally:
            close_quietly(s)

    def _steps(self, s, st, steps):
        if isinstance(steps, (bytes, str, tuple, float, int)):
            steps = [steps]
        for step in steps:
            if isinstance(step, bytes):
                s.sendall(step)
            elif isinstance(step, (float, int)):
                time.sleep(step)
            elif step == "rst":
                _rst(s)
                raise _Closed()
            elif step == "fin":
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                raise _Closed()
            elif step == "hang":
                end = time.monotonic() + 15
                while time.monotonic() < end and not self._stopping:
                    try:
                        if not s.recv(65536):
                            break
                    except socket.timeout:
                        pass
                raise _Closed()
            elif isinstance(step, tuple) and step[0] == "repeat":
                _, data, every, most = step
                end = time.monotonic() + most
                while time.monotonic() < end and not self._stopping:
                    s.sendall(data)
                    time.sleep(every)
            else:
                raise ValueError("unknown step %r" % (step,))

    def _scripted(self, st, key):
        case = st["case"]
        if case is None or key in st["done"]:
            return None
        steps = case.get("on", {}).get(key) if isinstance(key, bytes) else case.get(key)
        if steps is not None:
            st["done"].add(key)
            self.log.append((st["name"], "scripted %s" % (key,)))
        return steps

    def _answer(self, s, st, args):
        name = args[0].upper()
        nul = b"_\r\n" if st["proto"] == 3 else b"$-1\r\n"
        if name == b"AUTH":
            user = args[1].decode("latin-1") if len(args) > 2 else ""
            st["name"] = user
            with self._lock:
                fresh = user not in self.used
                self.used.add(user)
            case = user.split(":", 1)[-1]
            if fresh and case in self.cases:
                st["case"] = self.cases[case]
            pre = self._scripted(st, "pre_auth")
            if pre is not None:
                self._steps(s, st, pre)
            steps = self._scripted(st, "auth")
            self._steps(s, st, b"+OK\r\n" if steps is None else steps)
            return
        if name == b"HELLO":
            steps = self._scripted(st, "hello")
            after = self._scripted(st, "after_hello")
            if steps is None:
                if len(args) > 1 and args[1] == b"3":
                    st["proto"] = 3
                    steps = HELLO3
                else:
                    steps = b"-NOPROTO unsupported protocol version\r\n"
            if isinstance(steps, bytes) and isinstance(after, bytes):
                steps, after = steps + after, None  # one write
            self._steps(s, st, steps)
            if after is not None:
                self._steps(s, st, after)
            return
        steps = self._scripted(st, name)
        if steps is not None:
            self._steps(s, st, steps)
            return
        self._steps(s, st, self._normal(st, name, args, nul))

    def _normal(self, st, name, args, nul):
        store = self.store
        if name == b"PING":
            return b"+PONG\r\n"
        if name == b"ECHO" and len(args) == 2:
            return bulk(args[1])
        if name == b"SET" and len(args) >= 3:
            with self._lock:
                store[args[1]] = args[2]
            return b"+OK\r\n"
        if name == b"GET" and len(args) == 2:
            v = store.get(args[1])
            return nul if v is None else bulk(v)
        if name == b"INCR" and len(args) == 2:
            with self._lock:
                v = int(store.get(args[1], b"0")) + 1
                store[args[1]] = b"%d" % v
            return b":%d\r\n" % v
        if name == b"DEL":
            with self._lock:
                n = sum(1 for k in args[1:] if store.pop(k, None) is not None)
            return b":%d\r\n" % n
        if name == b"TIME":
            return b"*2\r\n$10\r\n1700000000\r\n$1\r\n0\r\n"
        if name in (b"SELECT", b"CLIENT", b"QUIT"):
            return b"+OK\r\n"
        if name in (b"SUBSCRIBE", b"UNSUBSCRIBE"):
            out = b""
            kind = name.lower()
            chans = args[1:] or sorted(st["subs"]) or [None]
            for ch in chans:
                if name == b"SUBSCRIBE":
                    st["subs"].add(ch)
                else:
                    st["subs"].discard(ch)
                head = b">3\r\n" if st["proto"] == 3 else b"*3\r\n"
                out += head + bulk(kind) + (nul if ch is None else bulk(ch)) + b":%d\r\n" % len(st["subs"])
            return out
        return b"-ERR unknown command '%s'\r\n" % name.decode("latin-1").encode()
