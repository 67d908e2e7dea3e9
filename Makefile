# Everything runs inside the project's own virtual environment, created or updated here:
# nothing depends on what happens to be installed on the machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test quick test-pythons test-lowest lint demo demo-worker bench clean

venv: $(STAMP)

# Rebuilt whenever pyproject.toml changes. The editable install is setuptools' strict mode,
# so only `sesh.*` is importable (never a top-level `core`) and mypy can follow it.
# The peers of benchmarks/requirements.txt come too: `make lint` type-checks the benchmarks.
$(STAMP): pyproject.toml benchmarks/requirements.txt core stores adapters
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" --config-settings editable_mode=strict
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	touch $(STAMP)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy -p sesh.core -p sesh.stores -p sesh.adapters
	cd examples && ../$(PY) -m mypy --config-file ../pyproject.toml .
	cd benchmarks && MYPYPATH=../tests ../$(PY) -m mypy --config-file ../pyproject.toml .
	cd tests && ../$(PY) -m mypy --config-file ../pyproject.toml .

test: lint
	$(PY) -m pytest

# The inner loop: the suite without what starts processes (servers, a browser, a Redis of
# its own, pip: the `slow` marker, set in tests/conftest.py), and no lint. Seconds, not
# minutes; `make test` remains the whole check.
quick: venv
	$(PY) -m pytest -q -m "not slow"

# The whole of `make test` again under every other Python we support, each in its own
# .venv-3.X: what pip installs differs by version (bareASGI 5, on 3.12 and newer, changed
# its WebSocket class). A Python found neither on PATH nor in pyenv (its newest patch
# release) is named and passed over; under CI=true it is a failure. .ci/run calls this
# after `make test`, which covered $(PYTHON)'s own version.
SUPPORTED_PYTHONS ?= 3.10 3.11 3.12 3.13
test-pythons:
	@own=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	for v in $(SUPPORTED_PYTHONS); do \
	  [ "$$v" != "$$own" ] || continue; \
	  py=$$(python$$v -c 'import sys; print(sys.executable)' 2>/dev/null || \
	        ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/$$v.*/bin/python$$v 2>/dev/null | \
	        sort -V | tail -n 1); \
	  if [ -z "$$py" ]; then \
	    echo "python$$v: not on this machine, not tested"; \
	    [ "$${CI:-}" != true ] || exit 1; continue; \
	  fi; \
	  echo "== make test on $$py"; \
	  $(MAKE) --no-print-directory test PYTHON="$$py" VENV=.venv-$$v || exit 1; \
	done

# The test suite against the oldest version of each dependency that pyproject.toml allows,
# in .venv-lowest: the venv recipe above, with pip held to the pins that
# tests/lowest_constraints.py derives from the bounds. Type checks are left out: older
# libraries ship older type hints. .ci/run calls this too.
LOWEST := .venv-lowest
test-lowest: venv
	mkdir -p $(LOWEST)
	$(PY) tests/lowest_constraints.py > $(LOWEST)/constraints.txt
	PIP_CONSTRAINT="$(CURDIR)/$(LOWEST)/constraints.txt" $(MAKE) --no-print-directory venv VENV=$(LOWEST)
	$(LOWEST)/bin/python -m pytest

demo: venv
	$(PY) -m uvicorn --app-dir examples app:app --host 127.0.0.1 --port $${PORT:-8000}

# The Celery worker of the demo's job, for a demo run with SESH_BROKER_URL (see examples/jobs.py).
demo-worker: venv
	$(PY) -m celery --workdir examples -A jobs worker --loglevel INFO

# A few minutes: every system and scenario in-process, Redis round trips, memory, and HTTP
# under wrk (installed here when missing). Writes benchmarks/RESULTS.md.
bench: venv
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
	command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-3.* $(LOWEST) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
