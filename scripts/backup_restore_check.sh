#!/usr/bin/env bash
# Back up a PostgreSQL database and prove the backup restores: pg_dump -Fc, pg_restore into a scratch
# database, then compare the row count of every table between the two. Exit 0 only if they match.
#
#   scripts/backup_restore_check.sh [--keep DIR] [DATABASE_URL]
#   scripts/backup_restore_check.sh --compare OTHER_URL [DATABASE_URL]
#
#   DATABASE_URL  the database to back up (default: $DATABASE_URL), e.g. postgres://crm:pw@db:5432/crm
#   --keep DIR    keep the dump as DIR/<db>-<UTC timestamp>.dump (the backup itself); without it the
#                 dump is written to a temporary directory and removed at the end.
#   --compare URL only compare the row counts of DATABASE_URL and URL (e.g. a restored copy).
#
# Needs pg_dump, pg_restore and psql (the postgresql-client package) of the server's major version,
# and a role that may CREATE DATABASE (the scratch database "<db>_restore_check_<pid>" is created
# from template0 and always dropped at the end). The dump and the source counts come from one
# snapshot (pg_dump --snapshot), so the check holds while the application keeps writing.
# Restore a backup for real with:  createdb -T template0 crm && pg_restore --no-owner -d crm FILE.dump
set -euo pipefail

KEEP_DIR=""
COMPARE_URL=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) KEEP_DIR="${2:?--keep needs a directory}"; shift 2 ;;
    --compare) COMPARE_URL="${2:?--compare needs a database URL}"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
SOURCE_URL="${1:-${DATABASE_URL:-}}"
if [[ -z "$SOURCE_URL" ]]; then
  echo "usage: $0 [--keep DIR] DATABASE_URL   (or set DATABASE_URL)" >&2
  exit 2
fi
for tool in pg_dump pg_restore psql; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install postgresql-client" >&2; exit 2; }
done

redact() { sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#' <<<"$1"; }

# postgres://user:pw@host:port/db?opts -> base (without /db), db name, options
url_no_query="${SOURCE_URL%%\?*}"
query=""
[[ "$SOURCE_URL" == *\?* ]] && query="?${SOURCE_URL#*\?}"
base="${url_no_query%/*}"
source_db="${url_no_query##*/}"
if [[ ! "$url_no_query" =~ ^postgres(ql)?://[^/]*/[^/]+$ ]]; then
  echo "DATABASE_URL must name a database: $(redact "$SOURCE_URL")" >&2
  exit 2
fi
scratch_db="${source_db}_restore_check_$$"
maintenance_url="${base}/postgres${query}"
scratch_url="${base}/${scratch_db}${query}"

work_dir="$(mktemp -d)"
coproc_pid=""
cleanup() {
  status=$?
  if [[ -n "$coproc_pid" ]]; then kill "$coproc_pid" 2>/dev/null || true; fi
  psql -X -q -v ON_ERROR_STOP=1 "$maintenance_url" \
    -c "DROP DATABASE IF EXISTS \"${scratch_db}\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work_dir"
  exit $status
}
trap cleanup EXIT INT TERM

if [[ -n "$KEEP_DIR" ]]; then
  mkdir -p "$KEEP_DIR"
  dump_file="${KEEP_DIR%/}/${source_db}-$(date -u +%Y%m%dT%H%M%SZ).dump"
else
  dump_file="${work_dir}/${source_db}.dump"
fi

# One SQL statement per user table: "schema.table|rows" (exact counts, not statistics estimates).
COUNT_SQL="SELECT format('SELECT %L || ''|'' || count(*) FROM %I.%I', schemaname || '.' || tablename, schemaname, tablename)
  FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND schemaname NOT LIKE 'pg_temp%'
  ORDER BY schemaname, tablename"

count_tables() {  # count_tables URL > file
  { printf '%s\n\\gexec\n' "$COUNT_SQL"; } | psql -X -A -t -q -v ON_ERROR_STOP=1 "$1"
}

compare_counts() {  # compare_counts SOURCE_FILE OTHER_FILE SOURCE_LABEL OTHER_LABEL
  sort -o "$1" "$1"
  sort -o "$2" "$2"
  tables=$(wc -l <"$1")
  rows=$(awk -F'|' '{ s += $2 } END { print s + 0 }' "$1")
  if ! diff -u --label "$3" --label "$4" "$1" "$2"; then
    echo "FAILED: $4 differs from $3 (row counts above)" >&2
    return 1
  fi
  if [[ "$tables" -eq 0 ]]; then
    echo "FAILED: $3 has no tables" >&2
    return 1
  fi
  if [[ -n "${BACKUP_CHECK_VERBOSE:-}" ]]; then cat "$1"; fi
}

if [[ -n "$COMPARE_URL" ]]; then
  count_tables "$SOURCE_URL" >"$work_dir/source.counts"
  count_tables "$COMPARE_URL" >"$work_dir/other.counts"
  other_db="${COMPARE_URL%%\?*}"
  compare_counts "$work_dir/source.counts" "$work_dir/other.counts" "$source_db" "${other_db##*/}"
  echo "OK: $tables tables, $rows rows, the same in both databases"
  exit 0
fi

# 1. Open a repeatable-read transaction on the source and export its snapshot.
coproc SOURCE_PSQL { psql -X -A -t -q -v ON_ERROR_STOP=1 "$SOURCE_URL" 2>&1; }
coproc_pid=$SOURCE_PSQL_PID
echo "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot();" >&"${SOURCE_PSQL[1]}"
read -r -t 30 snapshot <&"${SOURCE_PSQL[0]}" || { echo "cannot open a snapshot on $source_db" >&2; exit 1; }
if [[ ! "$snapshot" =~ ^[0-9A-F-]+$ ]]; then echo "cannot open a snapshot: $snapshot" >&2; exit 1; fi

# 2. Dump that snapshot.
started=$(date +%s)
pg_dump -Fc --snapshot="$snapshot" --file="$dump_file" "$SOURCE_URL"
echo "dump: $dump_file ($(du -h "$dump_file" | cut -f1))"

# 3. Row counts of the source, in the same snapshot.
{ printf '%s\n\\gexec\n' "$COUNT_SQL"; echo "SELECT '__end__';"; } >&"${SOURCE_PSQL[1]}"
: >"$work_dir/source.counts"
while read -r -t 300 line <&"${SOURCE_PSQL[0]}"; do
  [[ "$line" == "__end__" ]] && break
  if [[ "$line" != *"|"* ]]; then echo "counting the source failed: $line" >&2; exit 1; fi
  echo "$line" >>"$work_dir/source.counts"
done
echo "COMMIT;" >&"${SOURCE_PSQL[1]}"
exec {SOURCE_PSQL[1]}>&-
wait "$coproc_pid" 2>/dev/null || true
coproc_pid=""

# 4. Restore into a scratch database and count again.
psql -X -q -v ON_ERROR_STOP=1 "$maintenance_url" -c "CREATE DATABASE \"${scratch_db}\" TEMPLATE template0" >/dev/null
pg_restore --no-owner --no-privileges --exit-on-error -d "$scratch_url" "$dump_file"
count_tables "$scratch_url" >"$work_dir/restored.counts"

# 5. Compare.
compare_counts "$work_dir/source.counts" "$work_dir/restored.counts" "source $source_db" "restored $scratch_db"
echo "OK: $tables tables, $rows rows restored identically from $source_db in $(( $(date +%s) - started )) s"
