# The two commands (README): `make run` and `make test`. Both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

# Run history of `make run` stays in this checkout (open it with `make ui`).
export PREFECT_HOME ?= $(CURDIR)/var/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180

.PHONY: run test test-fast ui install clean prometheus-tools

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(BIN)/.installed

run: $(BIN)/.installed
	@mkdir -p $(PREFECT_HOME)
	$(BIN)/tradeops quickstart

# promtool, the Pushgateway and amtool for the tests (tests/test_prometheus_rules.py, tests/test_metrics.py,
# tests/test_alertmanager.py):
# from PATH, else unpacked from Debian's packages into .venv/bin (infra/prometheus/fetch-tools.sh)
prometheus-tools: $(BIN)/.installed
	@sh infra/prometheus/fetch-tools.sh $(BIN)

test: $(BIN)/.installed prometheus-tools
	$(BIN)/python -m pytest

# The tests that need no PostgreSQL, S3, Prefect server and are not long (markers: tests/conftest.py)
FAST_MARKERS := not postgres and not s3 and not prefect and not server and not slow
test-fast: $(BIN)/.installed prometheus-tools
	$(BIN)/python -m pytest -m "$(FAST_MARKERS)"

ui: $(BIN)/.installed
	@mkdir -p $(PREFECT_HOME)
	$(BIN)/prefect server start

clean:
	rm -rf var
