# The two set-up commands: `make quickstart` and `make test`. Both create or refresh .venv/ with Python >= 3.12.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: quickstart test test-fast venv java clean suite

# Python >= 3.12 (3.12 preferred): $PYTHON if set, else python3.12 on PATH or pyenv's, then newer ones.
define find_python
for c in "$${PYTHON:-}" python3.12 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3 2>/dev/null | sort -rV) \
         python3.13 python3 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[3-9]*/bin/python3 2>/dev/null | sort -rV) \
         /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9] /opt/homebrew/bin/python3.1[2-9]; do \
  [ -n "$$c" ] || continue; \
  if "$$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then echo "$$c"; exit 0; fi; \
done; \
echo "error: Python >= 3.12 not found; install it (e.g. \`pyenv install 3.12\` or your OS package python3.12) or set PYTHON=/path/to/python3.12" >&2; exit 1
endef

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then \
	  py=$$($(find_python)) || exit 1; \
	  echo "creating $(VENV) with $$py"; rm -rf $(VENV); "$$py" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/splade-pyserini quickstart --work-dir work/quickstart

# make test: every test (CI runs it), in TEST_WORKERS pytest-xdist workers (default 2: the 2-core machines; each
# module's tests stay in one worker, so its fixtures are built once; the collections' pipelines are built once for
# all workers). make test-fast: the edit loop, in the same workers, leaving out the tests marked slow (a Python or
# JVM subprocess, a whole collection encoded, a notebook); it fails a test that starts one while not marked slow.
# PYTHONDONTWRITEBYTECODE= (empty: Python's default) where the environment turns bytecode caches off: pytest then keeps
# its assertion-rewritten modules (~3.5 s of CPU a worker otherwise) and the package's subprocesses their .pyc files.
TEST_WORKERS ?= 2
test: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=25

test-fast: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadscope --durations=10

# BM25 vs splade-tiny on Vaswani and Cranfield: runs, significance tests with corrected p-values, meta-analysis and
# forest plot in work/suite/results (COLLECTIONS: a folder holding the BEIR-layout vaswani/ and cranfield/).
COLLECTIONS ?= ../shared/collections
suite: $(STAMP)
	@set -e; for c in vaswani cranfield; do \
	  d=work/suite/$$c; mkdir -p $$d; \
	  $(VENV)/bin/splade-pyserini encode --encoder splade-tiny --corpus $(COLLECTIONS)/$$c --output $$d/vectors; \
	  $(VENV)/bin/splade-pyserini index --vectors $$d/vectors --index $$d/index; \
	  $(VENV)/bin/splade-pyserini search --index $$d/index --encoder splade-tiny --topics $(COLLECTIONS)/$$c --output work/suite/runs/splade.$$c.trec --threads 2; \
	  $(VENV)/bin/splade-pyserini bm25 --corpus $(COLLECTIONS)/$$c --topics $(COLLECTIONS)/$$c --index $$d/bm25-index --output work/suite/runs/bm25.$$c.trec --threads 2; \
	done
	$(VENV)/bin/splade-pyserini evaluate-suite --collections vaswani=$(COLLECTIONS)/vaswani cranfield=$(COLLECTIONS)/cranfield \
	  --runs bm25='work/suite/runs/bm25.{collection}.trec' splade-tiny='work/suite/runs/splade.{collection}.trec' \
	  --baseline bm25 --treatment splade-tiny --output work/suite/results

# Rebuild the Java extension's shipped jar (java/dist) after editing java/src; needs a JDK >= 21 (javac).
java: $(STAMP)
	$(PY) -m splade_pyserini.javabuild build

clean:
	rm -rf work splade-quickstart .pytest_cache
