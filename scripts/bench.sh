#!/usr/bin/env bash
# `make bench [ARGS="--customers N"]`: the large-data benchmarks, on a separate PostgreSQL database
# (BENCH_DATABASE_URL, default postgres://root@127.0.0.1:5432/crm_bench; it is dropped and recreated).
# Prints server-side timings and query counts; record them in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=200000
while [ $# -gt 0 ]; do
  case "$1" in
    --customers) CUSTOMERS="$2"; shift 2 ;;
    *) echo "unknown option $1 (use --customers N)"; exit 2 ;;
  esac
done
export DJANGO_ENV=test
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://root@127.0.0.1:5432/crm_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/12}"
PY=.venv/bin/python
DB_NAME="${DATABASE_URL##*/}"
ADMIN_URL="${DATABASE_URL%/*}/postgres"
psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" -c "CREATE DATABASE \"$DB_NAME\""
$PY manage.py migrate --noinput -v 0
$PY manage.py seed_demo
echo "== customer list with $CUSTOMERS customers"
$PY manage.py bench_customers --count "$CUSTOMERS"
