# The two commands of the README:
#   make report   the main job: set up everything, then write the HTML report
#   make test     set up everything the tests need (torch==2.13.0 included), then run them all
# Both are idempotent: the virtual environment is rebuilt only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= report

.PHONY: report test bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls several GB of CUDA packages.
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,torch]'
	touch $(STAMP)

install: $(STAMP)

report: $(STAMP)
	$(BIN)/initlab report --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/init_speed.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/probe_speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
