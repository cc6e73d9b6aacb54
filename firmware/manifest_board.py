# Board firmware: the board's usual frozen modules PLUS microredis.
#
#   make -C ports/rp2 BOARD=RPI_PICO_W FROZEN_MANIFEST=/abs/path/to/firmware/manifest_board.py
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/abs/path/to/firmware/manifest_board.py
#
# FROZEN_MANIFEST replaces the board's default manifest, which freezes asyncio, network
# helpers, mip, ssl and so on. This file includes that default first: the board folder's
# manifest.py when it has one (e.g. rp2 RPI_PICO_W), else the port's boards/manifest.py
# (e.g. esp32 ESP32_GENERIC). Those need the full MicroPython tree with its micropython-lib
# submodule (`make BOARD=... submodules`), as any board build does.
# For a firmware that freezes ONLY microredis, use manifest.py instead.


def _include_if_present(path):
    # include() wraps "file not found" in a ManifestFileError; tell it apart from real errors
    # inside the included manifest (which must surface).
    try:
        include(path)
        return True
    except Exception as e:  # noqa: BLE001
        msg = str(e)
        head = "Error in manifest file: "
        p = msg[len(head):].split(": ")[0] if msg.startswith(head) else None
        if p and msg == "%s%s: [Errno 2] No such file or directory: '%s'" % (head, p, p):
            return False
        raise


if not _include_if_present("$(BOARD_DIR)/manifest.py"):
    if not _include_if_present("$(PORT_DIR)/boards/manifest.py"):
        raise Exception("manifest_board.py: no board or port manifest found; use manifest.py")
include("manifest.py")
