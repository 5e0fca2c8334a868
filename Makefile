# Two entry points, both create or reuse .venv and install what they need:
#   make demo   fuse the bundled real EnMAP sample with DC-STSF and every baseline, write GeoTIFFs + report
#   make test   lint with ruff, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test install browser clean

# torch is pinned to the CPU wheel first: a looser request would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,train]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/dcstsf demo -o demo-output --overwrite

# The report's browser test needs a headless Chromium; Debian's package is installed when the system
# allows it (root with apt). Without one that test is skipped and says why; nothing else depends on it.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } || \
	  echo "no headless Chromium (apt-get install chromium): the report's browser test will be skipped"

test: install browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf demo-output build *.egg-info
