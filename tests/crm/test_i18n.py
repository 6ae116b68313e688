"""Both catalogues are complete and compiled: every msgid translated, no fuzzy entries, .mo up to date."""

from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = sorted(
    p for p in ROOT.glob("**/locale/*/LC_MESSAGES/django.po") if ".venv" not in p.parts
)


def test_there_are_catalogues_for_both_languages():
    languages = {p.parts[-3] for p in CATALOGUES}
    assert {"zh_Hans", "en"} <= languages


@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def test_catalogue_complete_and_compiled(po_path):
    po = polib.pofile(str(po_path))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, f"untranslated in {po_path}: {untranslated[:10]}"
    assert not fuzzy, f"fuzzy in {po_path}: {fuzzy[:10]}"
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path} is missing: run make messages"
    mo = polib.mofile(str(mo_path))
    compiled = {(e.msgctxt, e.msgid): (e.msgstr, tuple(sorted(e.msgstr_plural.items()))) for e in mo}
    for entry in po.translated_entries():
        key = (entry.msgctxt, entry.msgid)
        assert key in compiled, f"{entry.msgid!r} is not compiled in {mo_path}: run make messages"
        assert compiled[key][0] == entry.msgstr or entry.msgid_plural, f"{entry.msgid!r} is stale in {mo_path}"


def test_no_template_or_python_string_escapes_the_catalogue():
    """makemessages over the tree finds nothing that the zh_Hans catalogues lack."""
    import shutil
    import subprocess
    import sys
    import tempfile

    if shutil.which("xgettext") is None:
        pytest.fail("GNU gettext (xgettext) is needed to check the catalogues: apt-get install gettext")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_root = Path(tmp) / "tree"
        shutil.copytree(
            ROOT, tmp_root, ignore=shutil.ignore_patterns(".venv", "var", ".git", "node_modules", "static")
        )
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "messages.py"), "--check", str(tmp_root)],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
