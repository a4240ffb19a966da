# vissl-pirl: `make demo` trains PIRL on the CPU, `make test` runs the tests.
# Both run `make install` first, which is idempotent.
# Python 3.11 to 3.13 are supported, 3.12 by default: `make PYTHON=python3.13 test`.
PYTHON ?= python3.12
VENV ?= .venv
# `make test` also runs the fast tests on this second Python, in its own venv, where it is present
SECOND_PYTHON ?= python3.13
SECOND_VENV := .venv-second

# pyenv's shims answer only for the active version: fall back to pyenv's own install of the one asked for
find_python = $(shell command -v $(1) >/dev/null 2>&1 && $(1) -c 'import sys; print(sys.executable)' 2>/dev/null \
	|| ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(patsubst python%,%,$(1))*/bin/$(1) 2>/dev/null | tail -n 1)
PYTHON_BIN := $(call find_python,$(PYTHON))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vissl-pirl-installed
DEMO_DATA := data/demo/.complete-v1-72
# no pip cache: the lock's wheels (about 2.6 GB, mostly CUDA libraries) would be kept twice, as
# wheels and installed; each is downloaded once per venv, and the second venv links its CUDA libraries
PIP_FLAGS := --quiet --disable-pip-version-check --no-cache-dir

.PHONY: install demo test test-fast test-second-python _second-venv bench compare quality-guard gpu-check \
	gpu-wheels gpu-sim-check slurm-packages slurm-check clean

install: $(STAMP) $(DEMO_DATA)

# $(1): the Python to build with, $(2): the venv, $(3): the Python asked for, $(4): an installed venv
# whose CUDA libraries $(2) may share
define install_venv
	@test -n "$(1)" || { echo "No $(3) found: install it, or choose a supported one with" \
		"make PYTHON=python3.11 (or python3.12, python3.13)." >&2; exit 1; }
	@$(1) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else \
		"vissl-pirl supports Python 3.11 to 3.13, not " + sys.version.split()[0] + \
		": choose one with make PYTHON=python3.12 (or python3.11, python3.13).")'
	@# a venv of another Python (an older checkout's, or another PYTHON=) is rebuilt
	@test -x $(2)/bin/python && [ "$$($(2)/bin/python -c 'import sys; print(sys.version_info[:2])')" \
		= "$$($(1) -c 'import sys; print(sys.version_info[:2])')" ] || { rm -rf $(2) && $(1) -m venv $(2); }
	$(if $(4),$(call link_cuda_libraries,$(4),$(2)))
	$(2)/bin/python -m pip install $(PIP_FLAGS) -r requirements-lock.txt
	$(2)/bin/python -m pip install $(PIP_FLAGS) --no-deps vissl==0.1.6 classy-vision==0.7.0
	$(2)/bin/python -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation \
		--config-settings editable_mode=compat -e .
	touch $(2)/.vissl-pirl-installed
endef

# The lock's nvidia-* packages (3 GB of CUDA libraries, the same files for every Python: tagged
# py3-none) hard-linked from venv $(1) into venv $(2), with their dist-info, so pip finds them
# installed at the lock's versions and the second venv costs 3 GB less. Only into a venv without
# them, on the same filesystem; pip unlinks a file before it rewrites one, so neither venv can
# change the other's. Where links fail, pip installs its own copy.
define link_cuda_libraries
	@src=$$(ls -d $(1)/lib/python3*/site-packages 2>/dev/null); dst=$$(ls -d $(2)/lib/python3*/site-packages); \
	if [ -d "$$src/nvidia" ] && [ ! -e "$$dst/nvidia" ]; then \
		if cp -al "$$src/nvidia" "$$src"/nvidia_*.dist-info "$$dst"/ 2>/dev/null; then \
			echo "$(2): the CUDA libraries hard-linked from $(1)"; \
		else rm -rf "$$dst/nvidia" "$$dst"/nvidia_*.dist-info; fi; \
	fi
endef

$(STAMP): requirements-lock.txt setup.py
	$(call install_venv,$(PYTHON_BIN),$(VENV),$(PYTHON))

$(DEMO_DATA): $(STAMP)
	$(PY) -m vissl_pirl_plugin.tools.demo_data --out data/demo

demo: install
	$(PY) -m vissl_pirl_plugin.tools.demo $(DEMO_ARGS)

