# phicalc: `make demo` runs the main job, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.phicalc-installed

.PHONY: install test demo lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch first: the CPU build 2.13.0 (a bare `torch` would pull a multi-GB CUDA build).
$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

demo: $(STAMP)
	$(VENV)/bin/phicalc md --model phi-painn-organic --structure "CC(=O)Oc1ccccc1C(=O)O" \
		--ensemble langevin --temperature 300 --timestep 0.5 --steps 2000 --out md_runs/demo --seed 0

lint: $(STAMP)
	$(VENV)/bin/ruff check phicalc tests benchmarks
	$(VENV)/bin/ruff format --check phicalc tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/calculator_speed.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
