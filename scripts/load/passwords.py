"""The load logins' passwords under production settings, and back.

`make bench` seeds the users under the test settings, whose fast MD5 hasher production does not accept.
`prepare` re-hashes the load logins' password (LOAD_PASSWORD, verified against the MD5 hash first) with
the production hasher and saves the old hashes to a file; `restore` puts them back after the run, so the
bench database stays usable under the test settings.

    python scripts/load/passwords.py prepare|restore <file>   (Django settings from the environment)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import MD5PasswordHasher, make_password  # noqa: E402

from accounts.models import User  # noqa: E402


def prepare(path: Path) -> int:
    password = os.environ["LOAD_PASSWORD"]
    names = [n for n in (os.environ["LOAD_REPS"] + "," + os.environ["LOAD_MANAGERS"]).split(",") if n]
    saved = json.loads(path.read_text()) if path.exists() else {}
    encoded = make_password(password)  # one production hash (about a second) for all of them
    for user in User.objects.filter(username__in=names, password__startswith="md5$"):
        if MD5PasswordHasher().verify(password, user.password):
            saved[user.username] = user.password
            User.objects.filter(pk=user.pk).update(password=encoded)
    path.write_text(json.dumps(saved))
    return len(saved)


def restore(path: Path) -> int:
    if not path.exists():
        return 0
    saved = json.loads(path.read_text())
    for username, encoded in saved.items():
        User.objects.filter(username=username).update(password=encoded)
    path.unlink()
    return len(saved)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "restore"):
        sys.exit(__doc__)
    count = {"prepare": prepare, "restore": restore}[sys.argv[1]](Path(sys.argv[2]))
    print(f"{sys.argv[1]}: {count} logins")
