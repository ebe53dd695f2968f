# Two commands for a fresh machine: `make run` and `make test` (see README).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck pytest fuzz bench profile bytecode clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dvc]'
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(STAMP)

# The package's bytecode, as installing a wheel leaves it. Where PYTHONDONTWRITEBYTECODE is
# set (it is on our machines) an editable install has none, and every run compiles pipeline/
# again: 0.05 s of a 1.2 s run. Incremental: only changed modules are compiled.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q pipeline

# Runs the four stages and the report through DVC on raw/ (dvc.yaml); outputs land in clean/
run: $(STAMP) bytecode
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro
	@cat clean/report.json | head -12

test: $(DEV_STAMP) lint typecheck pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check pipeline tests fuzz benchmarks
	$(BIN)/ruff format --check pipeline tests fuzz benchmarks

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/pytest

# Bounded fuzzing of the resolver and the export-row parser; records docs/FUZZING.md.
fuzz: $(DEV_STAMP)
	$(BIN)/python -m fuzz.run --seconds 120 --report docs/FUZZING.md

# Pipeline against the naive baseline on the archive and synthetic archives; rewrites BENCHMARKS.md.
# Larger sizes on demand: make bench BENCH_ARGS="--sizes 998,10000,100000"
bench: $(DEV_STAMP) bytecode
	$(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

# Where a run's time goes: py-spy's samples of one run on 10,000 synthetic posts, by process
# role and function; rewrites docs/PROFILE.md. Another size: make profile PROFILE_ARGS="--posts 100000"
profile: $(DEV_STAMP) bytecode
	$(BIN)/python -m benchmarks.profile $(PROFILE_ARGS)

clean:
	rm -rf clean data .pytest_cache .mypy_cache .ruff_cache
