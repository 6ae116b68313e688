#!/usr/bin/env bash
# `make load [ARGS="--users 50 --duration 3m"]`: the load test of issue 10. Starts gunicorn (and a Celery
# worker) on loopback with production settings against BENCH_DATABASE_URL (default
# postgres://root@127.0.0.1:5432/crm_bench, filled by `make bench`) and Redis, runs the locust scenario
# (scripts/load/locustfile.py) headless for a bounded time, stops the servers and prints per-endpoint
# figures, requests per second, the read and write 95th percentiles and the error count.
# Exit status 1 when any request failed. Results (CSV, summary, server logs) stay in var/load/.
#
# Options: --users N (50) --spawn-rate N (5) --duration T (3m) --workers N (4) --threads N (4)
#          --port N (8765) --wait-min S (5) --wait-max S (15; think time between two tasks) --no-celery
# Logins: every active rep and manager of the database (LOAD_REPS / LOAD_MANAGERS override, comma-
# separated), all with LOAD_PASSWORD (default: the demo password).
set -euo pipefail

# All in one function: bash then reads the whole file before running it (editing the script during a run is safe).
main() {
  cd "$(dirname "$0")/.."
  USERS=50 SPAWN_RATE=5 DURATION=3m WORKERS=4 THREADS=4 PORT=8765 CELERY=1
  WAIT_MIN="${LOAD_WAIT_MIN:-5}" WAIT_MAX="${LOAD_WAIT_MAX:-15}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --users) USERS="$2"; shift 2 ;;
      --spawn-rate) SPAWN_RATE="$2"; shift 2 ;;
      --duration) DURATION="$2"; shift 2 ;;
      --workers) WORKERS="$2"; shift 2 ;;
      --threads) THREADS="$2"; shift 2 ;;
      --port) PORT="$2"; shift 2 ;;
      --wait-min) WAIT_MIN="$2"; shift 2 ;;
      --wait-max) WAIT_MAX="$2"; shift 2 ;;
      --no-celery) CELERY=0; shift ;;
      *) echo "unknown option $1 (see the head of scripts/load.sh)"; exit 2 ;;
    esac
  done

  # Production settings (DEBUG off, secure defaults); only what plain HTTP on loopback needs is relaxed:
  # no redirect to HTTPS and cookies without the Secure flag (a browser, or locust, would not send them
  # back over http). Nothing in crm/settings.py changes.
  export DJANGO_ENV=production
  export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://root@127.0.0.1:5432/crm_bench}"
  export REDIS_URL="${LOAD_REDIS_URL:-redis://127.0.0.1:6379/8}"
  export CACHE_KEY_PREFIX=crm-load CELERY_TASK_DEFAULT_QUEUE=crm-load
  export SECRET_KEY="load-test-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export ALLOWED_HOSTS=127.0.0.1,localhost
  export SECURE_SSL_REDIRECT=False SESSION_COOKIE_SECURE=False CSRF_COOKIE_SECURE=False
  export OUT=var/load
  export STATIC_ROOT="$OUT/static" EMAIL_URL=consolemail://
  export LOAD_PASSWORD="${LOAD_PASSWORD:-crm-demo-2026}" LOAD_WAIT_MIN="$WAIT_MIN" LOAD_WAIT_MAX="$WAIT_MAX"
  export LOAD_SUMMARY="$OUT/summary.json"
  PY=.venv/bin/python
  mkdir -p "$OUT"
  rm -f "$OUT"/locust_*.csv "$LOAD_SUMMARY" "$OUT/gunicorn.log" "$OUT/celery.log"

  logins() {
    psql "$DATABASE_URL" -Atc "SELECT string_agg(username, ',' ORDER BY username) FROM accounts_user
                               WHERE is_active AND role = '$1'"
  }
  export LOAD_REPS="${LOAD_REPS:-$(logins rep)}"
  export LOAD_MANAGERS="${LOAD_MANAGERS:-$(logins manager)}"
  if [ -z "$LOAD_REPS" ] || [ -z "$LOAD_MANAGERS" ]; then
    echo "no active reps or managers in $DATABASE_URL (run make bench first)"; exit 2
  fi
  echo "== $DATABASE_URL: $(tr ',' '\n' <<<"$LOAD_REPS" | wc -l) reps, $(tr ',' '\n' <<<"$LOAD_MANAGERS" | wc -l) managers"

  $PY manage.py migrate --check >/dev/null 2>&1 || {
    echo "$DATABASE_URL has unapplied migrations: DATABASE_URL=$DATABASE_URL $PY manage.py migrate"; exit 2; }
  # the hashed, compressed static files production serves (again only when a source file changed)
  if [ ! -f "$STATIC_ROOT/staticfiles.json" ] || \
     [ -n "$(find static ./*/static -newer "$STATIC_ROOT/staticfiles.json" -type f -print -quit 2>/dev/null)" ]; then
    $PY manage.py collectstatic --noinput -v 0
  fi

  pids=()
  cleanup() {
    trap - INT TERM EXIT
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    $PY scripts/load/passwords.py restore "$OUT/passwords.json" >/dev/null || true
  }
  trap cleanup INT TERM EXIT
  # `make bench` seeds under the test settings, whose MD5 password hasher production refuses: the load
  # logins get their (same) password hashed for production during the run, the old hashes back after.
  $PY scripts/load/passwords.py prepare "$OUT/passwords.json"
  if [ "$CELERY" = 1 ]; then
    .venv/bin/celery -A crm worker --concurrency=1 --loglevel=WARNING >"$OUT/celery.log" 2>&1 &
    pids+=($!)
  fi
  .venv/bin/gunicorn crm.wsgi:application --bind "127.0.0.1:$PORT" --workers "$WORKERS" --threads "$THREADS" \
    --worker-class gthread --timeout 60 --error-logfile "$OUT/gunicorn.log" >>"$OUT/gunicorn.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 60); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz/" 2>/dev/null && break
    sleep 1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz/" || { echo "gunicorn did not start (see $OUT/gunicorn.log)"; exit 1; }

  echo "== gunicorn: $WORKERS workers x $THREADS threads; locust: $USERS users (+$SPAWN_RATE/s), $DURATION," \
       "think time ${WAIT_MIN}-${WAIT_MAX} s"
  .venv/bin/locust -f scripts/load/locustfile.py --headless --only-summary -u "$USERS" -r "$SPAWN_RATE" \
    -t "$DURATION" --host "http://127.0.0.1:$PORT" --csv "$OUT/locust" --loglevel WARNING >"$OUT/locust.log" 2>&1 || true
  cleanup
  echo
  $PY scripts/load/report.py "$LOAD_SUMMARY"
}

main "$@"
