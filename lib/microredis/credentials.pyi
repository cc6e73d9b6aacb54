# Types of microredis.credentials for editors and type checkers (never installed on a board: .py only go there).
from typing import Optional, Union

_Secret = Union[str, bytes, bytearray, memoryview]

class Credentials:
    """Password-only (`AUTH pw`) or ACL (`AUTH user pw`) credentials; the password never appears in a repr."""
    username: Optional[_Secret]
    password: _Secret
    def __init__(self, username: Optional[_Secret], password: _Secret) -> None: ...
    @staticmethod
    def password_only(password: _Secret) -> Credentials: ...
    @staticmethod
    def acl(username: _Secret, password: _Secret) -> Credentials: ...
