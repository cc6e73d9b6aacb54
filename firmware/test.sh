#!/usr/bin/env bash
# Run tests on the firmware that firmware/build.sh made (it is called first; quick when up to date).
#
#   bash firmware/test.sh                          # or: make test-firmware
#   bash firmware/test.sh my_script.py             # plus a self-contained script
#   bash firmware/test.sh tests_device:t_resp      # plus tests_device modules, bundled (below)
#
# Each script runs on a fresh QEMU MPS2_AN385 board (Cortex-M3, microredis frozen in) through
# `mpremote connect /dev/pts/N run SCRIPT`. firmware/smoke_frozen.py always runs first, and also
# on the frozen unix binary. A script passes when it exits cleanly (rc 0) and its last line of the
# form "N passed, N failed[, N skipped]" has N >= 1 passed and 0 failed; with 0 passed, 0 failed
# and some skipped it counts as skipped. The run fails if any script fails or none passes.
#
# The QEMU board has no filesystem, socket or select, so `mpremote mount` cannot work: a script
# must be self-contained. `tests_device:t_a,t_b` packs tests_device/run.py, its helpers (every
# tests_device/*.py not named t_*) and t_a.py, t_b.py into one script with firmware/bundle.py
# (an in-memory filesystem at /bundle; modules precompiled by the matching mpy-cross) and runs
# `run.py t_a t_b` there. `tests_device:` alone runs every t_*.py, one bundle (and board) each.
# Server-backed tests skip there (no network).
#
# Environment:
#   FIRMWARE_OUT          where build.sh put the firmware (default: <repo>/build/firmware)
#   FIRMWARE_NO_BUILD=1   do not call build.sh first
#   FIRMWARE_TEST_TIMEOUT seconds per script (default 300)
#   MPREMOTE              the mpremote command (default: <repo>/.venv/bin/mpremote, else PATH)
#   KEEP=1                keep the generated bundles and logs (printed at the end)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${FIRMWARE_OUT:-$ROOT/build/firmware}
ELF=$OUT/qemu-mps2-an385.elf
UNIX=$OUT/micropython-unix
TIMEOUT=${FIRMWARE_TEST_TIMEOUT:-300}
PYTHON=python3
[ -x "$ROOT/.venv/bin/python" ] && PYTHON=$ROOT/.venv/bin/python

log() { echo "[test-firmware] $*"; }
skip() { echo "SKIP: $*"; exit 0; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "${FIRMWARE_NO_BUILD:-0}" != 1 ]; then
    bash "$HERE/build.sh"
fi
[ -f "$ELF" ] || skip "no firmware at $ELF (firmware/build.sh skipped or was not run)"
command -v qemu-system-arm >/dev/null || skip "qemu-system-arm is not installed"
if [ -n "${MPREMOTE:-}" ]; then
    read -r -a MPR <<<"$MPREMOTE"
elif [ -x "$ROOT/.venv/bin/mpremote" ]; then
    MPR=("$ROOT/.venv/bin/mpremote")
elif command -v mpremote >/dev/null; then
    MPR=(mpremote)
else
    skip "mpremote not found (make .venv, or pip install mpremote)"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/microredis-fwtest.XXXXXX")
