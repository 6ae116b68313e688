"""What validating and writing a chunk needs, loaded once per preview or run: the importing user's
scope, the users, the person's mappings (stages, activity kinds, owners), the choice tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.scope import managed_user_ids, user_team_ids
from activities.models import ActivityKind, ActivityStatus, Outcome
from leads.importing import _choice_map
from leads.models import CompanySize, CustomerStatus, CustomerType, Industry, SourceChannel, Tier
from opportunities.models import Currency, LossReason, Source, Stage, StageKind

from ..columns import squash
from ..models import ImportJob, UnknownOwnerPolicy
from .values import CellError

OUTCOME_WORDS = {
    "won": StageKind.WON, "win": StageKind.WON, "closedwon": StageKind.WON, "赢单": StageKind.WON, "成交": StageKind.WON,
    "赢": StageKind.WON, "lost": StageKind.LOST, "lose": StageKind.LOST, "closedlost": StageKind.LOST,
    "输单": StageKind.LOST, "丢单": StageKind.LOST, "输": StageKind.LOST, "open": StageKind.OPEN,
    "进行中": StageKind.OPEN, "跟进中": StageKind.OPEN, "": "",
}


@dataclass
class ImportContext:
    job: ImportJob
    by: User
    allowed_user_ids: set[int] | None
    team_ids: set[int] | None
    users: dict[str, int]  # lower-cased username or email -> user id (active users)
    user_teams: dict[int, int | None]
    owner_map: dict[str, int]  # the person's choices for owners the file names differently
    default_owner_id: int | None
    stages: dict[str, int]  # squashed old stage name -> stage id
    stage_rows: dict[int, Stage]
    first_stage: dict[int, Stage]  # pipeline id -> its first active open stage
    kinds: dict[str, int]  # squashed old kind name -> ActivityKind id
    kind_names: dict[int, str]
    sources: dict[str, SourceChannel]
    loss_reasons: dict[str, int]
    choices: dict[str, dict[str, str]] = field(default_factory=dict)
    now: Any = None
    reason: str = ""

    # --- owners -------------------------------------------------------------------------------------
    def owner_lookup(self, raw: str) -> tuple[int | None, str]:
        """(user id, problem) for an owner cell: problem "" (found and in scope), "unknown" or "scope"."""
        key = (raw or "").strip().lower()
        if not key:
            return None, ""
        user_id = self.owner_map.get(key) or self.users.get(key)
        if user_id is None:
            if self.job.unknown_owner_policy == UnknownOwnerPolicy.ASSIGN and self.default_owner_id:
                return self.default_owner_id, ""
            return None, "unknown"
        if self.allowed_user_ids is not None and user_id not in self.allowed_user_ids:
            return None, "scope"
        return user_id, ""

    def owner(self, column: str, raw: str) -> int | None:
        user_id, problem = self.owner_lookup(raw)
        if problem == "unknown":
            raise CellError(column, _("Unknown owner “%(value)s”.") % {"value": raw})
        if problem == "scope":
            raise CellError(column, _("The owner “%(value)s” is outside your teams.") % {"value": raw})
        return user_id

    def in_scope(self, user_id: int | None) -> bool:
        return user_id is not None and (self.allowed_user_ids is None or user_id in self.allowed_user_ids)


def _users() -> tuple[dict[str, int], dict[int, int | None]]:
    users: dict[str, int] = {}
    teams: dict[int, int | None] = {}
    for pk, username, email, team_id in User.objects.filter(is_active=True).values_list("pk", "username", "email", "team_id"):
        teams[pk] = team_id
        users[username.lower()] = pk
        if email:
            users.setdefault(email.lower(), pk)
    return users, teams


def _sources() -> dict[str, SourceChannel]:
    sources: dict[str, SourceChannel] = {}
    for channel in SourceChannel.objects.all():
        for text in {channel.code, channel.name}:
            sources[squash(text)] = channel
        for language in ("en", "zh-hans"):
            with translation.override(language):
                sources[squash(str(channel))] = channel
    return sources


def stage_lookup() -> dict[str, int]:
    """The stages a file may name without a mapping: code, Chinese or English name (of any pipeline,
    the default pipeline's first), also qualified by the pipeline's code as `<pipeline code>/<stage>`
    (what the export writes for the stages of the other pipelines, whose names repeat: 赢单, 输单)."""
    lookup: dict[str, int] = {}
    for stage in Stage.objects.select_related("pipeline").order_by("-pipeline__is_default", "pipeline_id", "order", "id"):
        for text in (stage.code, stage.name_zh, stage.name_en, f"closed{stage.kind}" if not stage.is_open else ""):
            if text:
                lookup.setdefault(squash(text), stage.pk)
                lookup.setdefault(squash(f"{stage.pipeline.code}/{text}"), stage.pk)
    return lookup


def kind_lookup() -> dict[str, int]:
    lookup: dict[str, int] = {}
    for kind in ActivityKind.objects.order_by("position", "code"):
        for text in (kind.code, kind.name, kind.name_en):
            if text:
                lookup.setdefault(squash(text), kind.pk)
    return lookup


def build_context(job: ImportJob) -> ImportContext:
    by = job.created_by
    users, user_teams = _users()
    mapping = job.mapping or {}
    stages = stage_lookup()
    stages.update({squash(k): int(v) for k, v in (mapping.get("stages") or {}).items() if v})
    kinds = kind_lookup()
    kinds.update({squash(k): int(v) for k, v in (mapping.get("kinds") or {}).items() if v})
    stage_rows = {s.pk: s for s in Stage.objects.all()}
    first_stage: dict[int, Stage] = {}
    for stage in sorted(stage_rows.values(), key=lambda s: (s.order, s.pk)):
        if stage.is_open and stage.is_active:
            first_stage.setdefault(stage.pipeline_id, stage)
    loss_reasons: dict[str, int] = {}
    for reason in LossReason.objects.all():
        for text in (reason.name_zh, reason.name_en):
            if text:
                loss_reasons[squash(text)] = reason.pk
    kind_names = {k.pk: k.name for k in ActivityKind.objects.all()}
    context = ImportContext(
        job=job, by=by, allowed_user_ids=managed_user_ids(by), team_ids=user_team_ids(by), users=users,
        user_teams=user_teams,
        owner_map={k.strip().lower(): int(v) for k, v in (mapping.get("owners") or {}).items() if v},
        default_owner_id=job.default_owner_id, stages=stages, stage_rows=stage_rows, first_stage=first_stage,
        kinds=kinds, kind_names=kind_names, sources=_sources(), loss_reasons=loss_reasons, now=timezone.now(),
        reason=(_("import: %(file)s") % {"file": job.file_name})[:100],
    )
    context.choices = {
        name: {squash(text): value for text, value in choices.items()}  # keyed as parse_choice looks up
        for name, choices in _choices().items()
    }
    return context


def _choices() -> dict[str, dict[str, str]]:
    return {
        "customer_type": _choice_map(CustomerType.choices),
        "status": _choice_map(CustomerStatus.choices),
        "tier": _choice_map(Tier.choices),
        "industry": _choice_map(Industry.choices),
        "size": _choice_map(CompanySize.choices),
        "currency": _choice_map(Currency.choices),
        "opp_source": _choice_map(Source.choices),
        "activity_status": _choice_map(ActivityStatus.choices),
        "outcome": {**_choice_map(Outcome.choices), "积极": Outcome.POSITIVE, "中性": Outcome.NEUTRAL, "消极": Outcome.NEGATIVE},
    }
