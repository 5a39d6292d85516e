PYTHON ?= python3

.PHONY: demo test lint install install-dev bench

## make demo: install, then audit the bundled model on two dimensions
demo: install
	rho-audit run --plugins toxicity,refusal

## make test: install (with dev tools and the example plugin), lint, check import boundaries, run the whole test suite
test: install-dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -c "from importlinter.cli import lint_imports_command as c; c(['--no-cache'])"
	$(PYTHON) -m pytest

install:
	PYTHON=$(PYTHON) scripts/install.sh

install-dev:
	PYTHON=$(PYTHON) scripts/install.sh --dev

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check . && $(PYTHON) -c "from importlinter.cli import lint_imports_command as c; c(['--no-cache'])"

bench:
	$(PYTHON) bench/audit_throughput.py
