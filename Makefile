# interplab: two commands. `make demo` runs every notebook offline and builds the gallery;
# `make test` runs pytest and nbval. Both create .venv and install on first use, and are quick
# the second time (the install re-runs only when requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: install demo lab test bench clean
.DEFAULT_GOAL := help

help:
	@echo "make demo   - install into .venv, run every notebook offline, write build/gallery/index.html"
	@echo "make lab    - install into .venv and open the notebooks in JupyterLab (the kit's environment)"
	@echo "make test   - install into .venv, run pytest over tests/ and nbval over every notebook"
	@echo "make bench  - run the benchmarks in benchmarks/"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps $$(sed -n 's/^# no-deps: *//p' requirements.txt)
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/interplab gallery --out build/gallery

# JupyterLab in the kit's environment, on this machine only (127.0.0.1); --allow-root where run as root.
lab: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	INTERPLAB_CACHE=$(CURDIR)/build/test-cache $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf build $(VENV)
