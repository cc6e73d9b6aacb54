"""Credentials for AUTH (loaded only by a handler that authenticates, and by from_url with a user info part)."""

from .encoder import check


def _secret(s, what):
    # A str secret must encode as UTF-8 now: encoding it later, in the encoder, would raise UnicodeEncodeError
    # with the whole string in its args (and in the traceback).
    if isinstance(s, str):
        bad = False
        try:
            s.encode()
        except UnicodeError:
            bad = True
        if bad:  # raised outside the except block, so nothing chains the original error (and its text) to it
            raise ValueError("%s is not valid Unicode text (a lone surrogate?): pass bytes" % what)


class Credentials:
    """Password-only (`AUTH pw`) or ACL (`AUTH user pw`) credentials. The password never appears in a repr."""

    def __init__(self, username, password):
        check(password)
        _secret(password, "password")
        if username is not None:
            check(username)
            _secret(username, "username")
        self.username = username
        self.password = password

    @staticmethod
    def password_only(password):
        return Credentials(None, password)

    @staticmethod
    def acl(username, password):
        return Credentials(username, password)

    def __repr__(self):
        return "Credentials(username=%r, password=<hidden>)" % (self.username,)
