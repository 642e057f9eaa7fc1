# jiuzhu: every gate has a target; `make test` runs them all, `.ci/run` calls it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

# the candidate joint review's registries (DOMAIN-2.md §11), for `make run` and `make decide`
CANDIDATE_REGISTRIES := --registry review_records=fixtures/registries/review_records.csv \
	--registry review_returns=fixtures/registries/review_returns.csv

.PHONY: install run test lint typecheck pytest coverage bench decide clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev,cluster]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## run: the HTTP service on 127.0.0.1:8000 with the bundled rules, the sample registries and
## an embedded SQLite store in var/; the first admin token is printed when the store is new
run: install
	$(BIN)/jiuzhu rules lint
	$(BIN)/jiuzhu serve --host 127.0.0.1 --port 8000 --db sqlite:///var/jiuzhu.db --data-dir var \
		--relatives fixtures/registries/relatives.csv --filings fixtures/registries/filings.csv \
		$(CANDIDATE_REGISTRIES)

## decide: decide the sample households and candidates and print their explanations (no service needed)

decide: install
	$(BIN)/jiuzhu rules lint
	$(BIN)/jiuzhu check fixtures/households.jsonl --relatives fixtures/registries/relatives.csv \
		--filings fixtures/registries/filings.csv --explain
	$(BIN)/jiuzhu check fixtures/candidates.jsonl $(CANDIDATE_REGISTRIES) --explain

## test: every gate — lint, types, tests (rule tests, property tests, benchmark smoke runs)
test: lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -c "import sys; from engine.messages import main; sys.exit(main())"

typecheck: install
	$(BIN)/mypy

pytest: install
	JIUZHU_BENCH_SIZES=1000 JIUZHU_BENCH_EVENTS=50 JIUZHU_BENCH_HTTP_REQUESTS=100 JIUZHU_BENCH_HTTP_BATCH=50 JIUZHU_BENCH_HTTP_CLIENT=python \
		$(BIN)/pytest --benchmark-disable -n 2 --dist loadfile

## coverage: the tests with branch coverage (also of the servers the end-to-end tests start),
## failing under 85 %; slower than `make test`, so kept apart from it
coverage: install
	JIUZHU_BENCH_SIZES=1000 JIUZHU_BENCH_EVENTS=50 JIUZHU_BENCH_HTTP_REQUESTS=100 JIUZHU_BENCH_HTTP_BATCH=50 JIUZHU_BENCH_HTTP_CLIENT=python \
		$(BIN)/pytest --benchmark-disable --cov --cov-report=term

## bench: the full benchmarks, side by side, with ratios
bench: install
	$(BIN)/pytest benchmarks --benchmark-only --benchmark-sort=mean --benchmark-columns=min,median,mean,rounds \
		--benchmark-json=.benchmarks/latest.json -p no:cacheprovider

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .benchmarks
