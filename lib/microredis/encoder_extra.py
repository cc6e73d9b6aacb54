"""encode(): the RESP bytes of one command, for tests and tools (loaded on first use of microredis.encoder.encode)."""

from .encoder import Encoder


def encode(*args):
    """Convenience for tests and tools: the RESP bytes of one command."""
    out = []

    class _Sink:
        def send(self, buf, n):
            out.append(bytes(buf[:n]))

        def send_obj(self, obj):
            out.append(bytes(obj))

    e = Encoder(bytearray(64), _Sink())
    e.command(args)
    e.flush()
    return b"".join(out)
