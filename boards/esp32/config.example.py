# Settings for boards/esp32/main.py. Copy to config.py (kept out of git), edit, and copy it to the board
# (`make deploy PORT=... BOARD=esp32` copies boards/esp32/config.py when it exists).
WIFI_SSID = "my-network"
WIFI_PASSWORD = "my-wifi-password"

REDIS_HOST = "192.168.1.10"  # the machine running redis-server (bind it to the LAN, with a password)
REDIS_PORT = 6379
REDIS_USERNAME = None  # ACL user (Redis 6+), with REDIS_PASSWORD; None: AUTH <password> only
REDIS_PASSWORD = None
PROTOCOL = 3  # 3: RESP3, one connection for everything; 2: RESP2 (Redis < 6), the listener gets its own

DEVICE_ID = None  # None: "esp32-" + the last 6 hex digits of machine.unique_id()
INTERVAL_MS = 5000  # between readings
TTL_S = 60  # sensors:<id>:temp expires when the board stops reporting
STREAM_MAXLEN = 1000  # XADD sensors:<id>:stream MAXLEN ~ 1000
OUTBOX_CAPACITY = 64  # readings kept while the server cannot be reached; past it the oldest are dropped (counted)
OUTBOX_PATH = None  # None: in RAM; a file, e.g. "/outbox.log": kept across reboots (about 2 flash writes a reading)
INBOX_PATH = None  # None: the applied command ID in RAM; a file, e.g. "/inbox.id": a command applied before a reboot
                   # is never applied again after it (one flash write a command)
MAX_BACKOFF_MS = 30000  # the outbox's re-dials after failures: 0.5 s, 1 s, 2 s ... up to this (with jitter)
RESET_AFTER = 30  # machine.reset() after this many failed cycles in a row; 0: never

# On-board LED: GPIO 2 on most ESP32 DevKits. ESP32-S3/C3 DevKits have an RGB LED (a NeoPixel, not a plain
# pin): set LED_PIN = None to just print the commands, or wire an LED to a free pin.
LED_PIN = 2
LED_ACTIVE_LOW = False
