# Two commands matter: `make run` (set up and serve on http://127.0.0.1:5000) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The PostgreSQL run of the suite; override with IDP_TEST_POSTGRES_URL=... make test
IDP_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=

.PHONY: run demo test test-sqlite test-postgres setup chromium demo-data messages bench clean

setup: $(STAMP)

# The compiled catalogues (*.mo) are not committed: they are built here, and again when a .po changes.
$(STAMP): setup.cfg pyproject.toml $(wildcard idp/translations/*/LC_MESSAGES/messages.po)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pybabel compile -d idp/translations
	touch $(STAMP)

run: setup
	$(BIN)/idp db upgrade
	$(BIN)/idp keys ensure
	$(BIN)/idp demo
	$(BIN)/idp serve --host 127.0.0.1 --port 5000

# The provider (:5000) and the demo relying parties of clients/ (cabinet :5001, portal :5002), each
# registered once and reused by later runs; prints where to click. Ctrl-C stops all three.
DEMO_DIR := instance/demo
demo: setup
	$(BIN)/idp db upgrade
	$(BIN)/idp keys ensure
	$(BIN)/idp demo --registrations $(DEMO_DIR)
	$(BIN)/python -m clients.demo $(DEMO_DIR)

# Browser tests drive Debian's Chromium; Playwright's own browser download is not used.
chromium:
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: setup chromium test-sqlite test-postgres

test-sqlite: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-postgres: setup
	IDP_TEST_DATABASE_URL=$(IDP_TEST_POSTGRES_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) instance artifacts .pytest_cache

# Russian is the source language: extract it, then update and compile the other catalogues
# (add a language with `$(BIN)/pybabel init -i idp/translations/messages.pot -d idp/translations -l xx`).
messages: setup
	$(BIN)/pybabel extract -F babel.cfg -k _l -o idp/translations/messages.pot .
	$(BIN)/pybabel update -i idp/translations/messages.pot -d idp/translations
	$(BIN)/pybabel compile -d idp/translations
