# The two commands: `make demo` and `make test`. Everything installs from this repo's files.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export PERSONALIZATION_HOME ?= $(CURDIR)/.personalization
DEMO_CUSTOMERS ?= 2000
DEMO_DAYS      ?= 14
DEMO_START     ?= 2026-10-01

.PHONY: demo test install lint browser structure bench clean airflow spark spark-deps

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Headless Chromium for the portal's browser tests (Debian packages; we are root in CI).
# `make test` requires them (REQUIRE_BROWSER=1): without Chromium the browser tests fail, not
# skip. `make test REQUIRE_BROWSER=0` on a machine without root skips them instead.
REQUIRE_BROWSER ?= 1
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	    || echo "warning: could not install chromium; browser tests will fail (REQUIRE_BROWSER=$(REQUIRE_BROWSER))"; }

# The Spark engine's extra and Java 17 (Debian package; apt-get only when no java is on
# PATH), for tests/test_spark.py; the default install (`make install`, `make demo`) stays light.
# `make test` installs them and runs the DuckDB-vs-Spark equality night (REQUIRE_SPARK=1: a
# missing piece fails, not skips); `make spark` runs that module alone. `make test
# REQUIRE_SPARK=0` on a machine without root or network for them skips it instead.
REQUIRE_SPARK ?= 1
SPARK_STAMP := $(VENV)/.spark-installed
$(SPARK_STAMP): $(STAMP)
	@command -v java >/dev/null 2>&1 || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless) \
	    || echo "warning: could not install Java 17; the Spark test will fail (REQUIRE_SPARK=$(REQUIRE_SPARK))"; }
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,spark]' \
	  && touch $(SPARK_STAMP) \
	  || echo "warning: could not install the spark extra; the Spark test will fail (REQUIRE_SPARK=$(REQUIRE_SPARK))"

spark-deps: $(if $(filter 0,$(REQUIRE_SPARK)),,$(SPARK_STAMP))

# The DuckDB-vs-Spark equality night and Spark-side erasure on demo data alone.
spark: spark-deps
	PERSONALIZATION_REQUIRE_SPARK=1 $(BIN)/python -m pytest -q tests/test_spark.py

demo: install
	$(BIN)/personalization demo --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) --start $(DEMO_START)

# sqlfluff twice: on the model sources (layout; the Jinja templater skips what it cannot
# render), and on the SQL dbt compiles (every model, every rule but layout; known findings in
# dbt_project/sql_lint_allowlist.yml).
lint: install
	$(BIN)/ruff check personalization tests dags expectations benchmarks
	$(BIN)/sqlfluff lint dbt_project/models --disable-progress-bar
	$(BIN)/python -m personalization.warehouse.sql_lint

# The dbt structure rules (layers, descriptions, contracts) over dbt's manifest.json.
structure: install
	$(BIN)/python -m personalization.warehouse.structure

test: install browser spark-deps lint structure
	PERSONALIZATION_REQUIRE_BROWSER=$(REQUIRE_BROWSER) PERSONALIZATION_REQUIRE_SPARK=$(REQUIRE_SPARK) \
	  $(BIN)/python -m pytest -q --timeout=900 -n 3 --dist loadfile --durations=30

# Airflow standalone (scheduler, API server + UI, DAG processor, triggerer) on this worktree's
# DAGs; see docs/operations.md. Its children start a plain `airflow`, so the venv goes on PATH;
# the API's base URL carries the same port, or tasks cannot reach the execution API.
AIRFLOW_HOME ?= $(CURDIR)/.airflow
AIRFLOW_PORT ?= 8080
AIRFLOW_DAGS ?= $(CURDIR)/dags
AIRFLOW_ENV = PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW_HOME="$(AIRFLOW_HOME)" \
	AIRFLOW__CORE__DAGS_FOLDER="$(AIRFLOW_DAGS)" AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) AIRFLOW__API__BASE_URL=http://localhost:$(AIRFLOW_PORT)

airflow: install
	$(AIRFLOW_ENV) airflow db migrate
	$(AIRFLOW_ENV) airflow pools set personalization_warehouse 1 "one writer: every task that opens the warehouse"
	$(AIRFLOW_ENV) exec airflow standalone

bench: install
	$(BIN)/pip install -q -c constraints.txt -e ".[bench]"
	$(BIN)/python benchmarks/run.py --scale 10000

clean:
	rm -rf $(VENV) .personalization .airflow
