"""scripts/backup_restore_check.sh: pg_dump -Fc, restore into a scratch database, compare row counts."""

import re
import subprocess
from pathlib import Path

import pytest
from django.db import connection

from accounts.models import User
from tests.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "backup_restore_check.sh"


def _url(name: str | None = None) -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{name or s['NAME']}"


def _run(*args, **env):
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **env}
    )


def _admin_sql(*statements: str) -> None:
    import psycopg2

    s = connection.settings_dict
    admin = psycopg2.connect(
        dbname="postgres", user=s["USER"], password=s["PASSWORD"] or None, host=s["HOST"] or "127.0.0.1",
        port=s["PORT"] or 5432,
    )
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        admin.close()


def _databases() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
class TestBackupRestoreCheck:
    def test_backup_restores_with_identical_row_counts(self, org, tmp_path):
        for i in range(25):
            CustomerFactory(name=f"客户 {i}", owner=org.rep_a)
        result = _run("--keep", str(tmp_path), _url(), BACKUP_CHECK_VERBOSE="1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r"OK: \d+ tables, \d+ rows restored identically", result.stdout)
        counts = dict(line.split("|") for line in result.stdout.splitlines() if "|" in line)
        assert counts["public.accounts_user"] == str(User.objects.count()) == "7"
        assert counts["public.leads_customer"] == "25"
        assert "public.django_migrations" in counts
        (dump,) = tmp_path.glob("*.dump")
        assert dump.read_bytes()[:5] == b"PGDMP", "a pg_dump custom-format archive is kept"
        scratch_prefix = f"{connection.settings_dict['NAME']}_restore_check_"
        assert not [db for db in _databases() if db.startswith(scratch_prefix)], "the scratch database is dropped"

    def test_compare_reports_a_difference_and_fails(self, org):
        source = connection.settings_dict["NAME"]
        scratch = f"{source}_cmp"
        _admin_sql(f'DROP DATABASE IF EXISTS "{scratch}"', f'CREATE DATABASE "{scratch}"')
        # A copy made with pg_dump | pg_restore (CREATE DATABASE ... TEMPLATE fails while any other
        # session, e.g. another test thread, is connected to the source).
        dump = subprocess.run(["pg_dump", "-Fc", _url()], capture_output=True, timeout=120, check=True).stdout
        subprocess.run(["pg_restore", "--no-owner", "-d", _url(scratch)], input=dump, capture_output=True,
                       timeout=120, check=True)
        try:
            assert _run("--compare", _url(scratch), _url()).returncode == 0
            User.objects.filter(username="rep_b").delete()
            result = _run("--compare", _url(scratch), _url())
            assert result.returncode == 1
            assert "-public.accounts_user|6" in result.stdout
            assert "+public.accounts_user|7" in result.stdout
            assert "FAILED" in result.stderr
        finally:
            _admin_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')

def test_a_missing_database_fails_and_no_password_is_printed():
    result = _run("postgres://someone:s3cret@127.0.0.1:5432/no_such_database_xyz")
    assert result.returncode != 0
    assert "s3cret" not in result.stdout + result.stderr
    result = _run("postgres://someone:s3cret@127.0.0.1:5432")
    assert result.returncode == 2
    assert "must name a database" in result.stderr and "s3cret" not in result.stderr
