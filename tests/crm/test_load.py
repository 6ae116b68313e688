"""The load scenario (scripts/load/locustfile.py) works against the app: each simulated rep and manager
runs its task sequence once against the live server, through locust itself.

Locust runs in a subprocess: importing it monkey-patches the standard library for gevent, which the
other tests of this process must not inherit."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from activities.defaults import ensure_defaults
from activities.models import Activity
from opportunities.models import StageChange
from tests.factories import CustomerFactory
from tests.opportunities.factories import advance_to, default_pipeline, make_opportunity, open_stages

LOCUSTFILE = Path(settings.BASE_DIR) / "scripts" / "load" / "locustfile.py"
LOCUST = Path(sys.executable).parent / "locust"


class TestLoadScenario:
    @pytest.mark.django_db(transaction=True)
    def test_every_task_of_reps_and_managers_succeeds(self, live_server, org, tmp_path):
        """Two reps (each with customers and open deals whose page offers a move) and a manager log in
        through the login form, browse, log an activity and move deals: no request fails, and the
        activities and stage changes reach the database."""
        ensure_defaults()
        stages = open_stages(default_pipeline())
        for rep in (org.rep_a, org.rep_a2):
            for _ in range(3):
                CustomerFactory(owner=rep, team=rep.team)
            make_opportunity(rep, complete=True, title="first stage")
            advance_to(make_opportunity(rep, complete=True, title="second stage"), stages[1])
        changes_before = StageChange.objects.count()
        env = {
            **os.environ,
            "LOAD_REPS": "rep_a,rep_a2", "LOAD_MANAGERS": "manager_a", "LOAD_PASSWORD": settings.CRM_DEMO_PASSWORD,
            "LOAD_ONCE": "1", "LOAD_WAIT_MIN": "0", "LOAD_WAIT_MAX": "0.1",
            "LOAD_SUMMARY": str(tmp_path / "summary.json"),
        }
        result = subprocess.run(
            [str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "--only-summary", "-u", "3", "-r", "3", "-t", "120s",
             "--host", live_server.url, "--loglevel", "WARNING"],
            env=env, capture_output=True, text=True, timeout=180,
        )
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["errors"] == 0, summary["failure_samples"]
        assert result.returncode == 0, result.stderr[-2000:]
        # about 10 s; the time limit (-t) is only a safety net for a very busy machine
        assert summary["duration_s"] < 110, "the run should end when every user has done its tasks"
        counts = {name: row["requests"] for name, row in summary["endpoints"].items()}
        for name in ("login: submit", "read: customer list", "read: customer search", "read: board",
                     "read: customer detail", "read: opportunity detail", "write: log activity",
                     "read: dashboard (month)", "read: dashboard (quarter)", "read: team activities"):
            assert counts.get(name, 0) >= 1, f"{name} was not requested: {sorted(counts)}"
        moves = sum(counts.get(name, 0) for name in ("write: advance deal", "write: move deal back",
                                                     "write: tick checklist and advance"))
        assert moves == 6  # three per rep, every one offered by the deal's page and made
        assert counts["login: submit"] == 3
        assert Activity.objects.filter(subject__startswith="load test call").count() == 2
        assert StageChange.objects.count() == changes_before + 6
