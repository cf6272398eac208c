# Two commands matter: `make run` (set up and serve on http://127.0.0.1:5000) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The PostgreSQL run of the suite; override with IDP_TEST_POSTGRES_URL=... make test
IDP_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=

.PHONY: run demo test test-sqlite test-postgres lint format setup tools a11y-tools chromium demo-data messages bench bench-load bench-scale bench-tools node-tools wrk clean

setup: $(STAMP)

# The compiled catalogues (*.mo) are not committed: they are built here, and again when a .po changes
# (a wheel gets its own from setup.py).
$(STAMP): setup.cfg setup.py pyproject.toml $(wildcard idp/translations/*/LC_MESSAGES/messages.po)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
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

# What the suite runs besides Python, from Debian, installed only when missing: Chromium for the browser
# tests (Playwright's own browser download is not used), nginx as the TLS proxy in front of
# `idp serve --production`, curl for the README's token request, espeak-ng for the spoken captcha
# («Прослушать код»), PostgreSQL's server binaries for the private server that the two-host test stops
# and starts (tests/multihost).
tools: a11y-tools
	@missing=""; \
	test -x $(CHROMIUM) || missing="$$missing chromium"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

chromium: tools

# The two passes run side by side: much of each is spent waiting (servers starting, a browser, a gateway's
# timeout), so on two cores the suite takes about the longer pass instead of the sum. They share nothing:
# each has its own databases, Redis databases (IDP_TEST_REDIS_OFFSET, tests/helpers.py) and ports. Each
# pass's output is printed whole when it ends. `make test SERIAL=1` runs them one after the other.
test: setup tools bench-tools node-tools
ifdef SERIAL
	$(MAKE) --no-print-directory test-sqlite test-postgres
else
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgres
endif

# axe-core for the accessibility checks of the browser suite, at the version pinned in
# tests/a11y/package-lock.json (tests/browser/test_accessibility.py).
A11Y_MODULES := tests/a11y/node_modules/.package-lock.json
a11y-tools: $(A11Y_MODULES)

$(A11Y_MODULES): tests/a11y/package.json tests/a11y/package-lock.json
	cd tests/a11y && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ruff (lint and format, settings in ruff.toml) over the tree, mypy (settings in setup.cfg) over the
# layers that hold the rules: idp/services and idp/models.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-sqlite: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Tests marked `once` do not depend on the database under test: the SQLite pass has run them.
test-postgres: setup
	IDP_TEST_DATABASE_URL=$(IDP_TEST_POSTGRES_URL) IDP_TEST_REDIS_OFFSET=8 \
	  $(BIN)/python -m pytest -m "not once" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m tests.bench

# The load benchmark against node-oidc-provider (bench/README.md): `make bench-load`, `make bench-load
# SCALE=10000`, `make bench-load BENCH_ARGS="--server granian"`. Writes bench/RESULTS*.md and bench/results/.
SCALE ?= 0
BENCH_ARGS ?=
NODE_MODULES := bench/node/node_modules/.package-lock.json

bench-load: setup bench-tools
	$(BIN)/python -m bench.load --scale $(SCALE) $(BENCH_ARGS)

# Issue 12's scale bar: 10,000 against 1,000,000 accounts and tokens in one run, alternating request by
# request, one in flight (bench/README.md). Writes bench/RESULTS-scale.md and bench/results/. About 10 min.
bench-scale: setup wrk
	$(BIN)/python -m bench.scale $(BENCH_ARGS)

# wrk from Debian and node-oidc-provider at the version pinned in bench/node/package-lock.json; the
# bench smoke test of the suite needs both.
bench-tools: wrk $(NODE_MODULES)

wrk:
	@command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)

$(NODE_MODULES): bench/node/package.json bench/node/package-lock.json
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# panva's openid-client at the version pinned in tests/node/package-lock.json, for
# tests/oauth/test_openid_client.py (PAR, DPoP, private_key_jwt through a certified relying party).
# Only the npm registry is used; nothing downloads a browser or a binary.
TEST_NODE_MODULES := tests/node/node_modules/.package-lock.json
node-tools: $(TEST_NODE_MODULES)

$(TEST_NODE_MODULES): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) instance artifacts .pytest_cache build dist *.egg-info

# Russian is the source language: extract it, then update every catalogue (each idp/translations/xx with an
# LC_MESSAGES/messages.po) and the reviewers' back-translation beside it, and compile them all.
# Add a language with `$(BIN)/pybabel init -i idp/translations/messages.pot -d idp/translations -l xx`;
# tests/unit/test_catalogues.py then checks it, and the back-translation it asks for, without any edit.
messages: setup
	$(BIN)/pybabel extract -F babel.cfg -k _l -o idp/translations/messages.pot .
	$(BIN)/pybabel update -i idp/translations/messages.pot -d idp/translations
	for po in idp/translations/*/back-translation.po; do \
		test ! -e "$$po" || $(BIN)/pybabel update -i idp/translations/messages.pot -o "$$po" -l ru || exit 1; \
	done
	$(BIN)/pybabel compile --statistics -d idp/translations