QPID=
cleanup() {
    if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "[test-firmware] kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- scripts to run -------------------------------------------------------------------------
# bundle_device "t_a,t_b" OUTFILE: tests_device/run.py + helpers + the named t_*.py, in one script.
bundle_device() {
    local list=$1 out=$2 d=$ROOT/tests_device f names=() files=()
    [ -f "$d/run.py" ] || { echo "no $d/run.py" >&2; return 1; }
    for f in "$d"/*.py; do
        case $(basename "$f") in run.py | t_*) ;; *) files+=("$f") ;; esac
    done
    IFS=',' read -r -a names <<<"$list"
    if [ ${#names[@]} -eq 0 ]; then
        for f in "$d"/t_*.py; do names+=("$(basename "$f" .py)"); done
    fi
    for f in "${names[@]}"; do
        f=${f%.py}
        [ -f "$d/$f.py" ] || { echo "no $d/$f.py" >&2; return 1; }
        files+=("$d/$f.py")
    done
    local mpyc=()
    [ -x "$OUT/mpy-cross" ] && mpyc=(--mpy-cross "$OUT/mpy-cross")
    "$PYTHON" "$HERE/bundle.py" -o "$out" "${mpyc[@]}" "$d/run.py" "${files[@]}" --argv "${names[@]}"
}

SCRIPTS=("$HERE/smoke_frozen.py")
NAMES=("smoke_frozen.py")
n=0
for arg in "$@"; do
    n=$((n + 1))
    case $arg in
    tests_device:)
        # every module, each in its own bundle on a fresh board: the packed files take RAM
        for f in "$ROOT"/tests_device/t_*.py; do
            m=$(basename "$f" .py)
            out=$WORK/bundle$n-$m.py
            bundle_device "$m" "$out"
            SCRIPTS+=("$out")
            NAMES+=("tests_device:$m")
        done
        ;;
    tests_device:*)
        out=$WORK/bundle$n.py
        bundle_device "${arg#tests_device:}" "$out"
        SCRIPTS+=("$out")
        NAMES+=("$arg")
        ;;
    *)
        [ -f "$arg" ] || { echo "[test-firmware] ERROR: no such script: $arg" >&2; exit 2; }
        SCRIPTS+=("$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")")
        NAMES+=("$arg")
        ;;
    esac
done

# ---- helpers ----------------------------------------------------------------------------------
TOTAL_P=0
TOTAL_F=0
TOTAL_S=0
PASSED_SCRIPTS=0
FAILED_SCRIPTS=()

# check_output NAME RC LOG: judge one run from its rc and its last summary line. All tests
# skipped (e.g. every one needs a server) with rc 0 is reported as SKIP, not as a pass.
check_output() {
    local name=$1 rc=$2 out=$3 summary p f sk
    summary=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1 || true)
    p=$(echo "$summary" | awk '{ print $1 + 0 }')
    f=$(echo "$summary" | awk '{ print $3 + 0 }')
    sk=$(echo "$summary" | awk '{ print $5 + 0 }')
    TOTAL_P=$((TOTAL_P + p))
    TOTAL_F=$((TOTAL_F + f))
    TOTAL_S=$((TOTAL_S + sk))
    if [ "$rc" -eq 0 ] && [ -n "$summary" ] && [ "$f" -eq 0 ] && [ "$p" -ge 1 ]; then
        log "PASS $name ($summary)"
        PASSED_SCRIPTS=$((PASSED_SCRIPTS + 1))
    elif [ "$rc" -eq 0 ] && [ -n "$summary" ] && [ "$f" -eq 0 ] && [ "$sk" -ge 1 ]; then
        log "SKIP $name ($summary)"
    else
        log "FAIL $name (rc=$rc, summary: '${summary:-none}')"
        FAILED_SCRIPTS+=("$name")
        [ -n "$summary" ] && [ "$f" -gt 0 ] || TOTAL_F=$((TOTAL_F + 1))
    fi
}

# start_qemu LOG: start a board in the background (QPID), wait for its serial pty (PTS).
start_qemu() {
    local qlog=$1 i
    PTS=
    qemu-system-arm -machine mps2-an385 -nographic -monitor null -semihosting \
        -serial pty -kernel "$ELF" </dev/null >"$qlog" 2>&1 &
    QPID=$!
    for i in $(seq 100); do
        PTS=$(grep -ao '/dev/pts/[0-9]*' "$qlog" | head -n 1 || true)
        [ -n "$PTS" ] && return 0
        kill -0 "$QPID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$qlog" >&2
    return 1
}

stop_qemu() {
    if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; fi
    QPID=
}

# ---- unix port: the smoke test on the frozen binary -----------------------------------------------
T_ALL=$(now)
if [ -x "$UNIX" ]; then
    t0=$(now)
    log "unix: micropython-unix smoke_frozen.py"
    rc=0
    # run from an empty folder, so that only the frozen microredis can be imported
    (cd "$WORK" && timeout "$TIMEOUT" "$UNIX" "$HERE/smoke_frozen.py") >"$WORK/unix.log" 2>&1 || rc=$?
    cat "$WORK/unix.log"
    check_output "unix: smoke_frozen.py" "$rc" "$WORK/unix.log"
    log "unix: $(elapsed "$t0") s"
else
    log "unix: no $UNIX, skipped"
fi

# ---- QEMU MPS2_AN385 ------------------------------------------------------------------------------
i=0
for script in "${SCRIPTS[@]}"; do
    name=${NAMES[$i]}
    i=$((i + 1))
    t0=$(now)
    if ! start_qemu "$WORK/qemu$i.log"; then
        log "FAIL qemu: $name (qemu did not start)"
        FAILED_SCRIPTS+=("qemu: $name")
        TOTAL_F=$((TOTAL_F + 1))
        stop_qemu
        continue
    fi
    log "qemu: $name on $PTS"
    rc=0
    timeout "$TIMEOUT" "${MPR[@]}" connect "$PTS" run "$script" </dev/null >"$WORK/run$i.log" 2>&1 || rc=$?
    cat "$WORK/run$i.log"
    [ "$rc" -eq 124 ] && log "timed out after $TIMEOUT s"
    check_output "qemu: $name" "$rc" "$WORK/run$i.log"
    stop_qemu
    log "qemu: $(elapsed "$t0") s"
done

log "total: $(elapsed "$T_ALL") s"
line="$TOTAL_P passed, $TOTAL_F failed"
[ "$TOTAL_S" -gt 0 ] && line="$line, $TOTAL_S skipped"
echo "$line"
if [ ${#FAILED_SCRIPTS[@]} -gt 0 ]; then
    log "FAILED: ${FAILED_SCRIPTS[*]}"
    exit 1
fi
if [ "$PASSED_SCRIPTS" -eq 0 ]; then
    log "FAILED: no script passed (all skipped)"
    exit 1
fi
