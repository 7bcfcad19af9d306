# The two set-up commands: `make run` and `make test`. Both install what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test system-deps deps up down bench clean

run: deps
	$(BIN)/hmb up
	$(BIN)/hmb seed
	$(BIN)/hmb serve --host 127.0.0.1 --port 8000

test: deps
	$(BIN)/pytest -q

deps: system-deps $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) and redis-server, from Debian's packages.
system-deps:
	@./scripts/system-deps.sh

up: deps
	$(BIN)/hmb up

down:
	$(BIN)/hmb down

bench: deps
	@./scripts/system-deps.sh bench
	$(BIN)/python -m bench

clean:
	-$(BIN)/hmb down
	rm -rf var
