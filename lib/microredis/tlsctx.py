"""TLS set-up: ConnectionHandler.tls()'s checks and open_transport's context (loaded only where TLS is used)."""


def check(context, server_hostname):
    # the config call fails, not the first connect()
    if context is not None and context is not True and context is not False and not hasattr(context, "wrap_socket"):
        raise TypeError("tls() takes True, False, None or an SSLContext")
    if server_hostname is not None and type(server_hostname) is not str:
        raise TypeError("server_hostname must be a str")


def context(tls):
    """True (the platform's default client context) or an SSLContext-like object -> the context to wrap with."""
    if tls is True:
        try:
            import ssl as mod
        except ImportError:
            import tls as mod  # pyright: ignore[reportMissingImports]  MicroPython without the ssl.py shim
        if hasattr(mod, "create_default_context"):  # CPython, CircuitPython
            return mod.create_default_context()  # pyright: ignore[reportAttributeAccessIssue]  (the hasattr above)
        # MicroPython: PROTOCOL_TLS_CLIENT verifies the certificate (CERT_REQUIRED); a board has
        # no CA store, so pass a context with load_verify_locations(cadata=DER) instead of True.
        return mod.SSLContext(mod.PROTOCOL_TLS_CLIENT)
    if hasattr(tls, "wrap_socket"):
        return tls
    raise TypeError("tls must be None, True or an SSLContext")
