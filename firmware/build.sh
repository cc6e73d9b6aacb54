#!/usr/bin/env bash
# Build MicroPython firmware with lib/microredis frozen in, from Debian's micropython source package.
#
#   bash firmware/build.sh            # or: make firmware
#
# Outputs (everything lives under build/firmware/, which is git-ignored):
#   build/firmware/qemu-mps2-an385.elf   QEMU MPS2_AN385 board (Cortex-M3), for firmware/test.sh
#   build/firmware/micropython-unix      unix port, microredis + asyncio frozen in
#   build/firmware/mpy-cross             the matching cross compiler
#   build/firmware/rp2-pico.uf2          RPI_PICO (RP2040) firmware, only with FIRMWARE_RP2=1
#   build/firmware/src/micropython/      the unpacked source tree (Debian patches applied)
#   build/firmware/logs/*.log            full compiler output of each step
#
# Idempotent: a re-run skips every step whose outputs are newer than its inputs.
# Missing tools are installed with apt-get when running as root; when that is impossible, the
# script prints "SKIP: <reason>" and exits 0. A real build failure exits non-zero.
#
# Environment:
#   MICROREDIS_LIB        folder holding the microredis package (default: <repo>/lib)
#   MICROPYTHON_SRC       use this MicroPython tree instead of fetching Debian's (e.g. a git checkout)
#   MICROPYTHON_SUITES    Debian suites to try for the source, in order (default: "sid trixie").
#                         sid has 1.26.1+ds, trixie 1.25.0+ds. 1.26 is preferred: on 1.25 a slice store
#                         `buf[a:b] = src` allocates a slice object, so zero-allocation tests fail there.
#   FIRMWARE_OUT          output folder (default: <repo>/build/firmware)
#   FIRMWARE_RP2=1        also build RPI_PICO (RP2040, no wifi) -> build/firmware/rp2-pico.uf2, from
#                         Debian trixie's pico-sdk-source, tinyusb-source and mbedtls source (optional;
#                         about 10 MB more to fetch and 1 min more to build)
#   FIRMWARE_FORCE=1      rebuild even when outputs look up to date
#   FIRMWARE_SOURCE_ONLY=1  only fetch the MicroPython source into build/firmware/src/ and stop (needs only
#                         dpkg-dev and xz-utils; firmware/build32.sh uses it)
#   JOBS                  make -j (default: nproc)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${FIRMWARE_OUT:-$ROOT/build/firmware}
LIB=${MICROREDIS_LIB:-$ROOT/lib}
LIB=$(cd "$LIB" 2>/dev/null && pwd || echo "$LIB")
SUITES=${MICROPYTHON_SUITES:-sid trixie}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FORCE=${FIRMWARE_FORCE:-0}
RP2=${FIRMWARE_RP2:-0}
SOURCE_ONLY=${FIRMWARE_SOURCE_ONLY:-0}
RP2_SUITE=trixie # where pico-sdk-source 2.1.1 and tinyusb-source 0.18 come from
export MICROREDIS_LIB=$LIB # read by firmware/manifest.py

