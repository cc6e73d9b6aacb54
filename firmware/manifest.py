# Freezing manifest: microredis compiled to bytecode and frozen into the firmware.
#
#   make -C ports/<port> BOARD=<board> FROZEN_MANIFEST=/abs/path/to/firmware/manifest.py
#
# Relative paths in a manifest resolve against this file's folder, so this works from any
# MicroPython checkout. It freezes only lib/microredis: no micropython-lib package is needed.
# MICROREDIS_LIB (env) overrides the folder that holds the microredis package (default ../lib).
# A port's own frozen modules (asyncio, network helpers...) are NOT included: for a real board
# use manifest_board.py, which adds them back (manifest_unix.py does the same for the unix port).
import os

package("microredis", base_path=os.environ.get("MICROREDIS_LIB") or "../lib")
