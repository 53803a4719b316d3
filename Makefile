# Quick start: `make demo` runs the whole pipeline on a fresh clone; `make test` runs the suite.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell md5sum setup.py | cut -c1-8)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup spark-warmup demo test test-fast bench kafka-up kafka-down connect-up connect-down dev clean postgres-server object-store-binary

$(STAMP): setup.py
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)
	mkdir -p $(DAGSTER_HOME)

# Spark starts after this one skip resolving packages and map Spark's classes from an archive
# (dev/spark_warmup.py; .cache/ivy/startup): once per clone, a no-op afterwards.
spark-warmup: setup
	$(PYTHON) -m medallion_assets.dev.spark_warmup

# The local instance's dagster.yaml (medallion_assets/dev/conf) into DAGSTER_HOME: SQLite, or with
# MEDALLION_DAGSTER_STORAGE=postgres a local PostgreSQL (started, or reused, on 127.0.0.1:5433, kept up
# afterwards; `python -m medallion_assets.dev.postgres down` stops it) whose variables the recipe exports.
INSTANCE = if [ "$$MEDALLION_DAGSTER_STORAGE" = postgres ]; then \
		pg=$$($(PYTHON) -m medallion_assets.dev.postgres up) || exit 1; eval "$$pg"; \
	fi; \
	$(PYTHON) -m medallion_assets.dev.dagster_home --home "$(DAGSTER_HOME)" || exit 1

demo: setup
	$(INSTANCE); \
	$(PYTHON) -m medallion_assets.demo

# The UI test drives Debian's chromium through Playwright, which downloads no browser of its own.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" != 0 ]; then echo "$@ is missing: install Debian's chromium (apt-get install -y chromium) as root" >&2; exit 1; fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

# The live test on Postgres runs Debian's PostgreSQL server (dev/postgres.py starts it, its home in .cache). Installed
# when missing, without the cluster Debian would otherwise create and start on port 5432.
postgres-server:
	@if ! command -v postgres >/dev/null && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		if [ "$$(id -u)" != 0 ]; then echo "PostgreSQL's server is missing: install Debian's postgresql (apt-get install -y postgresql) as root" >&2; exit 1; fi; \
		mkdir -p /etc/postgresql-common/createcluster.d; \
		echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/medallion.conf; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	fi

# The definitions load and validate first (seconds), then the suite, in TEST_WORKERS processes that
# each take whole modules (a module's services and fixtures stay in one process; see conftest.py).
TEST_WORKERS ?= 2
# The object-storage test's SeaweedFS, built once per machine from the Go module proxy before the suite
# starts, so its first build neither races the tests for the two cores nor counts against a test's timeout.
object-store-binary: setup
	$(PYTHON) -c 'from medallion_assets.dev.object_store import ensure_binary; print(ensure_binary())'

test: setup $(CHROMIUM) postgres-server spark-warmup object-store-binary
	$(VENV)/bin/dagster definitions validate -w workspace.yaml
	$(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder medallion_assets_tests

# Tests that need no JVM and no broker; JAVA_HOME points nowhere so any Java start fails loudly.
test-fast: setup
	JAVA_HOME=/nonexistent $(PYTHON) -m pytest -m fast medallion_assets_tests

bench: setup spark-warmup
	$(PYTHON) -m medallion_assets.bench

kafka-up: setup
	$(PYTHON) -m medallion_assets.dev.kafka_local up

kafka-down: setup
	$(PYTHON) -m medallion_assets.dev.kafka_local down

connect-up: setup
	$(PYTHON) -m medallion_assets.dev.spark_connect up

connect-down: setup
	$(PYTHON) -m medallion_assets.dev.spark_connect down

# Runs reach one warm Spark Connect server instead of each starting a JVM, unless SPARK_REMOTE or
# SPARK_MASTER already names the Spark to use. That server's Spark is local[*] on this machine, so raw
# ingests in the run's process (arrow), faster there than through the server, unless MEDALLION_RAW_ENGINE
# says otherwise. The broker and the server stay up afterwards (kafka-down, connect-down stop them).
dev: setup kafka-up
	$(INSTANCE); \
	if [ -z "$$SPARK_REMOTE$$SPARK_MASTER" ]; then \
		server=$$($(PYTHON) -m medallion_assets.dev.spark_connect up) || exit 1; eval "$$server"; export SPARK_REMOTE; \
		export MEDALLION_RAW_ENGINE=$${MEDALLION_RAW_ENGINE:-arrow}; \
	fi; \
	$(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

clean:
	rm -rf data/warehouse .dagster_home
