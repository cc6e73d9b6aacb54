"""The core's texts of the errors a wrong argument, a misuse or a reply of an unexpected shape raises, loaded only then.

The code names each error with a short key (errors.text(key, values...)): in a .mpy file a sentence is a string
object on the heap of every board that imports the module, a key is an interned name. A key is the name of the
argument, method or function the error is about, a name the module has anyway, so it costs nothing more."""

TEXTS = {
    "address": "address must be a (host, port) tuple",
    "host": "host must be a non-empty str",
    "port": "port must be an int in 1..65535",
    "protocol": "protocol must be 2 or 3",
    "auth": "auth() takes Credentials.password_only(...) or Credentials.acl(...)",
    "timeout": "timeout must be an int (ms)",
    "timeout_ms": "timeout must be 0..%d ms (0: none)",
    "memory": "memory() takes a MemoryParameters",
    "db": "db must be an int >= 0",
    "clock": "clock must have ticks_ms() and ticks_diff(new, old) (e.g. the time module, "
             "microredis.clock.PeriodicTicks)",
    "stack": "stack must be a socket module or a SocketPool",
    "buffer_size": "buffer_size must be an int >= 64",
    "frame_capacity": "frame_capacity must be an int >= 1",
    "memory_limit": "memory_limit must be None or an int >= buffer_size",
    "check": "invalid argument type %s: use bytes, bytearray, memoryview (of bytes), str, int or float",
    "_view": "memoryview argument must be 1-D, contiguous and of byte-sized items (got itemsize %d, ndim %d); "
                  "use memoryview(x).cast('B') on a contiguous buffer",
    "itemsize": "memoryview argument must be of byte-sized items: use a memoryview of a bytearray or bytes",
    "sink": "command does not fit the send buffer and there is no sink",
    "arg": "argument of %d bytes does not fit the %d-byte send buffer",
    "command": "command() needs at least the command name",
    "buffer": "buffer must be a bytearray or memoryview",
    "_writable": "buffer must be writable",
    "_resp2_subscribed": "RESP2 subscribed mode allows only the subscribe family and PING (sub.ping()); close the "
                  "subscription first, or use RESP3",
    "_odd": "this future was already waited (its value was handed over)",
    "pubsub": "microredis.pubsub is not installed: install package-pubsub.json (mip) or copy pubsub.py",
    "optional": "microredis.%s is not installed: install %s (mip) or copy %s.py",
    "_dispatch": "reply received with no command pending",
    "__getattr__": "module 'microredis' has no attribute %r",
    # the handshake refused (rare.handshake_error, keyed by the server's error code): the cause and the fix
    "DENIED": "the server refused the connection: it runs in protected mode, so it accepts only clients on its own "
              "machine while it has no password (and, before Redis 7, no bind address). On the server: set a "
              "password (requirepass, or an ACL user; here h.auth(...)) and bind its network address, or, on a "
              "trusted network only, run it with --protected-mode no (server: %s)",
    "NOAUTH": "the server requires a password (NOAUTH): give the handler credentials, "
              "h.auth(Credentials.password_only(password)) or h.auth(Credentials.acl(user, password)) (from_url: "
              "redis://user:password@host) (server: %s)",
    "WRONGPASS": "the server refused the credentials given to h.auth() (WRONGPASS): check the password, and for an "
                 "ACL user its name and that it is enabled (server: %s)",
    "NOPERM": "this connection's user may not run %s, which the handshake sends (NOPERM): grant it on the server "
              "(ACL SETUSER <user> +%s), or %s (server: %s)",
    "HELLO": "the server does not know HELLO, so it cannot speak RESP3 (Redis before 6, or HELLO renamed): use "
             "ConnectionHandler.resp2(address), or resp3(address, fallback=True) to fall back to RESP2 by itself "
             "(server: %s)",
    # decode_responses=True met a value that is not UTF-8 (resp.py: the reply becomes this ProtocolError)
    "decode": "reply is not valid UTF-8 (decode_responses is on; use a handler without it to read binary values)",
}


# the package file of each optional module ("optional": errors.optional(), __init__.__getattr__)
_PACKAGE = {"outbox": "survival", "inbox": "survival", "sentinel": "survival", "retry": "survival",
            "retryon": "survival", "transaction": "tx", "scripts": "tx", "pubsub": "pubsub", "cache": "cache", "aio": "aio",
            "aio_pubsub": "aio", "aio_inbox": "aio", "cluster": "cluster",
            "cluster_pubsub": "cluster"}


def text(what, values):
    t = TEXTS.get(what)
    if t is None:  # an optional part's (parttexts.py: a board loads the core's texts without them)
        from .parttexts import TEXTS as more
        t = more[what]
    if what == "_view":  # (the view itself: encoder._view's frame stays small enough for the C stack)
        values = (values[0].itemsize, getattr(values[0], "ndim", 1))
    elif what == "optional":  # (the module: its package file is named here)
        m = values[0]
        p = _PACKAGE.get(m)
        values = (m, "package-%s.json" % p if p else "package.json", m)
    return t % values if values else t
