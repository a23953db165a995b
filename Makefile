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
ifneq ($(wildcard $(RECOMMENDER_DATA)/ctg-studies.json.zip),)
SOURCES ?= $(RECOMMENDER_DATA)/ctg-studies.json.zip $(RECOMMENDER_DATA)/seed-cluster
else
SOURCES ?= data/sample/ctg-studies-sample.json.zip data/sample/seed-cluster
endif

.PHONY: install index serve test test-fast lint sample clean

$(BIN)/recommender: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/recommender

$(INDEX)/meta.json: $(BIN)/recommender $(wildcard $(firstword $(SOURCES)))
	$(BIN)/recommender build $(addprefix --source ,$(SOURCES)) --out $(INDEX)

index: $(INDEX)/meta.json

serve: index
	$(BIN)/recommender serve --index $(INDEX) --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not corpus"

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

sample: install
	$(BIN)/python scripts/make_sample.py --data $(RECOMMENDER_DATA) --out data/sample

clean:
	rm -rf $(VENV) models/index .pytest_cache
