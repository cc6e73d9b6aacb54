"""Exception hierarchy of microredis; every error the library raises derives from RedisError."""


class RedisError(Exception):
    pass


class ReplyError(RedisError):
    """A server error reply. `code` is its first word (e.g. "WRONGTYPE"), `message` the whole text."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message
        sp = message.find(" ")
        self.code = message if sp < 0 else message[:sp]


class AuthenticationError(ReplyError):
    pass


class NoPermissionError(ReplyError):
    pass


class ConnectionError(RedisError):  # noqa: A001 - mirrors redis-py's name on purpose
    pass


class TimeoutError(RedisError):  # noqa: A001
    pass


class ProtocolError(RedisError):
    pass


class MemoryFull(RedisError):
    pass


class InvalidFuture(RedisError):
    pass


def reply_error(message):
    # The class follows the error code so callers can catch AuthenticationError/NoPermissionError directly.
    if message.startswith("WRONGPASS") or message.startswith("NOAUTH"):
        return AuthenticationError(message)
    if message.startswith("NOPERM"):
        return NoPermissionError(message)
    return ReplyError(message)


def text(what, *values):
    # The message of a wrong argument or a misuse, named by a short key (texts.py: sentences kept off the heap
    # until one is raised)
    from .texts import text
    return text(what, values)


def optional(name):
    # microredis.<name>, loaded on first use; a module of a package file that is not installed raises an ImportError
    # naming that file (texts.py), not only the module. On a small heap (under 32 KB free) a first load collects
    # the garbage first: the module's objects then fill the holes it leaves, and a block large enough for its class
    # tables stays free (the frozen t_board test at -X heapsize=64k sat on a fragmentation edge that moved with any
    # change of heap traffic). Not on a large heap: there the holes it leaves slow every heap frame's search.
    import sys
    full = "microredis." + name
    if full not in sys.modules:
        import gc
        free = getattr(gc, "mem_free", None)  # (MicroPython's)
        if free is not None and free() < 32768:
            gc.collect()
    try:
        return __import__(full, None, None, [name])
    except ImportError as e:
        if name not in str(e):
            raise  # a module that it imports is missing: that one's own error
        raise ImportError(text("optional", name))
