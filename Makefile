# Developer entry points. GNU make; recipes are indented with tabs.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint clean

$(VENV)/bin/activate:
	python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# Editable install with the test extras; redone only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(VENV)/bin/activate
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/cx serve --simulate

test: install
	$(PY) -m pytest

bench: install
	$(PY) bench/run_all.py

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .benchmarks build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
