#!/usr/bin/env python
"""Translation catalogues: regenerate, fill, compile, check.

Each app keeps its own catalogue in <app>/locale/ (its Python code and its templates); the project's
templates and the crm package use locale/. The source language is English: the en catalogues are
filled with the msgid itself, the zh_Hans ones by a person (or from a JSON mapping with --fill).

  scripts/messages.py                 regenerate every catalogue from the code, fill en, compile .mo
  scripts/messages.py --todo          print the zh_Hans entries still untranslated, as JSON
  scripts/messages.py --fill F.json   take {"msgid": "译文", ...} (plurals: "msgid": ["译文"]) into the zh_Hans
                                      entries still untranslated (existing translations are never overwritten)
  scripts/messages.py --check [ROOT]  regenerate in ROOT (a scratch copy) and fail on anything untranslated

makemessages runs without Django settings so that each folder's own locale/ receives its strings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polib

LANGS = ["zh_Hans", "en"]
SKIP_DIRS = {".venv", "var", "static", "tests", "docs", "scripts", "node_modules", ".git", ".ci", "locale"}


def domains(root: Path) -> list[tuple[Path, list[str]]]:
    """(folder, ignore patterns) for the project and each app with a locale/ folder."""
    apps = sorted(p.parent for p in root.glob("*/locale") if p.parent != root and p.parent.name not in SKIP_DIRS)
    ignore_root = sorted({*SKIP_DIRS, *(a.name for a in apps)} - {"locale"})
    return [(root, ignore_root), *[(app, ["locale", "migrations"]) for app in apps]]


def catalogue(folder: Path, lang: str) -> Path:
    return folder / "locale" / lang / "LC_MESSAGES" / "django.po"


def make(root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    for folder, ignores in domains(root):
        (folder / "locale").mkdir(exist_ok=True)
        args = [sys.executable, "-P", "-m", "django", "makemessages", "--no-obsolete", "--no-location",
                "--no-wrap", *[f"-l={lang}" for lang in LANGS], *[f"--ignore={i}" for i in ignores]]
        result = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"makemessages failed in {folder}:\n{result.stderr}")
        for lang in LANGS:
            path = catalogue(folder, lang)
            if not path.exists():
                continue
            po = polib.pofile(str(path), wrapwidth=0)
            po.metadata["Content-Type"] = "text/plain; charset=UTF-8"
            if lang == "zh_Hans":
                po.metadata["Plural-Forms"] = "nplurals=1; plural=0;"
                po.metadata["Language"] = "zh_Hans"
            if lang == "en":
                po.metadata["Plural-Forms"] = "nplurals=2; plural=(n != 1);"
                po.metadata["Language"] = "en"
                for entry in po:
                    if "fuzzy" in entry.flags:
                        entry.flags.remove("fuzzy")
                    if entry.msgid_plural:
                        entry.msgstr_plural = {0: entry.msgid, 1: entry.msgid_plural}
                    else:
                        entry.msgstr = entry.msgid
            po.save()


def all_catalogues(root: Path, lang: str) -> list[Path]:
    return [catalogue(folder, lang) for folder, _ in domains(root) if catalogue(folder, lang).exists()]


def todo(root: Path) -> dict[str, str]:
    missing: dict[str, str] = {}
    for path in all_catalogues(root, "zh_Hans"):
        po = polib.pofile(str(path))
        for entry in [*po.untranslated_entries(), *po.fuzzy_entries()]:
            missing[entry.msgid] = str(path.relative_to(root))
    return missing


def fill(root: Path, mapping: dict[str, object]) -> int:
    count = 0
    for path in all_catalogues(root, "zh_Hans"):
        po = polib.pofile(str(path), wrapwidth=0)
        for entry in po:
            if entry.msgid not in mapping:
                continue
            # Only fill what is missing: an app's own (maybe context-specific) translation is kept.
            translated = entry.translated() and "fuzzy" not in entry.flags
            if translated:
                continue
            value = mapping[entry.msgid]
            if entry.msgid_plural:
                entry.msgstr_plural = {0: value[0] if isinstance(value, list) else value}
            else:
                entry.msgstr = value if isinstance(value, str) else value[0]
            if "fuzzy" in entry.flags:
                entry.flags.remove("fuzzy")
            count += 1
        po.save()
    return count


def compile_all(root: Path) -> None:
    for lang in LANGS:
        for path in all_catalogues(root, lang):
            polib.pofile(str(path)).save_as_mofile(str(path.with_suffix(".mo")))


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    if "--check" in argv:
        rest = [a for a in argv if a != "--check"]
        root = Path(rest[0]).resolve() if rest else root
        make(root)
        missing = todo(root)
        if missing:
            print(f"{len(missing)} strings have no zh_Hans translation (run scripts/messages.py, then --todo):")
            for msgid, where in list(missing.items())[:50]:
                print(f"  {where}: {msgid!r}")
            return 1
        print("catalogues complete")
        return 0
    if "--todo" in argv:
        print(json.dumps(todo(root), ensure_ascii=False, indent=1))
        return 0
    if "--fill" in argv:
        mapping = json.loads(Path(argv[argv.index("--fill") + 1]).read_text(encoding="utf-8"))
        print(f"filled {fill(root, mapping)} entries")
        compile_all(root)
        return 0
    make(root)
    compile_all(root)
    missing = todo(root)
    print(f"catalogues regenerated and compiled; {len(missing)} zh_Hans strings still to translate"
          + (" (scripts/messages.py --todo)" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
