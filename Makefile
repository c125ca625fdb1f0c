# Atelier: two commands on a fresh machine.
#   make run   - install into .venv and start the web app on the sample artworks
#   make test  - install with the dev extras and run the whole test suite (a process a core)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PORT   ?= 8501
ADDRESS ?= 127.0.0.1
PYTEST_ARGS ?=
# test processes (pytest-xdist): one per core, at most 4 (memory); a test file stays in
# one process, so its module fixtures (a web server, an analysed collection) are made once
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); echo $$(( n > 4 ? 4 : n )))

.PHONY: run test install install-dev lint analyze-samples constraints clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"

$(VENV)/.installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) install --quiet -c constraints.txt -e .
	$(PY) .ci/check_opencv.py --repair --single
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e ".[dev,pdf,dist,onnx,reference]"
	$(PY) .ci/check_opencv.py --repair
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/atelier app --address $(ADDRESS) --port $(PORT)

test: install-dev
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

analyze-samples: install
	$(VENV)/bin/atelier analyze sample_artworks --out runs/demo

# Re-pin constraints.txt from a fresh venv with every extra (run by maintainers).
constraints:
	rm -rf /tmp/atelier-pin && $(PYTHON) -m venv /tmp/atelier-pin
	/tmp/atelier-pin/bin/pip install --quiet -e ".[dev,pdf,dist,onnx,reference]"
	/tmp/atelier-pin/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache runs
