# Types of microredis.url for editors and type checkers (never installed on a board: .py only go there).
from .connection import ConnectionHandler

def from_url(url: str) -> ConnectionHandler:
    """redis://[[user]:password@]host[:port][/db][?protocol=2|3&db=N&timeout=S&client_name=NAME] (rediss:// TLS)"""
    ...
