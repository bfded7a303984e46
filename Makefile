# One task runner for sda-lite. Every target builds the virtual environment first if needed.
#
#   make book   set up from nothing, then execute every chapter and build the HTML book
#   make test   set up from nothing, then lint (ruff), run the unit tests, every chapter under nbval, and the
#               browser check of the HTML book (built at SDA_SCALE=ci; skipped without Chromium)
#   make lab    set up from nothing, then open JupyterLab on the book
#
# TORCH is what pip installs for PyTorch before the package itself. The default pin installs
# a CPU wheel where one lies in pip's find-links (as on our CI machines) and the regular
# (CUDA-enabled on Linux) wheel from PyPI anywhere else. Override it to choose another build:
#   make test TORCH="torch==2.13.0 --index-url <your PyTorch wheel index>"
# SDA_SCALE (ci | cpu | full) sizes every chapter; see README.md.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Executable chapters are the Markdown files with a jupytext header (api.md and the like are not).
CHAPTERS := $(shell grep -l '^jupytext:' book/*.md)
NOTEBOOKS := $(CHAPTERS:.md=.ipynb)

.PHONY: install book test lint unit nbval browser lab notebooks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $@

# Paired .ipynb copies of the jupytext chapters, next to their sources (git-ignored), so that
# nbval and the book execute each chapter from the same working directory, book/.
notebooks: $(STAMP)
	$(BIN)/jupytext --quiet --to ipynb $(CHAPTERS)

book: $(STAMP)
	$(BIN)/jupyter-book build book --warningiserror --keep-going --quiet
	@echo "HTML book: book/_build/html/index.html"

# Lint and format checks (ruff, configured in pyproject.toml), before anything runs.
lint: $(STAMP)
	$(BIN)/ruff check sda_lite tests benchmarks
	$(BIN)/ruff format --check sda_lite tests benchmarks

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests --ignore=tests/test_browser.py

nbval: notebooks
	MPLBACKEND=Agg SDA_SCALE=$${SDA_SCALE:-ci} $(BIN)/python -m pytest --nbval-lax -p no:cacheprovider $(NOTEBOOKS)

# The HTML book (at SDA_SCALE=ci unless set) in headless Chromium (Debian's chromium and
# chromium-driver): every page renders, no image is missing, no internal link is broken, one panel
# runs live in JupyterLab. Skips without Chromium, unless SDA_REQUIRE_BROWSER=1 (as in CI).
browser: $(STAMP)
	SDA_SCALE=$${SDA_SCALE:-ci} $(BIN)/jupyter-book build book --warningiserror --keep-going --quiet
	MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider tests/test_browser.py

test: lint unit nbval browser

lab: $(STAMP)
	$(BIN)/jupyter lab book

clean:
	rm -rf book/_build book/*.ipynb
