"""`opportunity_import_history`: the one audited path that puts a deal into a stage without walking the
transitions.

An imported deal arrives with what the old system knows: its created date, its current stage, its
amount and, for a closed deal, its close date. Walking the transitions (advance, advance, ..., win)
would invent a history (and a win needs a signed contract); this service instead writes the deal in
its stage directly and leaves the invariants every other path keeps:

- the stage is written with django-fsm's own `set_state` (what a transition does) on rows built or
  loaded here, or by `bulk_create`; `opportunity.stage = ...` still raises everywhere else, and nothing
  outside this package calls this service (nothing imports `switching`; the API's PATCH and the forms
  go through `opportunities.services.opportunity_update`, which refuses a stage);
- `closed_at` is set exactly while the deal is won or lost (its close date), `stage_entered_at` is
  the close date of a closed deal and the created date of an open one, `probability` is the file's or
  the stage's default, the priority score is computed as `opportunity_create` does;
- `StageChange` rows reproduce what is known, all with `action="import"`, `imported=True` and
  `changed_by` the importing user: created at the pipeline's first open stage on the created date;
  moved to the current stage (if another) on the close date (open deals: on the created date).
  `seconds_in_previous_stage` stays empty: the old system's time per stage is unknown, so the
  time-in-stage analytics leave imported moves out instead of counting invented durations;
- the board's rollup table follows by its PostgreSQL trigger (every INSERT/UPDATE of a deal);
- a history row (django-simple-history) per deal, attributed to the importing user with the reason
  "import: <file>";
- no signals are sent (won/lost notifications and tier updates are for live events; the import
  queues a tier and priority recompute afterwards instead).

Re-importing a deal whose history is still only imported rows replaces those rows (same result, nothing
doubled). A deal that has moved in this CRM since (any StageChange not imported) keeps its stage and
history; only its other fields are updated, and a different stage in the file is a row error
(reported by the caller before this service runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from accounts.models import User
from opportunities import scoring
from opportunities.models import Opportunity, PriorityWeights, Stage, StageChange, TransitionAction

# Fields the file sets on a deal (besides the stage and its dates).
DEAL_FIELDS = (
    "title", "amount", "currency", "expected_close_date", "probability", "owner_id", "source", "contact_id",
    "loss_reason_id", "loss_note", "customer_id",
)


@dataclass
class ImportedDeal:
    """One deal as the file describes it."""

    external_id: str
    customer_id: int
    customer_tier: str
    customer_last_contacted_at: datetime | None
    stage: Stage
    first_stage: Stage
    created_at: datetime
    closed_at: datetime | None
    fields: dict[str, Any]
    pk: int | None = None  # an existing deal to update
    keep_stage: bool = False  # an existing deal that moved in this CRM: fields only


class _CustomerStub:
    """What the priority score reads of a customer (tier, last contact), without loading it."""

    def __init__(self, tier: str, last_contacted_at: datetime | None):
        self.tier = tier
        self.last_contacted_at = last_contacted_at


def _score(opportunity: Opportunity, deal: ImportedDeal, weights: PriorityWeights, now: datetime) -> int:
    customer = _CustomerStub(deal.customer_tier, deal.customer_last_contacted_at)
    parts = scoring.priority_parts(_ScoringView(opportunity, customer), weights, now=now)
    return scoring.score_from_parts(parts)


class _ScoringView:
    """The opportunity as `scoring` reads it, with the customer stub instead of a query."""

    def __init__(self, opportunity: Opportunity, customer: _CustomerStub):
        self._opportunity = opportunity
        self.customer = customer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._opportunity, name)


def _stage_changes(opportunity_id: int, deal: ImportedDeal, by: User, note: str) -> list[tuple]:
    """The deal's imported StageChange rows, as (opportunity, from, to, at) tuples for `_insert_changes`."""
    rows = [(opportunity_id, None, deal.first_stage.pk, deal.created_at)]
    if deal.stage.pk != deal.first_stage.pk:
        rows.append((opportunity_id, deal.first_stage.pk, deal.stage.pk, deal.closed_at or deal.created_at))
    return rows


