"""Import a large file without the browser: `manage.py crm_import <kind> <file> --user <username>`.

The same services as the wizard (switching.importing): the file is copied to the private storage,
its headers matched (English or Chinese), the preview validates every row, then the rows are imported
in this process (no Celery), chunk by chunk, printing the progress. Interrupted, the same command with
`--resume <job id>` (or the wizard's "run again") finishes the job; nothing is doubled.

    --stage-map "closed_won=won,谈判中=negotiation"   old stage name → stage code or name of this CRM
    --kind-map "电话=call,拜访=visit"                   old activity kind → kind code or name
    --owner-map "old.user=rep_a"                       old owner → username or email
    --owner-default rep_a                              records of unknown owners go to this user
                                                       (without it, unknown owners stop the import)
    --dry-run                                          the preview only: counts and row errors
"""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from accounts.models import User
from activities.models import ActivityKind
from leads.importing import ImportFileError
from opportunities.models import Stage
from switching import importing
from switching.columns import KINDS, squash
from switching.models import ImportJob, ImportStatus, UnknownOwnerPolicy


def _pairs(text: str | None) -> list[tuple[str, str]]:
    pairs = []
    for item in (text or "").split(","):
        if "=" in item:
            old, new = item.rsplit("=", 1)
            pairs.append((old.strip(), new.strip()))
    return pairs


class Command(BaseCommand):
    help = "Import customers, contacts, opportunities or activities from a CSV or XLSX file (see docs/switching.md)."

    def add_arguments(self, parser):
        parser.add_argument("kind", nargs="?", choices=KINDS)
        parser.add_argument("file", nargs="?")
        parser.add_argument("--user", required=True, help="The importing user (an administrator or a manager).")
        parser.add_argument("--stage-map", default="")
        parser.add_argument("--kind-map", default="")
        parser.add_argument("--owner-map", default="")
        parser.add_argument("--owner-default", default="")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--resume", type=int, help="Finish an interrupted job (its id).")
        parser.add_argument("--quiet-errors", action="store_true", help="Print only the error count.")

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {options['user']!r}")
        if options["resume"]:
            job = ImportJob.objects.filter(pk=options["resume"], created_by=user).first()
            if job is None:
                raise CommandError("no such job of this user")
            return self._run(job)
        if not options["kind"] or not options["file"]:
            raise CommandError("give the kind and the file (or --resume <job id>)")
        started = time.monotonic()
        try:
            with open(options["file"], "rb") as handle:
                job = importing.import_upload(by=user, kind=options["kind"], file_name=options["file"].rsplit("/", 1)[-1],
                                              data=handle)
        except (ImportFileError, ValidationError) as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        problems = importing.mapping_problems(job)
        if problems:
            raise CommandError("\n".join(problems))
        default_owner = None
        if options["owner_default"]:
            default_owner = self._user(options["owner_default"])
        try:
            job = importing.import_set_mapping(
                job=job, by=user,
                stages={old: self._stage(new) for old, new in _pairs(options["stage_map"])},
                kinds={old: self._kind(new) for old, new in _pairs(options["kind_map"])},
                owners={old: self._user(new).pk for old, new in _pairs(options["owner_map"])},
                unknown_owner_policy=UnknownOwnerPolicy.ASSIGN if default_owner else UnknownOwnerPolicy.STOP,
                default_owner=default_owner,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        missing = importing.unmapped_values(job)
        if missing:
            raise CommandError(
                "map these values first: " + "; ".join(f"{name}: {', '.join(values)}" for name, values in missing.items())
            )
        self.stdout.write(
            f"job {job.pk}: {job.total_rows} rows: {job.new_count} new, {job.updated_count} updated, "
            f"{job.error_count} errors, {job.unknown_ref_count} unknown references "
            f"(preview {time.monotonic() - started:.1f} s)"
        )
        if not options["quiet_errors"]:
            for line, column, message in job.errors[:1000]:
                self.stdout.write(f"  line {line} {column}: {message}")
        if options["dry_run"]:
            return
        try:
            importing.import_confirm(job=job, by=user, queue=False)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self._run(job)

    def _run(self, job: ImportJob) -> None:
        started = time.monotonic()
        ImportJob.objects.filter(pk=job.pk, status=ImportStatus.FAILED).update(status=ImportStatus.QUEUED)
        result = importing.import_run(job_id=job.pk)
        self.stdout.write(
            f"job {job.pk}: {result.get('status')}: {result.get('created', 0)} created, {result.get('updated', 0)} updated, "
            f"{result.get('skipped', 0)} skipped (import {time.monotonic() - started:.1f} s)"
        )

    def _user(self, text: str) -> User:
        user = User.objects.filter(Q(username__iexact=text) | Q(email__iexact=text), is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {text!r}")
        return user

    def _stage(self, text: str) -> int:
        for stage in Stage.objects.order_by("-pipeline__is_default", "pipeline_id", "order"):
            if squash(text) in {squash(stage.code), squash(stage.name_zh), squash(stage.name_en)}:
                return stage.pk
        raise CommandError(f"no stage {text!r}")

    def _kind(self, text: str) -> int:
        for kind in ActivityKind.objects.all():
            if squash(text) in {squash(kind.code), squash(kind.name), squash(kind.name_en)}:
                return kind.pk
        raise CommandError(f"no activity kind {text!r}")
