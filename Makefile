# vissl-pirl: `make demo` trains PIRL on the CPU, `make test` runs the tests.
# Both run `make install` first, which is idempotent.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.vissl-pirl-installed
DEMO_DATA := data/demo/.complete-v1-72

.PHONY: install demo test test-fast bench quality-guard clean

install: $(STAMP) $(DEMO_DATA)

$(STAMP): requirements-lock.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements-lock.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps vissl==0.1.6 classy-vision==0.7.0
	$(PIP) install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e .
	touch $(STAMP)

$(DEMO_DATA): $(STAMP)
	$(PY) -m vissl_pirl_plugin.demo_data --out data/demo

demo: install
	$(PY) -m vissl_pirl_plugin.demo $(DEMO_ARGS)

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

bench: install
	$(PY) benchmarks/run_benchmarks.py

quality-guard: install
	$(PY) benchmarks/quality_guard.py

clean:
	rm -rf $(VENV) data/demo checkpoints build *.egg-info
