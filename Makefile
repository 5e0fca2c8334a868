# Two entry points, both create or reuse .venv and install what they need:
#   make demo   fuse the bundled real EnMAP sample with DC-STSF and every baseline, write GeoTIFFs + report
#   make test   lint with ruff, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test install clean

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

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf demo-output build *.egg-info
