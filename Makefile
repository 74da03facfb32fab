# `make train` and `make test` each create .venv if missing and install toolkit and every
# bundled plugin (plugins/*/) into it, editable, then run.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP   := $(VENV)/.installed
# The CPU build of torch lies on this machine's disk; a plain `torch` pulls a multi-GB CUDA build.
TORCH   ?= torch==2.13.0

.PHONY: install train test docs bench clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools

$(STAMP): $(PY) pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PY) -m pip install -q "$(TORCH)" || $(PY) -m pip install -q "torch>=2.3"
	$(PY) -m pip install -q -e ".[test]" $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

train: $(STAMP)
	$(VENV)/bin/toolkit train dqn --env Pong

# Two test processes (pytest-xdist), one torch thread each: the Ray tests share one of them
# (xdist_group "ray"); everything else is spread over both.
test: $(STAMP)
	WANDB_MODE=offline WANDB_SILENT=true OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadgroup

# The documentation site (mkdocs-material): command pages with their --help and a real
# session (docs/sessions.json; `python docs/capture_sessions.py` renews it), a page per
# bundled plugin, the API reference. Strict: a broken link or reference fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/loop_overhead.py
	$(PY) benchmarks/replay_memory.py

clean:
	rm -rf $(VENV) build site *.egg-info
