# One task runner for sda-lite. Every target builds the virtual environment first if needed.
#
#   make book   set up from nothing, then execute every chapter (at SDA_SCALE, default cpu) and
#               build the HTML book -> book/_build/<scale>/_build/html/index.html
#   make test   set up from nothing, then lint (ruff), run the unit tests, execute every chapter
#               under nbval (at SDA_SCALE=ci) and check the HTML book built from those very
#               outputs in a browser (skipped without Chromium)
#   make lab    set up from nothing, then open JupyterLab on the book
#
# TORCH is what pip installs for PyTorch before the package itself. The default pin installs
# a CPU wheel where one lies in pip's find-links (as on our CI machines) and the regular
# (CUDA-enabled on Linux) wheel from PyPI anywhere else. Override it to choose another build:
#   make test TORCH="torch==2.13.0 --index-url <your PyTorch wheel index>"
# SDA_SCALE (ci | cpu | full) sizes every chapter; see README.md.
#
# Each chapter executes once: nbval runs it, and book/conftest.py stores what it ran (outputs,
# widget states, time) in the build folder of its scale, book/_build/<scale>/, whose jupyter
# cache the HTML build then reads instead of executing again. A book of one scale never serves
# the outputs of another.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The book's folder, and its executable chapters: the Markdown files with a jupytext header
# (api.md and the like are not).
BOOK     ?= book
CHAPTERS ?= $(shell grep -l '^jupytext:' $(BOOK)/*.md)
NOTEBOOKS = $(CHAPTERS:.md=.ipynb)

# The scale of `make book` (sda_lite.config's default, cpu) and of `make test` (ci), unless
# SDA_SCALE is set.
BOOK_SCALE := $(or $(SDA_SCALE),cpu)
TEST_SCALE := $(or $(SDA_SCALE),ci)

# Chapters execute WORKERS at a time (pytest-xdist), each kernel with its share of the cores
# (OMP_NUM_THREADS, unless set): the book's small networks gain little from a second thread,
# so a second chapter keeps the second core busy. They are queued longest first (book/conftest.py,
# from benchmarks/results/chapter_times.json). Chapters that need the same dataset or prior
# take turns on it.
WORKERS ?= 2
CORES   := $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)
THREADS := $(or $(OMP_NUM_THREADS),$(shell echo $$(( $(CORES) / $(WORKERS) > 1 ? $(CORES) / $(WORKERS) : 1 ))))

# $(call execute,SCALE,OPTIONS): every chapter under nbval at SCALE, kept in $(BOOK)/_build/SCALE.
# The kernel draws its figures inline (no MPLBACKEND), as the HTML book shows them.
execute = SDA_SCALE=$(1) OMP_NUM_THREADS=$(THREADS) $(BIN)/python -m pytest --nbval-lax \
	-p no:cacheprovider -n $(WORKERS) --dist loadfile --no-loadscope-reorder \
	--book-build $(BOOK)/_build/$(1) $(2) $(NOTEBOOKS)
# $(call html,SCALE): the HTML book of SCALE -> $(BOOK)/_build/SCALE/_build/html; a chapter
# that nbval did not execute at SCALE is executed here (and cached), with any error failing it.
html = SDA_SCALE=$(1) $(BIN)/jupyter-book build $(BOOK) --path-output $(BOOK)/_build/$(1) \
	--warningiserror --keep-going --quiet

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

# Chapters whose source has not changed since they ran at this scale are not executed again
# (no cell time limit: full-scale training cells run for hours).
book: notebooks
	$(call execute,$(BOOK_SCALE),--book-reuse --nbval-cell-timeout 1e6)
	$(call html,$(BOOK_SCALE))
	@echo "HTML book: $(BOOK)/_build/$(BOOK_SCALE)/_build/html/index.html"

# Lint and format checks (ruff, configured in pyproject.toml), before anything runs.
lint: $(STAMP)
	$(BIN)/ruff check sda_lite tests benchmarks book/conftest.py
	$(BIN)/ruff format --check sda_lite tests benchmarks book/conftest.py

unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests --ignore=tests/test_browser.py

# Every chapter, executed again whatever the cache holds.
nbval: notebooks
	$(call execute,$(TEST_SCALE))

# The HTML book (at SDA_SCALE=ci unless set), built from the outputs of `make nbval`, in headless
# Chromium (Debian's chromium and chromium-driver): every page renders, no image is missing, no
# internal link is broken, one panel runs live in JupyterLab. Skips without Chromium, unless
# SDA_REQUIRE_BROWSER=1 (as in CI).
browser: $(STAMP)
	$(call html,$(TEST_SCALE))
	MPLBACKEND=Agg SDA_BOOK_HTML=$(BOOK)/_build/$(TEST_SCALE)/_build/html \
		$(BIN)/python -m pytest -p no:cacheprovider tests/test_browser.py

test: lint unit nbval browser

lab: $(STAMP)
	$(BIN)/jupyter lab $(BOOK)

clean:
	rm -rf $(BOOK)/_build $(BOOK)/*.ipynb
