#!/usr/bin/env bash
# `make run`: migrate, load demo data, start the web server, a Celery worker with beat.
# SQLite under var/ unless DATABASE_URL is set; Redis if REDIS_URL is set and answers, otherwise
# kombu's filesystem transport under var/ (the embedded broker). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var/celery-broker/queue var/celery-broker/processed var/media
export DJANGO_ENV="${DJANGO_ENV:-development}"

if [ -n "${REDIS_URL:-}" ]; then
  if ! $PY - <<'PYEOF'
import os, sys, redis
try:
    redis.Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=2).ping()
except Exception as exc:
    print(f"Redis at {os.environ['REDIS_URL']} does not answer ({exc}); using the embedded broker.")
    sys.exit(1)
PYEOF
  then
    unset REDIS_URL
    export CELERY_BROKER_URL="filesystem://"
  fi
fi

$PY manage.py migrate --noinput
$PY manage.py setup_periodic_tasks
$PY manage.py seed_demo

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

.venv/bin/celery -A crm worker -B --loglevel=INFO --concurrency=2 \
  --schedule=var/celerybeat-schedule >var/celery.log 2>&1 &
pids+=($!)
$PY manage.py runserver 127.0.0.1:8000 --noreload >var/web.log 2>&1 &
pids+=($!)

cat <<TXT

  Sales CRM is running:   http://127.0.0.1:8000/
  Django admin:           http://127.0.0.1:8000/admin/
  Broker:                 ${REDIS_URL:-embedded (filesystem under var/)}
  Logs:                   var/web.log, var/celery.log

  Demo logins (password: crm-demo-2026)
    admin               administrator
    manager1, manager2  sales managers
    rep1 ... rep3       reps in manager1's team
    rep4 ... rep6       reps in manager2's team

  Ctrl-C stops the web server and the Celery worker.
TXT
wait -n "${pids[@]}"
