# QEMU MPS2_AN385 test board: microredis plus a `time` module (the qemu port has none).
# The `time` here is a test aid backed by the board's CMSDK timer; see qemu/time.py.
include("manifest.py")
module("time.py", base_path="qemu")
