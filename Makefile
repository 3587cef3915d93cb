# The two commands a new user types: `make demo` and `make test`. Both start with
# `make setup`, which is idempotent: a second run only checks the stamp and redis-server.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
S3A_JARS := $(VENV)/share/s3a-jars
export PANTRY_HOME ?= $(CURDIR)/.pantry
export DAGSTER_HOME ?= $(PANTRY_HOME)/dagster

.PHONY: setup demo test ui lint bench bench-features parity conformance clean

setup: $(STAMP) redis-server postgresql java $(S3A_JARS)/.done

# dbt-semantic-interfaces is installed without its dependencies (its click pin clashes with
# ours) and never imported: the test suite reads its JSON schema of MetricFlow's manifest, to
# check that every key of it is either read by Pantry or refused by name.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install --upgrade pip > $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m pip install -e '.[dev]' >> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m pip install --no-deps 'dbt-semantic-interfaces==0.10.5' >> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

.PHONY: redis-server
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's redis-server"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing: install it with 'sudo apt-get install redis-server' (Debian/Ubuntu) or 'brew install redis' (macOS)"; exit 1; \
	  fi; }

# The Dagster-on-Postgres tests start their own PostgreSQL cluster: they need its binaries.
.PHONY: postgresql
postgresql:
	@{ command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's postgresql"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "PostgreSQL is missing: install it with 'sudo apt-get install postgresql' (Debian/Ubuntu) or 'brew install postgresql' (macOS)"; exit 1; \
	  fi; }

# The Spark engine's tests start a real standalone cluster from pyspark's jars: they need Java 17+.
.PHONY: java
java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's default-jre-headless"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; \
	  else \
	    echo "Java is missing: install it with 'sudo apt-get install default-jre-headless' (Debian/Ubuntu) or 'brew install openjdk@17' (macOS)"; exit 1; \
	  fi; }

# The Spark tests keep an offline store on S3 (moto_server) through s3a://, which needs Hadoop's
# S3A connector and the AWS SDK it calls: pyspark ships neither, and Maven Central is out of
# reach here. PyPI's sagemaker_pyspark 1.4.5 carries both (hadoop-aws 3.3.1,
# aws-java-sdk-bundle 1.11.901): its archive is fetched by hash, the two jars kept and checked
# by hash too, the rest removed. Only the tests load them; EMR and Databricks bring their own.
S3A_SDIST := sagemaker_pyspark-1.4.5/deps/jars
$(S3A_JARS)/.done: tests/s3a-jars.txt | $(STAMP)
	@echo "fetching Hadoop's S3A connector for the Spark tests (sagemaker_pyspark 1.4.5 from PyPI, 181 MB)"
	@rm -rf $(S3A_JARS) $(S3A_JARS).tmp && mkdir -p $(S3A_JARS).tmp
	@$(BIN)/python -m pip download --quiet --no-deps --require-hashes -r tests/s3a-jars.txt -d $(S3A_JARS).tmp >> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@tar -xzf $(S3A_JARS).tmp/sagemaker_pyspark-1.4.5.tar.gz -C $(S3A_JARS).tmp --strip-components=3 \
	  $(S3A_SDIST)/hadoop-aws-3.3.1.jar $(S3A_SDIST)/aws-java-sdk-bundle-1.11.901.jar
	@cd $(S3A_JARS).tmp && rm sagemaker_pyspark-1.4.5.tar.gz && printf '%s\n' \
	  '6be50ad8a8b445d2802381b085b2a3ede5c29d353450a6a21f16b2fefa962b6e  hadoop-aws-3.3.1.jar' \
	  'b87175b32a16544cc1b37cf40390eb375833e62bed67f8ce6cde4b7ad6429ead  aws-java-sdk-bundle-1.11.901.jar' \
	  | sha256sum --quiet -c -
	@mv $(S3A_JARS).tmp $(S3A_JARS) && touch $(S3A_JARS)/.done

demo: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/pantry demo

# The whole suite, on both cores (the files of GROUPS in tests/conftest.py stay on one worker:
# their servers are shared), with every test's files in RAM when /dev/shm is there, and every
# temporary file too (TMPDIR, open to all as /tmp is: PostgreSQL's data folder is its user's): Dagster's
# SQLite event log and DuckDB sync each write, which on a busy disk was most of their time.
test: setup
	@start=$$(date +%s); \
	base=$$(mktemp -d /dev/shm/pantry-tests.XXXXXX 2>/dev/null || mktemp -d); mkdir -p $$base/tmp; chmod 755 $$base; chmod 1777 $$base/tmp; \
	TMPDIR=$$base/tmp $(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=25 --basetemp=$$base/t; status=$$?; \
	times > $$base/times; cpu=$$(tail -1 $$base/times | awk '{gsub(/[ms]/," "); print int($$1*60+$$2+$$3*60+$$4)}'); rm -rf $$base; \
	echo "make test: $$(( $$(date +%s) - start )) s, $$cpu CPU s (the processes it waited for; this host's speed varies)"; exit $$status

# The demo's sources are generated, not committed: build them first, or the code location
# cannot load on a fresh clone (files that exist are kept).
ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -c "from pantry.demo.data import build_demo_data; build_demo_data('metrics_defs')"
	$(BIN)/dagster dev -w workspace.yaml -p 3000

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/python bench/metrics_query.py

# Feast 0.67 in its own venv (its pins clash with ours): the peer of the feature benchmarks.
bench/.feast-venv/bin/python:
	python3 -m venv bench/.feast-venv
	bench/.feast-venv/bin/pip install --quiet 'feast[redis,duckdb]==0.67.*' 'pandas<3'

bench-features: setup bench/.feast-venv/bin/python
	$(BIN)/python bench/pit.py
	$(BIN)/python bench/online.py

clean:
	-test -x $(BIN)/pantry && $(BIN)/pantry online stop
	rm -rf $(PANTRY_HOME) metrics_defs/data

# MetricFlow in its own venv (its dbt pins clash with ours); compares every query live.
bench/.mf-venv/bin/mf:
	python3 -m venv bench/.mf-venv
	bench/.mf-venv/bin/pip install --quiet 'dbt-metricflow[dbt-duckdb,dbt-postgres]' 'dbt-core<1.11'

# dbt-postgres for the PostgreSQL run, added to a venv made before it was part of the list
bench/.mf-venv/bin/dbt-postgres-installed: bench/.mf-venv/bin/mf
	bench/.mf-venv/bin/pip show dbt-postgres >/dev/null 2>&1 || bench/.mf-venv/bin/pip install --quiet 'dbt-postgres' 'dbt-core<1.11'
	@touch $@

# The shop's queries on DuckDB, then on a PostgreSQL of their own (MetricFlow through
# dbt-postgres, Pantry with PostgreSQL as its engine), then MetricFlow's own manifests.
parity: setup bench/.mf-venv/bin/mf bench/.mf-venv/bin/dbt-postgres-installed
	$(BIN)/python bench/metricflow_parity.py
	$(BIN)/python bench/metricflow_parity.py --engine postgres
	$(BIN)/python bench/metricflow_manifest.py

# MetricFlow's own integration suite through Pantry, from a local copy of its repository (a
# work tree or the git directory the search tool's fetch brings): nothing of it is copied here.
MF_REPO ?= /work/.mirror/dbt-labs+metricflow/repo
conformance: setup
	$(BIN)/python bench/conformance.py $(MF_REPO)
