#!/usr/bin/env bash
# The stock MicroPython unix port built for i386 (32-bit words, like ESP32 and the Pico W), for the bench's RAM figures.
#
#   bash firmware/build32.sh        # bench/run.py calls it
#
# Outputs (build/mp32/, git-ignored):
#   build/mp32/micropython   the unix port, standard variant, -m32; NOT microredis-frozen (only asyncio is frozen, as
#                            in the stock binary), so loading the user's .mpy files is what gets measured
#   build/mp32/mpy-cross     the cross compiler of the same source (the .mpy must match that VM's mpy version)
#   build/mp32/VERSION       the source's Debian version and `sys.implementation` of the binary
#
# Source: the tree firmware/build.sh fetches (Debian's micropython 1.26.1 source package) in
# build/firmware/src/micropython/, fetched here with FIRMWARE_SOURCE_ONLY=1 when absent (MICROPYTHON_SRC: another
# tree). 32-bit builds need gcc-multilib: apt-get installs it when root. Build flags (verified with 1.26.1 and 1.29):
# FFI, btree and SSL off (Debian's i386 libffi/mbedtls are not needed for RAM figures). About 40 s the first time,
# under a second after (idempotent: rebuilt only when this script or the source changed; BUILD32_FORCE=1 forces).
#
# Exit status: 0 built or up to date; 2 and a line "UNAVAILABLE: <reason>" when it cannot be built here (no
# multilib and no way to install it, no source); 1 a real build failure.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${BUILD32_OUT:-$ROOT/build/mp32}
FW=$ROOT/build/firmware
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FORCE=${BUILD32_FORCE:-0}

log() { echo "[build32] $*"; }
unavailable() { echo "UNAVAILABLE: $*"; exit 2; }
die() { echo "[build32] ERROR: $*" >&2; exit 1; }

mkdir -p "$OUT/logs"

# ---- 1. source (firmware/build.sh fetches it; before taking its lock, which that script takes too) ----------------
if [ -n "${MICROPYTHON_SRC:-}" ]; then
    SRC=$(cd "$MICROPYTHON_SRC" && pwd)
else
    SRC=$FW/src/micropython
    if [ ! -f "$SRC/.debian-version" ]; then
        log "no MicroPython source in $SRC yet: FIRMWARE_SOURCE_ONLY=1 firmware/build.sh"
        FIRMWARE_SOURCE_ONLY=1 bash "$HERE/build.sh" | tee "$OUT/logs/source.log" |
            sed 's/^/[build32]   /' || die "firmware/build.sh failed (log: $OUT/logs/source.log)"
        grep -q '^SKIP: ' "$OUT/logs/source.log" && unavailable "no MicroPython source: $(grep '^SKIP: ' \
            "$OUT/logs/source.log" | head -n 1 | cut -c7-)"
    fi
fi
[ -f "$SRC/py/mpconfig.h" ] || unavailable "$SRC is not a MicroPython source tree"
STAMP_IN=("$HERE/build32.sh" "$HERE/manifest_stock.py")
[ -f "$SRC/.debian-version" ] && STAMP_IN+=("$SRC/.debian-version")

# One build at a time in the shared source tree (firmware/build.sh builds mpy-cross there too).
mkdir -p "$FW"
if command -v flock >/dev/null; then
    exec 9>"$FW/.lock"
    flock 9
fi

check() { # the binary runs and has 32-bit words
    [ -x "$OUT/micropython" ] && [ -x "$OUT/mpy-cross" ] &&
        [ "$("$OUT/micropython" -c 'import sys; print(sys.maxsize)' 2>/dev/null)" = 2147483647 ]
}

newer=$(find "${STAMP_IN[@]}" -newer "$OUT/VERSION" -print -quit 2>/dev/null || echo x)
if [ "$FORCE" != 1 ] && [ -f "$OUT/VERSION" ] && [ -z "$newer" ] && check; then
    log "up to date: $(head -n 1 "$OUT/VERSION")"
    exit 0
fi

# ---- 2. a compiler that makes 32-bit programs (gcc-multilib) ---------------------------------------------------------
can_m32() {
    local d
    d=$(mktemp -d)
    printf '#include <stdio.h>\nint main(void) { printf("%%d", (int)sizeof(void *)); return 0; }\n' >"$d/t.c"
    gcc -m32 -o "$d/t" "$d/t.c" >/dev/null 2>&1 && [ "$("$d/t")" = 4 ]
    local rc=$?
    rm -rf "$d"
    return $rc
}
command -v gcc >/dev/null && command -v make >/dev/null || unavailable "no gcc/make (apt-get install build-essential)"
if ! can_m32; then
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
        unavailable "gcc cannot build 32-bit programs (apt-get install gcc-multilib, as root)"
    log "installing gcc-multilib (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends gcc-multilib >"$OUT/logs/apt-install.log" 2>&1; then
        apt-get update -q >>"$OUT/logs/apt-install.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends gcc-multilib >>"$OUT/logs/apt-install.log" 2>&1 ||
            unavailable "apt-get install gcc-multilib failed (see $OUT/logs/apt-install.log)"
    fi
    can_m32 || unavailable "gcc -m32 still fails after installing gcc-multilib"
fi

# ---- 3. mpy-cross (a host program: built without -m32, before the port, whose make would pass -m32 down) -----------
t0=$(date +%s)
make -C "$SRC/mpy-cross" -j"$JOBS" >"$OUT/logs/mpy-cross.log" 2>&1 ||
    { tail -n 30 "$OUT/logs/mpy-cross.log" >&2; die "mpy-cross failed (log: $OUT/logs/mpy-cross.log)"; }

# ---- 4. the unix port, i386 --------------------------------------------------------------------------------------
# Its own build folder (build-i386), so the frozen x64 build of firmware/build.sh (build-standard) is untouched.
if ! make -C "$SRC/ports/unix" -j"$JOBS" VARIANT=standard BUILD=build-i386 \
    CFLAGS_EXTRA=-m32 LDFLAGS_EXTRA=-m32 MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0 MICROPY_SSL_AXTLS=0 MICROPY_PY_SSL=0 \
    FROZEN_MANIFEST="$HERE/manifest_stock.py" >"$OUT/logs/unix-i386.log" 2>&1; then
    tail -n 30 "$OUT/logs/unix-i386.log" >&2
    die "unix port (i386) failed (log: $OUT/logs/unix-i386.log)"
fi
cp "$SRC/ports/unix/build-i386/micropython" "$OUT/micropython"
cp "$SRC/mpy-cross/build/mpy-cross" "$OUT/mpy-cross"
check || die "$OUT/micropython does not report sys.maxsize == 2147483647"
{
    echo "$(cat "$SRC/.debian-version" 2>/dev/null || echo "$SRC"), unix port i386 (-m32), standard variant"
    "$OUT/micropython" -c 'import sys; print(sys.version, sys.implementation, sys.maxsize)'
    "$OUT/mpy-cross" --version
} >"$OUT/VERSION.tmp"
mv "$OUT/VERSION.tmp" "$OUT/VERSION"
log "built in $(( $(date +%s) - t0 )) s: $(head -n 1 "$OUT/VERSION") -> $OUT"
