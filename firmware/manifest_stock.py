# The stock unix port's frozen modules that the +ds source can build (asyncio; the variant manifest also wants
# micropython-lib, which Debian strips): firmware/build32.sh, whose 32-bit binary must NOT have microredis frozen in.
include("$(MPY_DIR)/extmod/asyncio")
