# interplab: two commands. `make demo` runs every notebook offline and builds the gallery;
# `make test` runs pytest (every notebook included, through the gallery's runner). Both create .venv and install on first use, and are quick
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
	@echo "make test   - install into .venv, run pytest over tests/ (every notebook runs headless and its output is checked)"
	@echo "make bench  - run every benchmark in benchmarks/ and print one table of ratios against targets (FULL=1: longer runs)"

# --no-compile: pip would byte-compile every module of every package (torch, transformers, scipy, ...), about
# 100 s of a 170 s install on 2 cores; Python compiles only what is imported (about a quarter), once, on
# first import instead (~25 s, then cached). So the recipes here let Python write that cache into .venv even
# where PYTHONDONTWRITEBYTECODE is set: without it every kernel would compile torch again (~25 s each).
unexport PYTHONDONTWRITEBYTECODE
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -r requirements.txt
	$(BIN)/python -m pip install -q --no-compile --no-deps $$(sed -n 's/^# no-deps: *//p' requirements.txt)
	@touch $(STAMP)

install: $(STAMP)

# two notebooks at a time where there are two or more cores; JOBS=1 runs them one after another
demo: $(STAMP)
	$(BIN)/interplab gallery --out build/gallery $(if $(JOBS),--jobs $(JOBS))

# JupyterLab in the kit's environment, on this machine only (127.0.0.1); --allow-root where run as root.
lab: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	INTERPLAB_CACHE=$(CURDIR)/build/test-cache $(BIN)/python -m pytest tests -p no:cacheprovider

# `make bench` runs every benchmark at its quick defaults (under 15 min on 2 cores) and ends with one table
# of every ratio against its target; `make bench FULL=1` passes --full (longer, steadier figures).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	grep -v '^-e' requirements.txt > $(VENV)/bench-constraints.txt
	$(BIN)/python -m pip install -q --no-compile -c $(VENV)/bench-constraints.txt $$(sed -n 's/^# bench: *//p' requirements.txt)
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/collect.py $(if $(FULL),--full)

clean:
	rm -rf build $(VENV)
