# Two entry points a stranger needs: `make demo` and `make test`. Both create ./.venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export EDGE_HOME ?= $(CURDIR)/.edge-home

.PHONY: demo test setup setup-test models clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q -e '.[build]'

setup-test: setup
	$(BIN)/pip install -q -e '.[build,test]'
	$(BIN)/pip install -q --no-deps face_recognition==1.3.0 face-recognition-models==0.3.0

models: setup
	$(BIN)/edge models build

demo: models
	$(BIN)/edge demo

test: setup-test models
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .edge-home
