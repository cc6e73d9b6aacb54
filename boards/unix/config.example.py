# Settings for boards/unix/main.py. Copy to config.py (kept out of git) and edit.
# Environment variables of the same names override these (`make demo` uses them).
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_USERNAME = None  # ACL user (Redis 6+), with REDIS_PASSWORD
REDIS_PASSWORD = None
PROTOCOL = 3  # 3: RESP3, one connection for everything; 2: RESP2 (Redis < 6), the listener gets its own
DEVICE_ID = "unix-1"
INTERVAL_MS = 1000
TTL_S = 60
STREAM_MAXLEN = 1000
READINGS = 10  # cycles before the program exits; 0: run forever
OUTBOX_CAPACITY = 64  # readings kept while the server cannot be reached; past it the oldest are dropped
OUTBOX_PATH = None  # None: in RAM; a file path: kept across restarts
INBOX_PATH = None  # None: in RAM; a file path: a command applied before a restart is not applied again
MAX_BACKOFF_MS = 5000  # the outbox's re-dials after failures: 0.5 s, 1 s ... up to this
