#!/usr/bin/env bash
# `make bench [ARGS="..."]`: the large-data benchmarks, on a separate PostgreSQL database
# (BENCH_DATABASE_URL, default postgres://root@127.0.0.1:5432/crm_bench; it is dropped and recreated).
#
#   --users N  --customers N  --opportunities N  --stage-changes-per-opp X  --activities N  --contracts N
#              the data set (defaults: the issue-8 size, 50 / 200,000 / 1,000,000 / 4 / 3,000,000 / 100,000)
#   --repeat N timed requests per page and role (default 20)
#   --pages-only  keep the database, only time the pages again
#
# Seeds with `manage.py bench_seed` (set-based SQL, prints the time per table), then prints the
# median and p95 of each page per role with its query count (`manage.py bench_pages`).
# Record the figures in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# --- import benchmark (issue 11, switching): `scripts/bench.sh --import [--deals N] [--activities N]` ---
# Its own scratch database (IMPORT_BENCH_DATABASE_URL, default .../crm_import_bench, dropped and
# recreated), the demo data, then `manage.py bench_import`: generated old-system CSV files (100,000
# deals and 1,000,000 activities by default, with their customers) imported and timed.
if [ "${1:-}" = "--import" ]; then
  shift
  export DJANGO_ENV=test
  export DATABASE_URL="${IMPORT_BENCH_DATABASE_URL:-postgres://root@127.0.0.1:5432/crm_import_bench}"
  export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/12}"
  IMPORT_DB="${DATABASE_URL##*/}"
  psql "${DATABASE_URL%/*}/postgres" -qc "DROP DATABASE IF EXISTS \"$IMPORT_DB\" WITH (FORCE)" -c "CREATE DATABASE \"$IMPORT_DB\""
  .venv/bin/python manage.py migrate --noinput -v 0
  .venv/bin/python manage.py seed_demo >/dev/null 2>&1
  exec .venv/bin/python manage.py bench_import "$@"
fi
# --- end of the import benchmark ---
SEED_ARGS=()
REPEAT=20
PAGES_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --users|--customers|--opportunities|--stage-changes-per-opp|--activities|--contracts)
      SEED_ARGS+=("$1" "$2"); shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --pages-only) PAGES_ONLY=1; shift ;;
    *) echo "unknown option $1 (see the top of scripts/bench.sh)"; exit 2 ;;
  esac
done
export DJANGO_ENV=test
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://root@127.0.0.1:5432/crm_bench}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/12}"
PY=.venv/bin/python
DB_NAME="${DATABASE_URL##*/}"
ADMIN_URL="${DATABASE_URL%/*}/postgres"
if [ "$PAGES_ONLY" = 0 ]; then
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" -c "CREATE DATABASE \"$DB_NAME\""
  $PY manage.py migrate --noinput -v 0
  $PY manage.py seed_demo >/dev/null 2>&1
  echo "== seeding $DB_NAME"
  $PY manage.py bench_seed "${SEED_ARGS[@]}"
else
  $PY manage.py migrate --noinput -v 0
fi
echo "== pages ($REPEAT requests each, after a warm-up)"
$PY manage.py bench_pages --repeat "$REPEAT"
