"""bandit (static security analysis) finds nothing of medium or high severity in our code.

Scanned: every app and crm/, scripts/ and manage.py; not scanned: .venv, tests, migrations (generated),
var/ and static/. A finding that is a false positive is silenced on its line with `# nosec BXXX` and
a reason, never by widening the exclusions.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXCLUDE = ",".join(["./.venv", "./tests", "./var", "./static", "./node_modules", "./.git", "*/migrations/*"])


def _bandit(target: Path, cwd: Path) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-r", str(target), "-x", EXCLUDE, "--severity-level", "medium",
         "-f", "json", "-q"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def test_no_medium_or_high_findings_in_our_code():
    report = _bandit(Path("."), ROOT)
    files = [name for name in report["metrics"] if name != "_totals"]
    scanned = {Path(name).parts[0] for name in files}
    assert {"crm", "accounts", "leads"} <= scanned, "bandit did not scan the apps"
    assert not any("migrations" in Path(name).parts for name in files), "migrations are excluded"
    assert not report["errors"], report["errors"]
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_severity']}: {r['issue_text']}"
        for r in report["results"]
    ]
    assert not findings, "\n".join(findings)


def test_the_check_would_catch_a_finding(tmp_path):
    (tmp_path / "bad.py").write_text("import subprocess\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n")
    report = _bandit(tmp_path, tmp_path)
    assert [r["test_id"] for r in report["results"]] == ["B602"]
