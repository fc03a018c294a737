# The project's own files install everything: `make demo` and `make test` create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install chromium demo test bench clean

PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]" $(addprefix -e ,$(PLUGINS))
	$(MAKE) chromium
	touch $(STAMP)

## The browser tests drive the distribution's Chromium (Playwright's own browser download does not work here)
## and need CJK fonts to draw Chinese pages (screenshots in docs/screenshots).
chromium:
	@test -x /usr/bin/chromium -a -d /usr/share/fonts/opentype/noto || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk; }

install: $(STAMP)

## Build a demo CRM in demo/crm.db (SQLite) with sample data and print a customer's 360° view.
demo: $(STAMP)
	bash scripts/demo.sh

## Run the whole suite (core and plugins). CRM_TEST_DATABASE_URL=postgresql+psycopg://… runs it on PostgreSQL.
test: $(STAMP) chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## Benchmarks (scripts, not tests); they write bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python bench/import_bench.py
	$(BIN)/python bench/value_bench.py
	$(BIN)/python bench/sales_bench.py
	$(BIN)/python bench/marketing_bench.py
	$(BIN)/python bench/api_bench.py --seconds 60

clean:
	rm -rf $(VENV) demo
