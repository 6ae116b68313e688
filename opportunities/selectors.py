"""Reads of the pipeline: the board, the list, the detail page, scoped by `visible_to(user)`.

Every page runs a fixed number of queries whatever the number of opportunities: the board costs one
query for the stages, one for the column totals (GROUP BY stage, from a covering index) and one for
the first cards of every column (a UNION ALL of one index range per column on PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from accounts.scope import get_visible_or_404
from leads.models import Customer

from .models import (
    LossReason,
    Opportunity,
    Pipeline,
    Stage,
    StageChange,
    StageKind,
    StageOwnerTotal,
)

if TYPE_CHECKING:
    from accounts.models import User

CARDS_PER_COLUMN = 20
# The list's search passes up to this many matching customers to the deal query as literal ids (so
# PostgreSQL sees how few there are and combines the title and customer indexes); more, and it passes
# them as a subquery (a common term: the list walks its sort index and keeps the matches).
SEARCH_CUSTOMER_IDS_MAX = 1000
# Won and lost columns show the deals closed in the last days only (the rest is history).
CLOSED_COLUMN_DAYS = 30
ZERO = Decimal("0")
CENT = Decimal("0.01")

CARD_FIELDS = (
    "id", "title", "amount", "currency", "probability", "priority_score", "stage_id", "pipeline_id",
    "stage_entered_at", "stalled_since", "expected_close_date", "version", "owner_id", "customer_id",
    "customer__name", "customer__tier", "owner__username", "owner__first_name", "owner__last_name",
)


# --- pipelines ---------------------------------------------------------------------------------------
def pipeline_list() -> QuerySet[Pipeline]:
    return Pipeline.objects.filter(is_active=True).order_by("-is_default", "order", "id")


def pipeline_get(pk: int | None = None) -> Pipeline:
    """The pipeline `pk` (active), or the default one."""
    if pk is None:
        from .services import pipeline_ensure_default

        return pipeline_ensure_default()
    pipeline = Pipeline.objects.filter(pk=pk, is_active=True).first()
    if pipeline is None:
        raise Http404("pipeline")
    return pipeline


def pipeline_stages(pipeline: Pipeline) -> list[Stage]:
    """The stage path of a pipeline: active open stages in order, then won and lost."""
    stages = list(
        Stage.objects.filter(pipeline=pipeline).filter(Q(is_active=True) | ~Q(kind=StageKind.OPEN))
        .order_by("order", "id")
    )
    return [s for s in stages if s.is_open] + [s for s in stages if s.is_won] + [s for s in stages if s.is_lost]


# --- opportunities -----------------------------------------------------------------------------------
def opportunity_get_for_user(*, user: User, pk: int, for_detail: bool = False) -> Opportunity:
    """Fetch-and-authorize: an opportunity outside `user`'s scope is a 404."""
    qs = Opportunity.objects.select_related("customer", "owner", "stage", "pipeline", "contact", "loss_reason")
    return get_visible_or_404(qs, user, pk=pk)


def opportunity_history(opportunity: Opportunity) -> list[StageChange]:
    return list(
        StageChange.objects.filter(opportunity=opportunity)
        .select_related("from_stage", "to_stage", "changed_by")
        .order_by("changed_at", "id")
    )


def loss_reasons() -> QuerySet[LossReason]:
    return LossReason.objects.filter(is_active=True).order_by("order", "id")


def stalled_q(stages: list[Stage], now: datetime) -> Q:
    """Deals past their stage's time limit right now (one OR branch per stage that has a limit)."""
    q = Q(pk__in=[])
    for stage in stages:
        if stage.is_open and stage.stall_days is not None:
            q |= Q(stage_id=stage.pk, stage_entered_at__lt=now - timedelta(days=stage.stall_days))
    return q


@dataclass
class OpportunityFilters:
    pipeline: Pipeline | None = None
    stage: Stage | None = None
    owner_id: int | None = None
    stalled: bool | None = None
    status: str = ""  # "", "open", "won", "lost"
    close_from: date | None = None
    close_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    priority_min: int | None = None
    search: str = ""


