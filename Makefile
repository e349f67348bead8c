# The two commands a timer needs: `make run` and `make test`. Everything else is set-up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install browser deploy-tools bench soak psql clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

# Collector (controllers on port 61611), status API and race display, on an embedded
# PostgreSQL kept in ./var. Ctrl-C stops everything cleanly.
run: $(STAMP)
	@echo "Race display:  http://127.0.0.1:5000/"
	@echo "Status API:    http://127.0.0.1:61612/status"
	@echo "Controllers:   point SimpleClient at this machine, port 61611"
	$(BIN)/twistd --nodaemon --pidfile= chronotrack-collector

# Every test: unit, integration (real PostgreSQL), end to end (real twistd), browser.
test: $(STAMP) browser deploy-tools
	$(BIN)/python -m pytest

browser:
	scripts/ensure-chromium

# systemd-analyze, apache2/httpd, nginx, haproxy, openssl for tests/test_deploy.py.
deploy-tools:
	scripts/ensure-deploy-tools

# The benchmark suite (bench/suite.py), results in bench/RESULTS.md. Full: about 25 min (plus about
# 7 min once, to generate the 10M-row data set in bench/.data/). QUICK=1: under 3 min.
bench: $(STAMP)
	$(BIN)/python -m bench.suite $(if $(QUICK),--quick) $(BENCH_ARGS)

soak: $(STAMP)
	$(BIN)/python -m pytest -m slow -p no:cacheprovider tests/test_soak.py

# psql on the embedded database that `make run` uses.
psql:
	@scripts/embedded-psql

clean:
	rm -rf $(VENV) *.egg-info build dist test-artifacts
