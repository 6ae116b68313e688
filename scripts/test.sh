#!/usr/bin/env bash
# `make test`: the whole suite against real PostgreSQL and Redis (browser tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_ENV=test
export DATABASE_URL="${DATABASE_URL:-postgres://root@127.0.0.1:5432/crm}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
PY=.venv/bin/python

$PY - <<'PYEOF'
import os, sys
import psycopg2, redis
problems = []
try:
    psycopg2.connect(os.environ["DATABASE_URL"].replace("postgres://", "postgresql://"), dbname="postgres", connect_timeout=3).close()
except Exception as exc:
    problems.append(f"PostgreSQL ({os.environ['DATABASE_URL']}) is not reachable: {exc}".strip())
try:
    redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=3).ping()
except Exception as exc:
    problems.append(f"Redis ({os.environ['REDIS_URL']}) is not reachable: {exc}")
if problems:
    print("\n".join(problems))
    print("Start them, e.g.:\n  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
          "  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no\n"
          "or point DATABASE_URL / REDIS_URL at running servers.")
    sys.exit(2)
PYEOF

$PY manage.py makemigrations --check --dry-run >/dev/null || {
  echo "A model change has no migration: run manage.py makemigrations"; exit 1; }
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
