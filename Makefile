# diffusion-atlas: `make site` builds the whole site from nothing, `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first and pinned: here it resolves to the local CPU build; on a GPU machine PyPI's
# default (CUDA) build. Pick another build with e.g. TORCH_SPEC="torch==2.13.0" TORCH_INDEX="--index-url ...".
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PROMPTS ?=
# test processes (pytest-xdist); each test file stays on one process, so its fixtures are built once
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed

.PHONY: install site test test-fast bench serve clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

site: install
	$(VENV)/bin/diffatlas build $(PROMPTS)

test: install
	$(PY) -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadfile

test-fast: install
	$(PY) -m pytest -q -m "not browser and not slow"

bench: install
	$(PY) bench/bake_overhead.py
	$(PY) bench/jumps.py

serve: install
	$(VENV)/bin/diffatlas serve

clean:
	rm -rf build site/generated site/embed
