# Two sacred commands: `make demo` (the main job) and `make test` (the suite).
# Both build .venv from nothing when it is missing or older than pyproject.toml.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# vowpal-wabbit-next only has wheels for CPython 3.11/3.12: pick the first such interpreter.
PYTHON ?= $(shell for p in python3.11 python3.12 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info[:2] not in ((3,11),(3,12)))' 2>/dev/null; \
	then echo $$p; break; fi; done)

.PHONY: demo test lint typecheck unit venv clean monitoring-tools fuzz audit test-faults

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: SmartTrip needs python3.11 or python3.12 on PATH (vowpal-wabbit-next ships wheels only for those)." >&2; \
		exit 1; fi
	@echo "==> creating $(VENV) with $(PYTHON)"
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	@# The venv module seeds setuptools 65.5.0 (CVE-2022-40897 and later ReDoS/path fixes): README "Dependency audit".
	@$(BIN)/python -m pip install -q --upgrade pip 'setuptools>=78.1.1'
	@$(BIN)/python -m pip install -q -e '.[embedded,dev,fast]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/smarttrip demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -m "not integration"

# promtool/prometheus (alert-rule and live-Prometheus tests) and docker-compose (the compose linter) come
# from Debian; installed when missing, tolerating failure: those tests then skip and say why. Debian's
# prometheus package enables a service on :9090 where systemd runs; the tests use their own server anyway.
monitoring-tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v docker-compose >/dev/null || \
		{ echo "==> installing prometheus and docker-compose (Debian packages) for the monitoring tests"; \
		  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		   prometheus docker-compose) >/dev/null 2>&1 || \
		  echo "note: could not install prometheus/docker-compose; their tests will be skipped" >&2; }

test: $(STAMP) monitoring-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest --durations=15
	@$(MAKE) --no-print-directory audit

# The fault-injection suite alone (it also runs in `make test`): SIGKILLed workers, Redis and broker
# outages, backlogs. FAULTS_SCALE=full runs the issue's sizes (100,000-event kill run, 1,000,000-event
# backlog; tens of minutes) instead of the CI sizes.
FAULTS_SCALE ?= ci
test-faults: $(STAMP)
	SMARTTRIP_FAULTS_SCALE=$(FAULTS_SCALE) $(BIN)/pytest -m faults

# Known vulnerabilities in the installed dependencies (PyPI's advisory database: needs the network;
# without it the step prints SKIPPED and does not fail). Triage: README "Dependency audit".
audit: $(STAMP)
	$(BIN)/python scripts/audit_deps.py

# Coverage-guided fuzzing of the decoders (atheris), bounded: FUZZ_SECONDS (default 60). The seed
# corpus is copied, so what the run discovers stays out of the repository.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	@corpus=$$(mktemp -d) && cp fuzz/corpus/* $$corpus/ && \
	PYTHONPATH=. $(BIN)/python fuzz/fuzz_decoders.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 $$corpus; \
	rc=$$?; rm -rf $$corpus; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
