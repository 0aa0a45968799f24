# The README's commands. Every target sets up its own virtualenv.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint typecheck unit system-deps browser-deps clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

system-deps:
	bash scripts/install-system-deps.sh
	bash scripts/install-helm.sh >/dev/null

## make browser-deps: Debian's chromium only, for browser checks (the demo's browser example).
## Without it (no root, no sudo) the demo still runs; its browser check errors until it is there.
browser-deps:
	@bash scripts/install-system-deps.sh browser || echo "make browser-deps: could not install" \
		"Debian's chromium (bash scripts/install-system-deps.sh browser as root); the demo's" \
		"browser check errors without it" >&2

## make demo: set up (Python packages, Debian's chromium), then run the agent against its
## embedded demo API.
demo: $(STAMP) browser-deps
	$(VENV)/bin/synthetic-exporter demo

## make test: set up (Python and Debian packages), then lint, type check and run every test.
test: $(STAMP) system-deps lint typecheck unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

## make dashboards: regenerate the Grafana dashboards' JSON (grafana/dashboards/) from Python.
.PHONY: dashboards
dashboards: $(STAMP)
	$(PY) -m grafana.dashboards
	bash helm/sync-files.sh

## make alerts: regenerate alerts/synthetic-exporter.rules.yml from alerts/config.yaml.
.PHONY: alerts
alerts: $(STAMP)
	$(PY) -m alerts.generate
	bash helm/sync-files.sh

## make bench: measure the agent against Debian's blackbox_exporter; writes docs/performance.md.
## BENCH_ARGS=--quick only checks the harness end to end (seconds); see benchmarks/run.py.
.PHONY: bench
bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

## make faults: misbehaving check code against a real agent; prints what held (docs/reliability.md).
.PHONY: faults
faults: $(STAMP)
	$(PY) scripts/fault_trial.py

## make soak: kill -9 the agent at random moments (20 times, then one SIGTERM) while the demo API
## takes 200 ms to answer creates, then start it cleanly and count the leaked test data (goal: 0).
## SOAK_ARGS="--kills 5 --seed 1" changes the run; see scripts/soak.py.
.PHONY: soak
soak: $(STAMP)
	$(PY) scripts/soak.py $(SOAK_ARGS)

## make load: 50 gzip scrapers and 6 API pollers for 60 s against an agent running 200 suites x 5
## tests; prints /metrics latency, errors, RSS and schedule lag against their goals
## (docs/reliability.md). LOAD_ARGS="--seconds 20" changes the run; see scripts/load_scrapers.py.
.PHONY: load
load: $(STAMP)
	$(PY) scripts/load_scrapers.py $(LOAD_ARGS)

## make lock: refresh the lock files the Dockerfile installs from (requirements/*.lock, with
## hashes) after a change to pyproject.toml's dependencies; LOCK_ARGS=--upgrade moves every pin
## to the newest allowed release. uv (pinned) is installed from PyPI into .cache/tools.
UV_VERSION := 0.13.10
UV := .cache/tools/bin/uv
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform linux --custom-compile-command "make lock" $(LOCK_ARGS)
.PHONY: lock
lock:
	@[ "$$($(UV) --version 2>/dev/null)" = "uv $(UV_VERSION)" ] || { \
		python3 -m venv .cache/tools && .cache/tools/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.lock
	$(UV_COMPILE) pyproject.toml --extra s3 -o requirements/runtime-s3.lock
	$(UV_COMPILE) pyproject.toml --extra browser -o requirements/runtime-browser.lock
	$(UV_COMPILE) pyproject.toml --extra s3 --extra browser -o requirements/runtime-s3-browser.lock
	python3 -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(UV_COMPILE) - -o requirements/build.lock

## make image: build the container image without Docker (buildah on an mmdebstrap Debian base,
## wheels from the lock files; needs root, buildah and mmdebstrap: make system-deps); see
## docs/deploy.md and scripts/build-image.sh.
.PHONY: image
image:
	bash scripts/build-image.sh