log() { echo "[firmware] $*"; }
skip() { echo "SKIP: $*"; exit 0; }
die() { echo "[firmware] ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# run_logged NAME CMD...: run a build step, full output to logs/NAME.log, print its duration;
# on failure print the log's tail and exit.
run_logged() {
    local name=$1; shift
    local t0; t0=$(now)
    if "$@" >"$OUT/logs/$name.log" 2>&1; then
        log "$name: done in $(elapsed "$t0") s"
    else
        local rc=$?
        tail -n 40 "$OUT/logs/$name.log" >&2
        die "$name failed (rc=$rc) after $(elapsed "$t0") s; full log: $OUT/logs/$name.log"
    fi
}

# up_to_date OUTPUT INPUT...: true when OUTPUT exists and no INPUT (file or folder tree) is newer.
up_to_date() {
    local out=$1; shift
    [ "$FORCE" = 1 ] && return 1
    [ -e "$out" ] || return 1
    local newer
    newer=$(find "$@" -newer "$out" -print -quit 2>/dev/null) || return 1
    [ -z "$newer" ]
}

T_ALL=$(now)
[ -d "$LIB/microredis" ] || die "no microredis package in $LIB (set MICROREDIS_LIB)"
mkdir -p "$OUT/logs" "$OUT/src"

# One build at a time (make firmware and make test-firmware may overlap).
if command -v flock >/dev/null; then
    exec 9>"$OUT/.lock"
    flock 9
fi

# ---- 1. build dependencies ------------------------------------------------------------
missing_pkgs() {
    local m=()
    if [ "$SOURCE_ONLY" = 1 ]; then
        if [ -z "${MICROPYTHON_SRC:-}" ]; then
            command -v dpkg-source >/dev/null || m+=(dpkg-dev)
            command -v xz >/dev/null || m+=(xz-utils)
        fi
        echo "${m[*]:-}"
        return
    fi
    command -v arm-none-eabi-gcc >/dev/null || m+=(gcc-arm-none-eabi)
    # newlib: the C library the bare-metal QEMU port links against
    [ -e /usr/lib/arm-none-eabi/include/stdlib.h ] || m+=(libnewlib-arm-none-eabi)
    command -v qemu-system-arm >/dev/null || m+=(qemu-system-arm)
    { command -v gcc && command -v make; } >/dev/null || m+=(build-essential)
    command -v pkg-config >/dev/null || m+=(pkg-config)
    pkg-config --exists libffi 2>/dev/null || m+=(libffi-dev)
    [ -e /usr/include/mbedtls/ssl.h ] || m+=(libmbedtls-dev)
    command -v python3 >/dev/null || m+=(python3)
    if [ "$RP2" = 1 ]; then
        command -v cmake >/dev/null || m+=(cmake)
        # C++ headers: the pico-sdk always compiles a new/delete .cpp
        [ -d /usr/include/newlib/c++ ] || m+=(libstdc++-arm-none-eabi-newlib)
    fi
    if [ -z "${MICROPYTHON_SRC:-}" ] || [ "$RP2" = 1 ]; then
        command -v dpkg-source >/dev/null || m+=(dpkg-dev)
        command -v xz >/dev/null || m+=(xz-utils)
    fi
    echo "${m[*]:-}"
}

T0=$(now)
MISSING=$(missing_pkgs)
if [ -n "$MISSING" ]; then
    [ "$(id -u)" = 0 ] || skip "missing build tools ($MISSING) and not root, so cannot apt-get install them"
    command -v apt-get >/dev/null || skip "missing build tools ($MISSING) and no apt-get"
    log "installing: $MISSING"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    if ! apt-get install -y -q --no-install-recommends $MISSING >"$OUT/logs/apt-install.log" 2>&1; then
        apt-get update -q >>"$OUT/logs/apt-install.log" 2>&1 || true
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $MISSING >>"$OUT/logs/apt-install.log" 2>&1 ||
            skip "apt-get install $MISSING failed (see $OUT/logs/apt-install.log)"
    fi
    MISSING=$(missing_pkgs)
    [ -z "$MISSING" ] || skip "still missing after apt-get install: $MISSING"
fi
log "deps: ok in $(elapsed "$T0") s"

# ---- 2. MicroPython source --------------------------------------------------------------
# The mirror comes from this machine's apt configuration (never hard-coded): the first URI of a
# non-security Debian entry in /etc/apt/sources.list.d/*.sources (deb822) or sources.list.
apt_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }' "$f"
    done
}

apt_keyring() {
    local k
    for k in /usr/share/keyrings/debian-archive-keyring.gpg /usr/share/keyrings/debian-archive-keyring.pgp; do
        [ -f "$k" ] && { echo "$k"; return; }
    done
}