SORTS = {
    "priority": ("-priority_score", "-id"),
    "-priority": ("priority_score", "id"),
    "amount": ("amount", "id"),
    "-amount": ("-amount", "-id"),
    "close": (F("expected_close_date").asc(nulls_last=True), "id"),
    "-close": (F("expected_close_date").desc(nulls_last=True), "-id"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "stage": ("stage__order", "-priority_score", "-id"),
    "title": ("title", "id"),
}
DEFAULT_SORT = "priority"


def opportunity_list(
    *, user: User, filters: OpportunityFilters | None = None, sort: str = DEFAULT_SORT, now: datetime | None = None
) -> QuerySet[Opportunity]:
    """The opportunities `user` sees, filtered and sorted (the list page and its CSV export)."""
    filters = filters or OpportunityFilters()
    now = now or timezone.now()
    qs = Opportunity.objects.visible_to(user).select_related("customer", "owner", "stage", "pipeline")
    if filters.pipeline is not None:
        qs = qs.filter(pipeline=filters.pipeline)
    if filters.stage is not None:
        qs = qs.filter(stage=filters.stage)
    if filters.status == StageKind.OPEN:
        # closed_at is empty exactly while the deal is in an open stage: the partial indexes use it
        qs = qs.filter(closed_at__isnull=True)
    elif filters.status in (StageKind.WON, StageKind.LOST):
        qs = qs.filter(closed_at__isnull=False, stage__kind=filters.status)
    if filters.owner_id:
        qs = qs.filter(owner_id=filters.owner_id)
    if filters.stalled is not None:
        stages = list(Stage.objects.filter(kind=StageKind.OPEN, stall_days__isnull=False))
        q = stalled_q(stages, now)
        qs = qs.filter(q) if filters.stalled else qs.exclude(q)
    if filters.close_from:
        qs = qs.filter(expected_close_date__gte=filters.close_from)
    if filters.close_to:
        qs = qs.filter(expected_close_date__lte=filters.close_to)
    if filters.amount_min is not None:
        qs = qs.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        qs = qs.filter(amount__lte=filters.amount_max)
    if filters.priority_min is not None:
        qs = qs.filter(priority_score__gte=filters.priority_min)
    if filters.search:
        qs = qs.filter(search_q(filters.search))
    return qs.order_by(*SORTS.get(sort, SORTS[DEFAULT_SORT]))


def search_q(term: str) -> Q:
    """Deals whose title or customer name contains `term` (case-insensitive), written so that each side
    uses its trigram index: the title its own (opp_title_upper_trgm), the customer name the customers'
    search index (`search_text` holds the lower-cased name; the name itself is checked again, so a
    match on a phone or a contact does not count). One query for the customers when they are few."""
    customers = Customer.objects.filter(search_text__contains=term.lower(), name__icontains=term).order_by().values("pk")
    ids = list(customers.values_list("pk", flat=True)[: SEARCH_CUSTOMER_IDS_MAX + 1])
    in_customers = customers if len(ids) > SEARCH_CUSTOMER_IDS_MAX else ids
    return Q(title__icontains=term) | Q(customer_id__in=in_customers)


def page_of(qs: QuerySet, *, page: int, per_page: int = 50) -> tuple[list, bool]:
    """One page without counting the whole table: fetch one row more to know whether a next page exists."""
    page = max(1, page)
    rows = list(qs[(page - 1) * per_page: page * per_page + 1])
    return rows[:per_page], len(rows) > per_page


# --- the board ---------------------------------------------------------------------------------------
@dataclass
class Column:
    stage: Stage
    count: int = 0
    total: Decimal = ZERO
    weighted: Decimal = ZERO
    cards: list[Opportunity] = field(default_factory=list)
    has_more: bool = False

    @property
    def closed_window_days(self) -> int | None:
        return None if self.stage.is_open else CLOSED_COLUMN_DAYS


def _column_filter(stage: Stage, now: datetime) -> Q:
    q = Q(stage_id=stage.pk)
    if not stage.is_open:
        q &= Q(closed_at__gte=now - timedelta(days=CLOSED_COLUMN_DAYS))
    return q


def _card_qs(scope: Q, stage: Stage, now: datetime) -> QuerySet[Opportunity]:
    return (
        Opportunity.objects.filter(scope).filter(_column_filter(stage, now))
        .select_related("customer", "owner")
        .only(*CARD_FIELDS)
        .order_by("-priority_score", "-id")
    )


def column_cards(
    *, user: User, stage: Stage, after: tuple[int, int] | None = None, owner_id: int | None = None,
    limit: int = CARDS_PER_COLUMN, now: datetime | None = None,
) -> tuple[list[Opportunity], bool]:
    """One column's next cards after the cursor (priority, id), best first: the "load more" button."""
    now = now or timezone.now()
    qs = _card_qs(Opportunity.objects.scope_q(user), stage, now)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if after is not None:
        priority, pk = after
        # the redundant "<=" gives the index scan its start; the OR then only filters
        qs = qs.filter(Q(priority_score__lte=priority), Q(priority_score__lt=priority) | Q(id__lt=pk))
    rows = list(qs[: limit + 1])
    for card in rows:
        card._state.fields_cache["stage"] = stage
    return rows[:limit], len(rows) > limit


def board_totals(
    *, user: User, stages: list[Stage], owner_id: int | None = None, now: datetime | None = None,
    scope: Q | None = None,
) -> dict[int, tuple[int, Decimal, Decimal]]:
    """{stage id: (count, total amount, weighted amount)} of the deals `user` sees in each column.

    Open columns: on PostgreSQL from the trigger-maintained `StageOwnerTotal` rows (a few rows per
    stage, whatever the number of deals); elsewhere a GROUP BY over the deals. Won/lost columns (closed
    in the last CLOSED_COLUMN_DAYS days): a GROUP BY over the covering index (stage, closed_at)."""
    now = now or timezone.now()
    if not stages:
        return {}
    scope = Opportunity.objects.scope_q(user) if scope is None else scope
    weighted = ExpressionWrapper(
        F("amount") * F("probability") / 100, output_field=DecimalField(max_digits=20, decimal_places=2)
    )
    open_stages = [s for s in stages if s.is_open]
    closed_stages = [s for s in stages if not s.is_open]
    result: dict[int, tuple[int, Decimal, Decimal]] = {}
    base = Opportunity.objects.filter(scope)
    if owner_id:
        base = base.filter(owner_id=owner_id)

    def grouped(qs):
        # COUNT(*), not COUNT(id): the covering indexes hold no id, and then serve the whole query
        for row in qs.order_by().values("stage_id").annotate(
            n=Count("*"), total=Coalesce(Sum("amount"), ZERO), weighted=Coalesce(Sum(weighted), ZERO)
        ):
            result[row["stage_id"]] = (row["n"], row["total"], row["weighted"])

    if open_stages and connection.vendor == "postgresql":
        rollup = StageOwnerTotal.objects.filter(stage_id__in=[s.pk for s in open_stages])
        # the scope is Q(owner_id=...) / Q(owner_id__in=...) / Q(): it applies to these rows as well
        rollup = rollup.filter(owner_id=owner_id) if owner_id else rollup.filter(scope)
        for row in rollup.order_by().values("stage_id").annotate(
            n=Sum("opportunity_count"), total=Sum("amount_sum"), weighted=Sum("weighted_sum")
        ):
            result[row["stage_id"]] = (int(row["n"] or 0), row["total"] or ZERO, (row["weighted"] or ZERO).quantize(CENT))
    elif open_stages:
        grouped(base.filter(stage_id__in=[s.pk for s in open_stages]))
    if closed_stages:
        grouped(base.filter(stage_id__in=[s.pk for s in closed_stages],
                            closed_at__gte=now - timedelta(days=CLOSED_COLUMN_DAYS)))
    return result


def board(*, user: User, pipeline: Pipeline, owner_id: int | None = None, now: datetime | None = None) -> list[Column]:
    """The kanban board of a pipeline as `user` sees it: per column the count, total and weighted
    amount (won/lost: closed in the last CLOSED_COLUMN_DAYS days) and the first cards. Three queries."""
    now = now or timezone.now()
    stages = pipeline_stages(pipeline)
    columns = [Column(stage=s) for s in stages]
    by_stage = {column.stage.pk: column for column in columns}
    scope = Opportunity.objects.scope_q(user)  # one query for the scope, reused by every part
    totals = board_totals(user=user, stages=stages, owner_id=owner_id, now=now, scope=scope)
    for stage_id, (count, total, weighted) in totals.items():
        column = by_stage.get(stage_id)
        if column is not None:
            column.count, column.total, column.weighted = count, total, weighted

    def column_qs(stage: Stage) -> QuerySet[Opportunity]:
        qs = _card_qs(scope, stage, now)
        if owner_id:
            qs = qs.filter(owner_id=owner_id)
        return qs[: CARDS_PER_COLUMN + 1]

    wanted = [column.stage for column in columns if column.count]
    if wanted:
        if connection.features.supports_slicing_ordering_in_compound:
            first, *rest = [column_qs(stage) for stage in wanted]
            cards = list(first.union(*rest, all=True)) if rest else list(first)
        else:  # SQLite (development): one query per column
            cards = [card for stage in wanted for card in column_qs(stage)]
        for card in cards:
            by_stage[card.stage_id].cards.append(card)
        for column in columns:
            column.cards.sort(key=lambda o: (-o.priority_score, -o.pk))
            column.has_more = len(column.cards) > CARDS_PER_COLUMN
            del column.cards[CARDS_PER_COLUMN:]
    for column in columns:
        for card in column.cards:
            card._state.fields_cache["stage"] = column.stage
    return columns


def board_owner_choices(user: User) -> list[Any]:
    """The owners a user can filter the board and list by (themselves, or their teams' members)."""
    from accounts.models import User as UserModel
    from accounts.scope import managed_user_ids

    ids = managed_user_ids(user)
    qs = UserModel.objects.filter(is_active=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return list(qs.order_by("username"))


def customer_opportunities(*, user: User, customer_id: int) -> QuerySet[Opportunity]:
    """A customer's deals that `user` sees (the customer page's panel)."""
    return (
        Opportunity.objects.visible_to(user).filter(customer_id=customer_id)
        .select_related("stage", "owner").order_by("-created_at", "-id")
    )


def stage_change_prefetch() -> Prefetch:
    return Prefetch("stage_changes", queryset=StageChange.objects.select_related("from_stage", "to_stage"))
