"""`make run` without DATABASE_URL runs on SQLite: there the dashboards have no summary tables (no
triggers) and count from the source rows without PostgreSQL's percentile_cont. Migrate, load the demo
data and open every dashboard page as the demo admin, a manager and a rep, in separate processes (the
suite's own database is PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = """
from django.test import Client
from accounts.models import User
for role in ("admin", "manager", "rep"):
    user = User.objects.filter(role=role, is_active=True).order_by("pk").first()
    client = Client()
    client.force_login(user)
    for path, params in (("/dashboards/", {"period": "month"}), ("/dashboards/", {"period": "quarter"}),
                         ("/dashboards/", {"period": "week"}), ("/dashboards/me/", {}), ("/dashboards/review/", {}),
                         ("/dashboards/export/cycle.csv", {}), ("/dashboards/export/stages.csv", {})):
        response = client.get(path, params, HTTP_HOST="127.0.0.1")
        print(role, path, params.get("period", ""), response.status_code)
"""


def manage(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_ENV": "test", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def test_dashboards_on_sqlite(tmp_path):
    for args in (("migrate", "--noinput", "-v", "0"), ("seed_demo",)):
        done = manage(tmp_path, *args)
        assert done.returncode == 0, done.stderr[-3000:]
    done = manage(tmp_path, "shell", "-c", PAGES)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.split()[:1] in (["admin"], ["manager"], ["rep"])]
    assert len(lines) == 21, done.stdout
    assert all(line.endswith(" 200") for line in lines), done.stdout