fetch_debian_source() {
    local mirror keyring suite dir list opts
    mirror=$(apt_mirror | grep -v -i security | grep -i debian | head -n 1 || true)
    [ -n "$mirror" ] || mirror=$(apt_mirror | grep -v -i security | head -n 1 || true)
    [ -n "$mirror" ] || skip "no Debian mirror URI found in /etc/apt/sources.list.d/*.sources or sources.list"
    keyring=$(apt_keyring || true)
    dir=$(mktemp -d "$OUT/src/apt.XXXXXX")
    mkdir -p "$dir/lists/partial" "$dir/dl"
    list=$dir/sources.list
    opts=(-o "Dir::Etc::SourceList=$list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
    for suite in $SUITES; do
        if [ -n "$keyring" ]; then
            echo "deb-src [signed-by=$keyring] $mirror $suite main" >"$list"
        else
            echo "deb-src $mirror $suite main" >"$list"
        fi
        log "fetching micropython source from $suite"
        if apt-get "${opts[@]}" update -q >>"$OUT/logs/fetch.log" 2>&1 &&
            (cd "$dir/dl" && apt-get "${opts[@]}" source -q micropython) >>"$OUT/logs/fetch.log" 2>&1; then
            local tree
            tree=$(find "$dir/dl" -mindepth 1 -maxdepth 1 -type d -name 'micropython-*' | head -n 1)
            if [ -n "$tree" ] && [ -f "$tree/py/mpconfig.h" ]; then
                rm -rf "$OUT/src/micropython"
                mv "$tree" "$OUT/src/micropython"
                echo "$SUITES" >"$OUT/src/micropython/.suites"
                basename "$(ls "$dir"/dl/*.dsc)" .dsc >"$OUT/src/micropython/.debian-version"
                rm -rf "$dir"
                return 0
            fi
        fi
        log "  $suite: not available (see $OUT/logs/fetch.log)"
        rm -rf "${dir:?}/dl"/* "$dir/lists"/*
        mkdir -p "$dir/lists/partial"
    done
    rm -rf "$dir"
    return 1
}

T0=$(now)
if [ -n "${MICROPYTHON_SRC:-}" ]; then
    SRC=$(cd "$MICROPYTHON_SRC" && pwd)
    log "source: $SRC (MICROPYTHON_SRC)"
else
    SRC=$OUT/src/micropython
    if [ -f "$SRC/.debian-version" ] && [ "$(cat "$SRC/.suites" 2>/dev/null || true)" = "$SUITES" ]; then
        log "source: $(cat "$SRC/.debian-version") (cached)"
    else
        : >"$OUT/logs/fetch.log"
        fetch_debian_source || skip "could not fetch Debian's micropython source (suites: $SUITES)"
        log "source: $(cat "$SRC/.debian-version") in $(elapsed "$T0") s"
    fi
fi
[ -f "$SRC/py/mpconfig.h" ] || die "$SRC is not a MicroPython source tree"
if [ "$SOURCE_ONLY" = 1 ]; then
    log "source only (FIRMWARE_SOURCE_ONLY=1): $SRC"
    exit 0
fi

# Inputs of the frozen firmware: the package, the manifests, this script, the source tree marker.
INPUTS=("$LIB/microredis" "$HERE/manifest.py" "$HERE/manifest_unix.py" "$HERE/manifest_qemu.py" "$HERE/qemu" "$HERE/build.sh")
[ -f "$SRC/.debian-version" ] && INPUTS+=("$SRC/.debian-version")
# A different MICROREDIS_LIB than last time forces a rebuild.
if [ "$(cat "$OUT/.libdir" 2>/dev/null || true)" != "$LIB" ]; then
    echo "$LIB" >"$OUT/.libdir"
fi
INPUTS+=("$OUT/.libdir")

# ---- 3. mpy-cross ----------------------------------------------------------------------
if up_to_date "$OUT/mpy-cross" "$SRC/.debian-version" "$HERE/build.sh" 2>/dev/null && [ -x "$SRC/mpy-cross/build/mpy-cross" ]; then
    log "mpy-cross: up to date"
else
    run_logged mpy-cross make -C "$SRC/mpy-cross" -j"$JOBS"
    cp "$SRC/mpy-cross/build/mpy-cross" "$OUT/mpy-cross"
fi

# ---- 4. QEMU MPS2_AN385 (Cortex-M3) ---------------------------------------------------------
ELF=$OUT/qemu-mps2-an385.elf
if up_to_date "$ELF" "${INPUTS[@]}"; then
    log "qemu MPS2_AN385: up to date"
else
    run_logged qemu-mps2-an385 make -C "$SRC/ports/qemu" -j"$JOBS" BOARD=MPS2_AN385 \
        FROZEN_MANIFEST="$HERE/manifest_qemu.py"
    cp "$SRC/ports/qemu/build-MPS2_AN385/firmware.elf" "$ELF"
fi

# ---- 5. unix port ------------------------------------------------------------------------
# Debian strips axtls and berkeley-db and links the system mbedtls; manifest_unix.py does not
# include the variant manifest, because micropython-lib is absent from the +ds source.
UNIX=$OUT/micropython-unix
if up_to_date "$UNIX" "${INPUTS[@]}"; then
    log "unix port: up to date"
else
    run_logged unix make -C "$SRC/ports/unix" -j"$JOBS" VARIANT=standard \
        FROZEN_MANIFEST="$HERE/manifest_unix.py" \
        MICROPY_SSL_AXTLS=0 MICROPY_SSL_MBEDTLS=1 MICROPY_PY_BTREE=0
    cp "$SRC/ports/unix/build-standard/micropython" "$UNIX"
fi

# ---- 6. optional: RPI_PICO (RP2040) ------------------------------------------------------------
# pico-sdk and tinyusb come as Debian source packages in binary form (pico-sdk-source,
# tinyusb-source), mbedtls as a Debian source package; all from $RP2_SUITE, fetched with a
# temporary apt configuration like the MicroPython source. They are linked into the source tree's
# empty lib/ folders. No wifi: RPI_PICO_W needs cyw43-driver, lwIP and btstack, not in Debian.
fetch_rp2_deps() {
    local mirror keyring dir list opts d
    mirror=$(apt_mirror | grep -v -i security | grep -i debian | head -n 1 || true)
    [ -n "$mirror" ] || mirror=$(apt_mirror | grep -v -i security | head -n 1 || true)
    [ -n "$mirror" ] || return 1
    keyring=$(apt_keyring || true)
    dir=$(mktemp -d "$OUT/src/apt.XXXXXX")
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/dl"
    list=$dir/sources.list
    for d in deb deb-src; do
        if [ -n "$keyring" ]; then
            echo "$d [signed-by=$keyring] $mirror $RP2_SUITE main"
        else
            echo "$d $mirror $RP2_SUITE main"
        fi
    done >"$list"
    opts=(-o "Dir::Etc::SourceList=$list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root
        -o Dir::State::status=/dev/null)
    {
        apt-get "${opts[@]}" update -q &&
            (cd "$dir/dl" && apt-get "${opts[@]}" download -q pico-sdk-source tinyusb-source &&
                apt-get "${opts[@]}" source -q mbedtls)
    } >"$OUT/logs/fetch-rp2.log" 2>&1 || { rm -rf "$dir"; return 1; }
    rm -rf "$OUT/src/rp2"
    mkdir -p "$OUT/src/rp2/x"
    for d in "$dir"/dl/*.deb; do dpkg-deb -x "$d" "$OUT/src/rp2/x"; done
    mv "$OUT/src/rp2/x/usr/src/pico-sdk" "$OUT/src/rp2/x/usr/src/tinyusb" "$OUT/src/rp2/"
    mv "$(find "$dir/dl" -mindepth 1 -maxdepth 1 -type d -name 'mbedtls-*' | head -n 1)" "$OUT/src/rp2/mbedtls"
    rm -rf "$OUT/src/rp2/x"
    # the rp2 Makefile checks these files to see whether the submodules are initialised
    touch "$OUT/src/rp2/pico-sdk/README.md"
    (cd "$dir/dl" && ls ./*.deb ./*.dsc) | sed 's#^\./##' >"$OUT/src/rp2/.versions"
    rm -rf "$dir"
}

# link_lib NAME TARGET: make $SRC/lib/NAME point at TARGET, unless it already holds a checkout.
link_lib() {
    local l=$SRC/lib/$1
    if [ -L "$l" ] || { [ -d "$l" ] && [ -z "$(ls -A "$l")" ]; }; then
        rm -rf "$l"
        ln -s "$2" "$l"
    fi
}

if [ "$RP2" = 1 ]; then
    UF2=$OUT/rp2-pico.uf2
    if [ ! -f "$OUT/src/rp2/.versions" ]; then
        T0=$(now)
        log "fetching pico-sdk, tinyusb and mbedtls sources from $RP2_SUITE"
        fetch_rp2_deps || skip "could not fetch the RP2 build dependencies (see $OUT/logs/fetch-rp2.log)"
        log "rp2 deps: $(tr '\n' ' ' <"$OUT/src/rp2/.versions")in $(elapsed "$T0") s"
    fi
    link_lib pico-sdk "$OUT/src/rp2/pico-sdk"
    link_lib tinyusb "$OUT/src/rp2/tinyusb"
    link_lib mbedtls "$OUT/src/rp2/mbedtls"
    # only checked for presence: manifest.py requires nothing from micropython-lib
    [ -e "$SRC/lib/micropython-lib/README.md" ] || touch "$SRC/lib/micropython-lib/README.md"
    if up_to_date "$UF2" "${INPUTS[@]}" "$OUT/src/rp2/.versions"; then
        log "rp2 RPI_PICO: up to date"
    else
        # CMAKE_ARGS from the environment: the rp2 Makefile appends the board to it
        run_logged rp2-pico env CMAKE_ARGS="-DPICO_NO_PICOTOOL=1" \
            make -C "$SRC/ports/rp2" -j"$JOBS" BOARD=RPI_PICO FROZEN_MANIFEST="$HERE/manifest.py"
        cp "$SRC/ports/rp2/build-RPI_PICO/firmware.elf" "$OUT/rp2-pico.elf"
        # no picotool: make the UF2 (family RP2040, flash at 0x10000000) with MicroPython's uf2conv.py
        python3 "$SRC/tools/uf2conv.py" -c -b 0x10000000 -f 0xe48bff56 -o "$UF2" \
            "$SRC/ports/rp2/build-RPI_PICO/firmware.bin" >"$OUT/logs/uf2conv.log" 2>&1 ||
            { cat "$OUT/logs/uf2conv.log" >&2; die "uf2conv failed"; }
    fi
fi

# ---- summary -------------------------------------------------------------------------------
size_of() { stat -c %s "$1"; }
if command -v arm-none-eabi-size >/dev/null; then
    # text+data is what goes to flash; bss includes the GC heap
    read -r text data bss _ < <(arm-none-eabi-size "$ELF" | awk 'NR == 2')
    log "qemu-mps2-an385.elf: flash (text+data) $((text + data)) B, bss $bss B (includes the GC heap)"
fi
log "micropython-unix: $(size_of "$UNIX") B"
if [ "$RP2" = 1 ]; then
    read -r text data bss _ < <(arm-none-eabi-size "$OUT/rp2-pico.elf" | awk 'NR == 2')
    log "rp2-pico.uf2: flash (text+data) $((text + data)) B, bss $bss B; uf2 $(size_of "$OUT/rp2-pico.uf2") B"
fi
log "frozen: microredis from $LIB/microredis ($(find "$LIB/microredis" -name '*.py' | wc -l) .py files)"
log "total: $(elapsed "$T_ALL") s -> $OUT"
