# Types of the microredis package for editors and type checkers. Stubs (.pyi) are never installed on a board:
# make mpy, tools/deploy.py, the package*.json files (mip) and the firmware manifests take the .py files only.
from . import aio as aio, cache as cache, client as client, clock as clock, commands as commands
from . import connection as connection, encoder as encoder, inbox as inbox, net as net, outbox as outbox
from . import pubsub as pubsub
from . import resp as resp, sentinel as sentinel, ticks as ticks
from .client import CoreClient as CoreClient
from .commands import Client as Client
from .connection import ConnectionHandler as ConnectionHandler
from .credentials import Credentials as Credentials
from .errors import (
    AuthenticationError as AuthenticationError, ConnectionError as ConnectionError, InvalidFuture as InvalidFuture,
    MemoryFull as MemoryFull, NoPermissionError as NoPermissionError, ProtocolError as ProtocolError,
    RedisError as RedisError, ReplyError as ReplyError, TimeoutError as TimeoutError,
)
from .client import Future as Future
from .outbox import Outbox as Outbox
from .inbox import Inbox as Inbox
from .pubsub import Message as Message, Subscription as Subscription
from .resp import MemoryParameters as MemoryParameters
from .sentinel import Sentinel as Sentinel
from .transaction import WatchError as WatchError
from .url import from_url as from_url

__version__: str
