# The two commands: `make run` (demo server + Celery) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test e2e e2e-deps lint messages bench load clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(TEST_STAMP): $(PY) pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e ".[test]"
	touch $@ $(STAMP)

run: $(STAMP)
	./scripts/run.sh

# The whole suite against PostgreSQL and Redis, browser tests included.
test: $(TEST_STAMP) e2e-deps
	./scripts/test.sh

# Only the browser tests (tests/e2e; screenshots in artifacts/screenshots/).
e2e: $(TEST_STAMP) e2e-deps
	./scripts/test.sh tests/e2e

# Debian's chromium for the Playwright browser tests (browsers are never downloaded), and a Chinese
# font so that the zh-hans screenshots (artifacts/screenshots/) show text, not boxes.
e2e-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v xgettext >/dev/null 2>&1 || { \
	  echo "Installing GNU gettext (the catalogue completeness test runs makemessages)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  echo "Installing a Chinese font for the browser screenshots..."; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; }; }

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

# Regenerate the translation catalogues (needs GNU gettext), then compile them.
messages: $(TEST_STAMP)
	./scripts/messages.sh

bench: $(TEST_STAMP)
	./scripts/bench.sh $(ARGS)

# The locust load test (50 users, 3 minutes) against gunicorn on the bench database; see scripts/load.sh.
load: $(TEST_STAMP)
	./scripts/load.sh $(ARGS)

clean:
	rm -rf $(VENV) var/
