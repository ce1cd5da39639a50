# One command each, from a fresh clone with Python >= 3.10 (README: "Two commands").
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-all bench docs clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# the main job: set up, then run the demo (prints the result, writes PNGs to ./cbopt-demo)
demo: $(BIN)/python
	$(BIN)/pip install -q -e ".[plot]"
	$(BIN)/cbopt demo

# the test suite (fast subset; slow statistical tests with `make test-all`)
test: $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q "torch==2.13.0" || echo "torch not installable here: torch tests will be skipped"
	$(BIN)/ruff check src tests examples benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-all:
	$(MAKE) test PYTEST_ARGS="--runslow"

bench: $(BIN)/python
	$(BIN)/pip install -q -e ".[bench,dist]"
	$(BIN)/pip install -q "torch==2.13.0" || echo "torch not installable here: no torch columns"
	$(BIN)/python benchmarks/step_time.py
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/defaults.py
	$(BIN)/python benchmarks/solve_quality.py
	$(BIN)/python benchmarks/ach_cost.py
	$(BIN)/python benchmarks/variants.py
	$(BIN)/python benchmarks/parallel.py
	$(BIN)/python benchmarks/gpu_throughput.py
	$(BIN)/python benchmarks/gpu.py
	OPENBLAS_NUM_THREADS=1 $(BIN)/python benchmarks/large_scale.py --dims 1000 --budget 1e5
	$(BIN)/pip install -q -e ".[nn]"
	$(BIN)/python benchmarks/zo_memory.py
	$(BIN)/python benchmarks/nn_throughput.py

# the documentation site: guides + API reference from the docstrings, into ./site (warnings are errors)
docs: $(BIN)/python
	$(BIN)/pip install -q -e ".[docs]"
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) cbopt-demo .pytest_cache .hypothesis site
