#!/usr/bin/env bash
# Run the whole test suite: lint, service tests on SQLite and PostgreSQL, a real
# Celery worker on Redis, and browser tests against the production build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
source scripts/env.sh

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "==> Menjalankan PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "==> Menjalankan Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
fi

echo "==> ruff"
ruff check fibernode workers tests alembic bench rxconfig.py
echo "==> lint-imports (lapisan: services tidak mengimpor UI, API atau workers)"
lint-imports
if [[ $# -gt 0 ]]; then
  echo "==> pytest $*"
  exec python -m pytest -q -p no:cacheprovider "$@"
fi
# The browser tier runs in a process of its own: its harness compiles and serves the
# Reflex app, which must import the pages itself, while the in-process state tests
# import them at collection.
# The rest runs in parallel processes (pytest-xdist, one per core; FIBERNODE_TEST_WORKERS
# overrides): the tests wait on PostgreSQL, subprocesses and sockets more than they compute.
status=0
echo "==> pytest (semua tes kecuali browser)"
python -m pytest -q -p no:cacheprovider -n "${FIBERNODE_TEST_WORKERS:-auto}" \
  --ignore=tests/browser || status=$?
echo "==> pytest (browser)"
python -m pytest -q -p no:cacheprovider tests/browser || status=$?
exit $status
