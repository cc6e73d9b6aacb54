"""TLS set-up for open_transport (loaded only when a connection uses TLS)."""


def context(tls):
    """True (the platform's default client context) or an SSLContext-like object -> the context to wrap with."""
    if tls is True:
        try:
            import ssl as mod
        except ImportError:
            import tls as mod  # MicroPython without the ssl.py shim
        if hasattr(mod, "create_default_context"):  # CPython, CircuitPython
            return mod.create_default_context()
        # MicroPython: PROTOCOL_TLS_CLIENT verifies the certificate (CERT_REQUIRED); a board has
        # no CA store, so pass a context with load_verify_locations(cadata=DER) instead of True.
        return mod.SSLContext(mod.PROTOCOL_TLS_CLIENT)
    if hasattr(tls, "wrap_socket"):
        return tls
    raise TypeError("tls must be None, True or an SSLContext")
