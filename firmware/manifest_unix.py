# Unix-port manifest: microredis plus the modules the standard unix variant freezes from the
# MicroPython tree itself (asyncio). It does not include the variant manifest, which needs
# micropython-lib (absent from Debian's +ds source).
include("$(MPY_DIR)/extmod/asyncio")
include("manifest.py")
