# Set-up, build, serve and test. `make serve` and `make test` are the README's two commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INDEX ?= models/index
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
# The shared registry extract when it is there, else the small sample in the repo.
RECOMMENDER_DATA ?= ../shared/data
export RECOMMENDER_DATA
# The legacy XML records, where there are any, after the JSON: one record per id
# survives, the later source's, and the XML carries what the JSON extract lacks
# (collaborators, officials, sites); the reference trials last.
ifneq ($(wildcard $(RECOMMENDER_DATA)/ctg-studies.json.zip),)
SOURCES ?= $(RECOMMENDER_DATA)/ctg-studies.json.zip $(wildcard $(RECOMMENDER_DATA)/AllPublicXML*.zip) $(RECOMMENDER_DATA)/seed-cluster
else
SOURCES ?= data/sample/ctg-studies-sample.json.zip data/sample/seed-cluster
ifneq ($(origin RECOMMENDER_DATA),file)
$(warning $(RECOMMENDER_DATA)/ctg-studies.json.zip not found; using the sample in data/sample/)
endif
endif
# What is installed into the venv, one stamp per level: building and serving need
# only the runtime dependencies; tests, benchmarks, notebooks and the evaluation's
# baselines add the `dev` extra (every other extra: evaluation, pandas, dask).
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev index serve test test-fast lint sample clean

$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

# Always run: `build --if-changed` compares the sources (paths, sizes, SHA-256) and
# parameters with the index's meta.json and rebuilds only when they differ, so a new
# RECOMMENDER_DATA or changed data is never served from an old index.
index: $(RUNTIME_STAMP)
	$(BIN)/recommender build --if-changed $(addprefix --source ,$(SOURCES)) --out $(INDEX)

serve: index
	$(BIN)/recommender serve --index $(INDEX) --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: $(DEV_STAMP)
	$(BIN)/pytest

test-fast: $(DEV_STAMP)
	$(BIN)/pytest -m "not corpus"

lint: $(DEV_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

sample: $(RUNTIME_STAMP)
	$(BIN)/python scripts/make_sample.py --data $(RECOMMENDER_DATA) --out data/sample

clean:
	rm -rf $(VENV) $(INDEX) $(dir $(INDEX)).$(notdir $(INDEX)).versions .pytest_cache