# as root (CI), tests/test_slurm.py must run, not skip: slurm-packages installs SLURM first
SLURM_REQUIRED := $(shell [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && echo 1)

test: install slurm-packages
	PIRL_SLURM_REQUIRED=$(SLURM_REQUIRED) $(PY) -m pytest
	$(MAKE) --no-print-directory test-second-python

test-fast: install
	$(PY) -m pytest -m "not slow"

SECOND_PYTHON_BIN := $(call find_python,$(SECOND_PYTHON))
test-second-python:
ifeq ($(SECOND_PYTHON_BIN),)
	@echo "SKIPPED: the fast tests on $(SECOND_PYTHON): no $(SECOND_PYTHON) on this machine."
else
	@test -f $(SECOND_VENV)/.vissl-pirl-installed -a $(SECOND_VENV)/.vissl-pirl-installed -nt requirements-lock.txt \
		-a $(SECOND_VENV)/.vissl-pirl-installed -nt setup.py || { $(MAKE) --no-print-directory _second-venv; }
	@echo "The fast tests on $(SECOND_PYTHON) ($(SECOND_PYTHON_BIN)):"
	$(SECOND_VENV)/bin/python -m pytest -m "not slow"
endif

_second-venv:
	$(call install_venv,$(SECOND_PYTHON_BIN),$(SECOND_VENV),$(SECOND_PYTHON),$(VENV))

# Debian's SLURM for tests/test_slurm.py, where it is absent and we are root: the packages only,
# no daemon started (a policy-rc.d that denies starts, the machine's own or one for the install);
# the tests start a private cluster and stop it. Idempotent: nothing to do once installed.
SLURM_PACKAGES := slurm-wlm munge
slurm-packages:
	@command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
		&& exit 0; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "SKIPPED: installing $(SLURM_PACKAGES) needs root and apt-get (tests/test_slurm.py says why it skips)."; \
		exit 0; fi; \
	echo "Installing $(SLURM_PACKAGES) for tests/test_slurm.py (no daemon is started)"; \
	policy=/usr/sbin/policy-rc.d; own=0; \
	[ -e $$policy ] || { printf '#!/bin/sh\nexit 101\n' > $$policy && chmod +x $$policy && own=1; }; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null \
		|| { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(SLURM_PACKAGES) >/dev/null; }; \
	status=$$?; [ $$own = 0 ] || rm -f $$policy; exit $$status

# tests/test_slurm.py alone: a private one-node cluster (root), or your own cluster from its login
# node with SLURM_PARTITION=<partition> SLURM_CHECK_DIR=<a folder the compute nodes share>
SLURM_PARTITION ?=
SLURM_CHECK_DIR ?=
slurm-check: install $(if $(SLURM_PARTITION),,slurm-packages)
	PIRL_SLURM_REQUIRED=1 PIRL_SLURM_PARTITION=$(SLURM_PARTITION) PIRL_SLURM_DIR=$(SLURM_CHECK_DIR) \
		$(PY) -m pytest -v tests/test_slurm.py

bench: install
	$(PY) benchmarks/run_benchmarks.py

quality-guard: install
	$(PY) benchmarks/quality_guard.py

# the paper's comparison in miniature (docs/performance.md); COMPARE_ARGS e.g. "--seeds 0 1 2 3 4"
compare: install
	$(PY) benchmarks/compare_methods.py $(COMPARE_ARGS)

# on a CUDA machine with this project's .venv: the whole kit (docs/performance.md, "GPU check kit")
GPU_KIT_OUT ?= gpu-kit-out
gpu-check: install
	$(PY) benchmarks/gpu_lease.py $(GPU_KIT_OUT) --wheels /nonexistent

# the packages a lent GPU machine lacks (it has torch, numpy, OpenCV, scikit-*, pytest ...), as
# pure-Python wheels in .whl/ (git-ignored, ~2 MiB), at the lock's versions
GPU_WHEEL_PACKAGES := hydra-core omegaconf antlr4-python3-runtime fvcore iopath yacs submitit \
	termcolor parameterized
locked = $(shell grep -E '^($(subst $(eval) ,|,$(1)))==' requirements-lock.txt | cut -d';' -f1)
gpu-wheels:
	@test -n "$(PYTHON_BIN)" || { echo "No $(PYTHON) found." >&2; exit 1; }
	rm -rf .whl
	$(PYTHON_BIN) -m pip wheel $(PIP_FLAGS) --no-deps --wheel-dir .whl \
		vissl==0.1.6 classy-vision==0.7.0 $(call locked,$(GPU_WHEEL_PACKAGES))
	@ls .whl

# The lent machine's stack, simulated on the CPU (not in CI: it downloads about 3 GB): Python
# 3.12, torch 2.11 / torchvision 0.26 / numpy 2.5.2, the rest of the lock without the wheels of
# gpu-wheels, which are installed with --target as there. Runs the fast tests, the kit's checks
# in one process and the kit's one command, all on the CPU.
GPU_SIM_VENV := .venv-gpu-sim
GPU_SIM_STACK := torch==2.11.0 torchvision==0.26.0 numpy==2.5.2
GPU_SIM_NOT_FROM_LOCK := torch torchvision numpy triton setuptools nvidia-[a-z0-9-]+ cuda-[a-z-]+ \
	$(GPU_WHEEL_PACKAGES)
gpu-sim-check: gpu-wheels
	@test -x $(GPU_SIM_VENV)/bin/python || $(PYTHON_BIN) -m venv $(GPU_SIM_VENV)
	$(GPU_SIM_VENV)/bin/python -m pip install $(PIP_FLAGS) $(GPU_SIM_STACK)
	grep -vE '^($(subst $(eval) ,|,$(GPU_SIM_NOT_FROM_LOCK)))==' requirements-lock.txt \
		> $(GPU_SIM_VENV)/image-packages.txt
	$(GPU_SIM_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -r $(GPU_SIM_VENV)/image-packages.txt
	rm -rf $(GPU_SIM_VENV)/site
	$(GPU_SIM_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-index --no-deps --target \
		$(GPU_SIM_VENV)/site .whl/*.whl
	PYTHONPATH=$(CURDIR)/$(GPU_SIM_VENV)/site:$(CURDIR) $(GPU_SIM_VENV)/bin/python -m pytest -p no:cacheprovider -m "not slow"
	PYTHONPATH=$(CURDIR)/$(GPU_SIM_VENV)/site:$(CURDIR) $(GPU_SIM_VENV)/bin/python benchmarks/gpu_check.py --device cpu \
		--out $(GPU_KIT_OUT)-sim/gpu_check.json
	$(GPU_SIM_VENV)/bin/python benchmarks/gpu_lease.py $(GPU_KIT_OUT)-sim --device cpu

clean:
	rm -rf $(VENV) $(SECOND_VENV) $(GPU_SIM_VENV) .whl $(GPU_KIT_OUT) $(GPU_KIT_OUT)-sim data/demo \
		checkpoints build *.egg-info
