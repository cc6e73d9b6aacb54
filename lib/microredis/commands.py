"""The command catalogue: redis-py names and argument shapes on top of the core client."""
from .client import CoreClient


class Client(CoreClient):
    pass
