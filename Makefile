# MCH platform. The two commands: `make setup`, then `make run`. `make test` runs the whole suite.
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip

.PHONY: setup run stop status test lint proto bench fuzz clean-run demo demo-stream dashboards backup-check

setup: .venv/.installed  ## install everything: venv, pinned deps, databases, roles, migrations
	$(PY) scripts/devstack.py prepare dev

.venv/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@command -v pg_isready >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null)
	@command -v prometheus >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null) \
		|| echo "note: Debian's prometheus package could not be installed; its dashboard test will be skipped"
	@(command -v chromium >/dev/null && command -v chromedriver >/dev/null && test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc \
		&& test -d /usr/share/fonts/opentype/noto) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium chromium-driver fonts-noto-cjk fonts-wqy-microhei >/dev/null) \
		|| echo "note: Debian's chromium/fonts could not be installed; the console's browser test will be skipped"
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt -r requirements-dev.txt
	$(PIP) install -q --no-deps -e .
	touch $@

run: .venv/.installed  ## start Postgres if needed, the broker, the four services, relays and consumers
	$(PY) scripts/devstack.py up dev

stop:  ## stop everything `make run` started
	$(PY) scripts/devstack.py down dev

status:
	$(PY) scripts/devstack.py status dev

test: .venv/.installed  ## the whole suite, against real Postgres and a real (Tansu) broker
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: .venv/.installed
	.venv/bin/ruff check services tests scripts demo deploy
	.venv/bin/mypy services scripts demo deploy

demo: .venv/.installed  ## (re)post the demo county's year to the running dev stack (idempotent)
	$(PY) -m demo load $(DEMO_ARGS)

demo-stream: .venv/.installed  ## a live trickle of deliveries in the foreground (make run already runs one)
	$(PY) -m demo stream $(DEMO_ARGS)

dashboards: .venv/.installed  ## rewrite deploy/grafana/dashboards/*.json from the indicator catalogue
	$(PY) deploy/grafana/build.py

proto: .venv/.installed  ## regenerate proto/python from proto/*.proto
	scripts/gen_proto.sh

fuzz: .venv/.installed  ## schemathesis on the four APIs + mutated valid records, on a test stack (<= 10 min); bench/results/fuzz.md
	MCH_FUZZ_EXAMPLES=$${MCH_FUZZ_EXAMPLES:-400} MCH_FUZZ_BUDGET_S=$${MCH_FUZZ_BUDGET_S:-420} MCH_MUTATIONS=300 \
		MCH_FUZZ_REPORT=bench/results/fuzz.md timeout 600 $(PY) -m pytest -q tests/test_fuzz.py \
		tests/test_bad_input.py::test_mutated_valid_records_never_get_a_5xx

bench: .venv/.installed
	$(PY) -m bench $(BENCH_ARGS)

backup-check: .venv/.installed  ## base backup + WAL of the local cluster restored into a scratch cluster; reconcile there (BACKUP_STACK=dev|test)
	$(PY) scripts/backup_restore.py $(or $(BACKUP_STACK),dev)