def _insert_changes(rows: list[tuple], by: User, note: str) -> None:
    """One INSERT ... SELECT FROM unnest(...) for all the StageChange rows of a call: what
    `StageChange.objects.bulk_create` would write (action "import", imported, changed by the importing
    user, no duration), without building a model instance per row."""
    if not rows:
        return
    opportunity_ids, from_ids, to_ids, times = (list(column) for column in zip(*rows, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {StageChange._meta.db_table} "  # noqa: S608  # nosec B608 - our table name, values bound
            "(opportunity_id, from_stage_id, to_stage_id, changed_at, action, imported, changed_by_id, note) "
            "SELECT o, f, t, c, %s, true, %s, %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::timestamptz[]) AS v(o, f, t, c)",
            [TransitionAction.IMPORT, by.pk, note, opportunity_ids, from_ids, to_ids, times],
        )


def _apply(opportunity: Opportunity, deal: ImportedDeal, stage_field: Any) -> None:
    for name, value in deal.fields.items():
        setattr(opportunity, name, value)
    if deal.keep_stage:
        return
    stage_field.set_state(opportunity, deal.stage)  # django-fsm's own write of the state
    opportunity.pipeline_id = deal.stage.pipeline_id
    opportunity.created_at = deal.created_at
    opportunity.closed_at = None if deal.stage.is_open else deal.closed_at
    opportunity.stage_entered_at = deal.closed_at if not deal.stage.is_open else deal.created_at
    opportunity.stalled_since = None
    if not deal.stage.is_lost:
        opportunity.loss_reason_id = None
        opportunity.loss_note = ""
    opportunity.lost_from_stage_id = None


@transaction.atomic
def opportunity_import_history(*, deals: list[ImportedDeal], by: User, note: str = "") -> tuple[int, int]:
    """Create or update the deals with their imported stage history (see the module docstring).
    Returns (created, updated). A fixed number of queries per call, whatever the number of deals."""
    stage_field = Opportunity._meta.get_field("stage")
    weights = PriorityWeights.load()
    now = timezone.now()
    new = [d for d in deals if d.pk is None]
    existing = [d for d in deals if d.pk is not None]
    created_objs = []
    for deal in new:
        opportunity = Opportunity(
            pipeline_id=deal.stage.pipeline_id, stage=deal.stage, customer_id=deal.customer_id,
            created_by=by, external_id=deal.external_id,
        )
        _apply(opportunity, deal, stage_field)
        opportunity.priority_score = _score(opportunity, deal, weights, now)
        created_objs.append(opportunity)
    if created_objs:
        # created_at is a plain default (not auto_now_add): bulk_create keeps the file's date
        created_objs = bulk_create_with_history(
            created_objs, Opportunity, batch_size=2000, default_user=by, default_change_reason=note[:100]
        )
    changes: list[tuple] = []
    for opportunity, deal in zip(created_objs, new, strict=True):
        changes += _stage_changes(opportunity.pk, deal, by, note)
    if existing:
        loaded = Opportunity.objects.in_bulk([d.pk for d in existing])
        objs = []
        rewrite = [d.pk for d in existing if not d.keep_stage]
        for deal in existing:
            opportunity = loaded[deal.pk]
            _apply(opportunity, deal, stage_field)
            opportunity.version += 1
            opportunity.priority_score = _score(opportunity, deal, weights, now)
            objs.append(opportunity)
            if not deal.keep_stage:
                changes += _stage_changes(opportunity.pk, deal, by, note)
        fields = [
            "title", "amount", "currency", "expected_close_date", "probability", "owner", "source", "contact",
            "loss_reason", "loss_note", "customer", "priority_score", "version", "pipeline", "stage", "created_at",
            "closed_at", "stage_entered_at", "stalled_since", "lost_from_stage", "updated_at",
        ]
        for opportunity in objs:
            opportunity.updated_at = now
        bulk_update_with_history(objs, Opportunity, fields, batch_size=1000, default_user=by,
                                 default_change_reason=note[:100])
        if rewrite:
            StageChange.objects.filter(opportunity_id__in=rewrite, imported=True).delete()
    _insert_changes(changes, by, note)
    return len(new), len(existing)
