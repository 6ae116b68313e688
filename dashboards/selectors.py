"""Every figure of the dashboards, each defined once, here, with its definition in the docstring.

All figures are aggregated by the database; Python only reshapes the handful of aggregated rows. On
PostgreSQL the figures are read from the trigger-maintained summary tables (dashboards/rollups.py): per
owner and local day; the stage reach and the duration histograms also per month, for the whole months of
a period (the days around them from the day tables; for the sales cycle from the deals). Elsewhere
(SQLite for `make run`), or while the summaries are not installed for the current time zone, from the
source rows (GROUP BY, COUNT DISTINCT, percentile_cont; in Python on SQLite). Both give the same
figures, except that a median or 75th percentile from the summaries is estimated from a duration
histogram (`rollups.histogram_percentile`: exact when durations are whole days apart, within 10 %
otherwise). Every selector takes a `DashboardScope` (the owners whose
records count, from the data-scope rule plus the page's team/rep filters) and, where it has one, a
`Period` of local dates in the configured time zone (settings.TIME_ZONE): [start, end).

Money is summed as stored (the deals and contracts of this CRM are in one currency in practice; mixed
currencies are not converted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.http import Http404
from django.utils import timezone

from accounts.models import Team, User
from accounts.scope import managed_user_ids, team_subtree_ids, user_team_ids
from activities.models import Activity, ActivityStatus
from contracts.models import Contract, PaymentReceipt
from leads.models import Customer, Tier
from opportunities.models import Opportunity, Pipeline, Stage, StageChange, StageKind, StageOwnerTotal
from opportunities.selectors import pipeline_stages

from . import rollups
from .models import (
    ActivityDay,
    ActivityDueDay,
    CustomerDay,
    CustomerPurchase,
    CustomerTierChange,
    CustomerTierTotal,
    CycleMonth,
    DashboardSettings,
    DealCohortDay,
    DealOpenCloseDay,
    DealReachDay,
    DealReachMonth,
    DealWonDay,
    RevenueDay,
    StageExitDay,
    StageExitMonth,
    Target,
)

ZERO = Decimal("0")
SECONDS_PER_DAY = 86400.0
STALLED_LIST_SIZE = 20
TREND_MONTHS = 12


# --- scope and period ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DashboardScope:
    """The owners whose records a dashboard counts. `owner_ids` None means everyone (an admin, unfiltered)."""

    owner_ids: frozenset[int] | None
    team: Team | None = None
    rep: User | None = None

    def q(self, owner_field: str = "owner") -> Q:
        if self.owner_ids is None:
            return Q()
        return Q(**{f"{owner_field}_id__in": sorted(self.owner_ids)})


def dashboard_scope(*, user: User, team_id: int | None = None, rep_id: int | None = None) -> DashboardScope:
    """The scope rule (accounts.scope) narrowed by the page's filters.

    A manager sees their team subtree, an admin everyone, a rep themselves. A team outside the user's
    teams, or a rep outside their scope (or outside the chosen team), is a 404: filters never widen.
    """
    base = managed_user_ids(user)
    ids: set[int] | None = None if base is None else set(base)
    team = rep = None
    if team_id is not None:
        allowed = user_team_ids(user)
        if allowed is not None and team_id not in allowed:
            raise Http404("team")
        team = Team.objects.filter(pk=team_id).first()
        if team is None:
            raise Http404("team")
        members = set(User.objects.filter(team_id__in=team_subtree_ids({team_id})).values_list("id", flat=True))
        ids = members if ids is None else ids & members
    if rep_id is not None:
        if ids is not None and rep_id not in ids:
            raise Http404("rep")
        rep = User.objects.filter(pk=rep_id).first()
        if rep is None:
            raise Http404("rep")
        ids = {rep_id}
    return DashboardScope(owner_ids=None if ids is None else frozenset(ids), team=team, rep=rep)


def scope_users(scope: DashboardScope) -> list[User]:
    """The active users of the scope, by name (the rows of the per-rep tables). Admins unfiltered: every
    active user who is not an admin."""
    qs = User.objects.filter(is_active=True).select_related("team")
    if scope.owner_ids is None:
        qs = qs.exclude(role="admin")
    else:
        qs = qs.filter(pk__in=sorted(scope.owner_ids))
    return list(qs.order_by("team__name", "first_name", "last_name", "username"))


@dataclass(frozen=True)
class Period:
    """Local dates [start, end) in the configured time zone."""

    start: date
    end: date
    kind: str = "custom"

    @property
    def start_dt(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def end_dt(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.end, time.min))

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def dt_q(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self.start_dt, f"{field_name}__lt": self.end_dt})

    def date_q(self, field_name: str) -> Q:
        return Q(**{f"{field_name}__gte": self.start, f"{field_name}__lt": self.end})


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_for(kind: str, *, today: date | None = None, start: date | None = None, end: date | None = None) -> Period:
    """This week (Monday..Sunday), this month, this quarter, or a custom range of days (both inclusive)."""
    today = today or timezone.localdate()
    if kind == "week":
        first = today - timedelta(days=today.weekday())
        return Period(first, first + timedelta(days=7), "week")
    if kind == "quarter":
        first = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return Period(first, add_months(first, 3), "quarter")
    if kind == "custom" and start and end and start <= end:
        return Period(start, end + timedelta(days=1), "custom")
    first = month_start(today)
    return Period(first, add_months(first, 1), "month")


def _summaries() -> bool:
    """Whether to read the summary tables (PostgreSQL, triggers installed for this time zone)."""
    return rollups.ready()


def _day_q(period: Period, field_name: str = "day") -> Q:
    return Q(**{f"{field_name}__gte": period.start, f"{field_name}__lt": period.end})


def _month_split(period: Period) -> tuple[Period | None, list[Period]]:
    """The whole local months inside the period (a Period from the first to the end of the last, or None)
    and the days before and after them (0, 1 or 2 Periods): month summaries serve the first, day summaries
    (or, for the sales cycle, the source rows) the others."""
    first = period.start if period.start.day == 1 else add_months(month_start(period.start), 1)
    end = month_start(period.end)
    if first >= end:
        return None, [period]
    edges = [p for p in (Period(period.start, first), Period(end, period.end)) if p.start < p.end]
    return Period(first, end), edges


def _month_and_day_rows(month_qs: Any, day_qs: Any, period: Period, *values: str, **sums: Any) -> list[dict]:
    """Rows of a month summary for the period's whole months and of its day summary for the days around
    them, each grouped by `values` with the aggregates `sums` (the caller adds the rows up)."""
    months, edges = _month_split(period)
    parts = [month_qs.filter(_day_q(months, "month"))] if months is not None else []
    parts += [day_qs.filter(_day_q(edge)) for edge in edges]
    return [row for qs in parts for row in qs.order_by().values(*values).annotate(**sums)]


def _bucket(seconds: Any) -> Func:
    """The duration histogram's bucket of a number of seconds (SQL function `dashboards_bucket`)."""
    return Func(seconds, function="dashboards_bucket", output_field=FloatField())


def _histogram_figures(rows: list[tuple[int, int, int]]) -> dict[str, Any]:
    """`count`, `average`, `median` and `p75` in days from (bucket, count, seconds) histogram rows."""
    count = sum(n for _, n, _ in rows)
    if not count:
        return {"count": 0, "median": None, "p75": None, "average": None}
    median = rollups.histogram_percentile(rows, 0.5)
    p75 = rollups.histogram_percentile(rows, 0.75)
    return {"count": count, "median": median / SECONDS_PER_DAY, "p75": p75 / SECONDS_PER_DAY,
            "average": sum(s for _, _, s in rows) / count / SECONDS_PER_DAY}


def _days(expression: Any) -> Func:
    """An interval expression as fractional days (EXTRACT(EPOCH ...) / 86400)."""
    return Func(expression, template="(EXTRACT(EPOCH FROM (%(expressions)s)) / 86400.0)", output_field=FloatField())


class PercentileCont(Aggregate):
    """PostgreSQL `percentile_cont(p) WITHIN GROUP (ORDER BY expr)` (continuous: interpolates)."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, percentile: float, **extra: Any) -> None:
        super().__init__(expression, percentile=float(percentile), **extra)


def _weighted() -> ExpressionWrapper:
    return ExpressionWrapper(
        F("amount") * F("probability") / Decimal(100), output_field=DecimalField(max_digits=24, decimal_places=4)
    )


def _ratio(part: int | float | None, whole: int | float | None) -> float | None:
    return None if not whole or part is None else part / whole


def _stages(pipeline: Pipeline) -> list[Stage]:
    """The pipeline's stage path (opportunities.selectors.pipeline_stages), read once per pipeline object."""
    cached = getattr(pipeline, "_dashboard_stages", None)
    if cached is None:
        cached = pipeline_stages(pipeline)
        pipeline._dashboard_stages = cached  # type: ignore[attr-defined]
    return cached


def default_pipeline() -> Pipeline:
    from opportunities.selectors import pipeline_get

    return pipeline_get(None)


# --- pipeline and forecast ----------------------------------------------------------------------------
@dataclass
class StageRow:
    stage: Stage
    count: int = 0
    amount: Decimal = ZERO
    weighted: Decimal = ZERO


def pipeline_by_stage(*, scope: DashboardScope, pipeline: Pipeline) -> list[StageRow]:
    """Open deals right now, per open stage of the pipeline: how many, their amount, and their weighted
    amount (Σ amount × probability / 100, the deal's own probability). A snapshot: not period-bound."""
    stages = [s for s in _stages(pipeline) if s.is_open]
    if _summaries():  # the board's trigger-maintained totals per stage and owner
        rows = (
            StageOwnerTotal.objects.filter(scope.q(), stage_id__in=[s.pk for s in stages])
            .order_by()
            .values("stage_id")
            .annotate(n=Sum("opportunity_count"), total=Sum("amount_sum"), weighted_total=Sum("weighted_sum"))
        )
    else:
        rows = (
            Opportunity.objects.filter(scope.q(), pipeline=pipeline, closed_at__isnull=True)
            .order_by()
            .values("stage_id")
            .annotate(n=Count("pk"), total=Sum("amount"), weighted_total=Sum(_weighted()))
        )
    by_stage = {r["stage_id"]: r for r in rows}
    result = []
    for stage in stages:
        r = by_stage.get(stage.pk, {})
        result.append(
            StageRow(stage, r.get("n", 0), r.get("total") or ZERO,
                     (r.get("weighted_total") or ZERO).quantize(Decimal("0.01")))
        )
    return result


def forecast(*, scope: DashboardScope, period: Period) -> dict[str, Any]:
    """The forecast of the period, over every pipeline:

    - `won`: amount of deals won in the period (closed_at in the period, now in a won stage);
    - `open_count`, `open_amount`: open deals whose expected close date falls in the period;
    - `weighted`: Σ amount × probability / 100 of those open deals;
    - `commit`: Σ amount of those open deals whose probability is at least the admin-set commit
      probability (DashboardSettings.commit_probability);
    - `commit_probability`: that threshold.
    """
    threshold = DashboardSettings.load().commit_probability
    if _summaries():
        won = DealWonDay.objects.filter(scope.q(), _day_q(period)).aggregate(total=Sum("amount"))
        agg = DealOpenCloseDay.objects.filter(scope.q(), _day_q(period)).aggregate(
            open_n=Sum("deals"), open_total=Sum("amount"),
            weighted_total=Sum(ExpressionWrapper(F("amount") * F("probability") / Decimal(100),
                                                 output_field=DecimalField(max_digits=24, decimal_places=4))),
            commit_total=Sum("amount", filter=Q(probability__gte=threshold)),
        )
        agg["won_total"] = won["total"]
        agg["open_n"] = agg["open_n"] or 0
    else:
        agg = _forecast_rows(scope=scope, period=period, threshold=threshold)
    return {
        "won": agg["won_total"] or ZERO,
        "open_count": agg["open_n"],
        "open_amount": agg["open_total"] or ZERO,
        "weighted": (agg["weighted_total"] or ZERO).quantize(Decimal("0.01")),
        "commit": agg["commit_total"] or ZERO,
        "commit_probability": threshold,
    }


def _forecast_rows(*, scope: DashboardScope, period: Period, threshold: int) -> dict[str, Any]:
    qs = Opportunity.objects.filter(scope.q())
    open_q = Q(closed_at__isnull=True) & period.date_q("expected_close_date")
    won_q = Q(stage__kind=StageKind.WON) & period.dt_q("closed_at")
    agg = qs.filter(open_q | won_q).aggregate(
        won_total=Sum("amount", filter=won_q),
        open_n=Count("pk", filter=open_q),
        open_total=Sum("amount", filter=open_q),
        weighted_total=Sum(_weighted(), filter=open_q),
        commit_total=Sum("amount", filter=open_q & Q(probability__gte=threshold)),
    )
    return agg


# --- conversion funnel --------------------------------------------------------------------------------
@dataclass
class FunnelStep:
    stage: Stage
    reached: int
    share: float | None  # of the cohort
    from_previous: float | None  # conversion from the previous step


@dataclass
class Funnel:
    key: Any  # None for the whole cohort, a source code or a user id
    label: str
    created: int
    won: int
    lost: int
    steps: list[FunnelStep] = field(default_factory=list)

    @property
    def win_rate(self) -> float | None:
        return _ratio(self.won, self.won + self.lost)


def _funnel_counts(*, scope: DashboardScope, period: Period, pipeline: Pipeline) -> tuple[list[dict], list[dict]]:
    """The cohort's sizes and stage reaches per (owner, source): two queries, shared by the three funnels.

    Every deal has one owner and one source, so these finest groups add up to the totals per source,
    per owner and overall (a deal is counted once per stage within its group: DISTINCT first)."""
    cached = getattr(pipeline, "_dashboard_funnel_counts", None)
    key = (scope, period)
    if cached is not None and cached[0] == key:
        return cached[1]
    if _summaries():
        sizes = list(
            DealCohortDay.objects.filter(scope.q(), _day_q(period), pipeline=pipeline)
            .order_by().values("owner_id", "source")
            .annotate(n=Sum("created"), won=Sum("won"), lost=Sum("lost"))
        )
        reached = _month_and_day_rows(
            DealReachMonth.objects.filter(scope.q(), pipeline=pipeline),
            DealReachDay.objects.filter(scope.q(), pipeline=pipeline),
            period, "owner_id", "source", "stage_id", n=Sum("reached"),
        )
        for r in reached:
            r["to_stage_id"] = r.pop("stage_id")
    else:
        sizes = list(
            _cohort(scope=scope, period=period, pipeline=pipeline).order_by().values("owner_id", "source").annotate(
                n=Count("pk"),
                won=Count("pk", filter=Q(stage__kind=StageKind.WON)),
                lost=Count("pk", filter=Q(stage__kind=StageKind.LOST)),
            )
        )
        reached = _reached_rows(scope=scope, period=period, pipeline=pipeline)
    pipeline._dashboard_funnel_counts = (key, (sizes, reached))  # type: ignore[attr-defined]
    return sizes, reached


def _cohort(*, scope: DashboardScope, period: Period, pipeline: Pipeline):
    return Opportunity.objects.filter(scope.q(), period.dt_q("created_at"), pipeline=pipeline)


def _reached_rows(*, scope: DashboardScope, period: Period, pipeline: Pipeline) -> list[dict]:
    """Per (owner, source, stage): deals of the period's cohort that ever entered the stage."""
    rows = list(
        StageChange.objects.filter(opportunity__in=_cohort(scope=scope, period=period, pipeline=pipeline).values("pk"))
        .order_by().values("opportunity__owner_id", "opportunity__source", "to_stage_id")
        .annotate(n=Count("opportunity_id", distinct=True))
    )
    for r in rows:
        r["owner_id"], r["source"] = r.pop("opportunity__owner_id"), r.pop("opportunity__source")
    return rows


def _funnels(*, scope: DashboardScope, period: Period, pipeline: Pipeline, group: str | None) -> dict[Any, Funnel]:
    stages = [s for s in _stages(pipeline) if not s.is_lost]
    size_rows, reached_rows = _funnel_counts(scope=scope, period=period, pipeline=pipeline)
    sizes: dict[Any, dict[str, int]] = {}
    for r in size_rows:
        total = sizes.setdefault(r[group] if group else None, {"n": 0, "won": 0, "lost": 0})
        for k in ("n", "won", "lost"):
            total[k] += r[k]
    reached: dict[tuple[Any, int], int] = {}
    for r in reached_rows:
        k = (r[group] if group else None, r["to_stage_id"])
        reached[k] = reached.get(k, 0) + r["n"]
    result: dict[Any, Funnel] = {}
    for key, size in sizes.items():
        if not size["n"]:
            continue
        funnel = Funnel(key=key, label="", created=size["n"], won=size["won"], lost=size["lost"])
        previous = None
        for stage in stages:
            n = reached.get((key, stage.pk), 0)
            funnel.steps.append(FunnelStep(stage, n, _ratio(n, funnel.created), _ratio(n, previous) if previous is not None else None))
            previous = n
        result[key] = funnel
    return result


def conversion_funnel(*, scope: DashboardScope, period: Period, pipeline: Pipeline) -> Funnel:
    """The cohort: opportunities of the pipeline created in the period (scope by owner).

    - a deal *reached* a stage if it ever entered it (a StageChange row into the stage: the creation
      row counts for the first stage); a deal counted once per stage however often it moved back and
      forth or was reopened; a deal won straight from an early stage did not reach the stages between;
    - `share` = reached / cohort size; `from_previous` = reached / reached of the previous stage;
    - `win_rate` = deals of the cohort now won / deals of the cohort now closed (won or lost);
      a reopened deal counts by its current stage.
    """
    funnels = _funnels(scope=scope, period=period, pipeline=pipeline, group=None)
    if None in funnels:
        return funnels[None]
    stages = [s for s in _stages(pipeline) if not s.is_lost]
    return Funnel(None, "", 0, 0, 0, [FunnelStep(s, 0, None, None) for s in stages])


def conversion_by_source(*, scope: DashboardScope, period: Period, pipeline: Pipeline) -> list[Funnel]:
    """The funnel of `conversion_funnel`, per lead source of the opportunity (blank: "no source")."""
    from opportunities.models import Source

    labels = dict(Source.choices)
    funnels = _funnels(scope=scope, period=period, pipeline=pipeline, group="source")
    for key, funnel in funnels.items():
        funnel.label = str(labels.get(key, key)) if key else "—"
    return sorted(funnels.values(), key=lambda f: (-f.created, f.label))


def conversion_by_rep(*, scope: DashboardScope, period: Period, pipeline: Pipeline) -> list[Funnel]:
    """The funnel of `conversion_funnel`, per owner of the opportunity."""
    funnels = _funnels(scope=scope, period=period, pipeline=pipeline, group="owner_id")
    users = {u.pk: u for u in User.objects.filter(pk__in=list(funnels))}
    for key, funnel in funnels.items():
        funnel.label = users[key].display_name if key in users else str(key)
    return sorted(funnels.values(), key=lambda f: (-f.created, f.label))


# --- sales cycle, time in stage -----------------------------------------------------------------------
def sales_cycle(*, scope: DashboardScope, period: Period) -> dict[str, Any]:
    """Days from creation to won of the deals won in the period (closed_at in the period, now won):
    `count`, `median` and `p75` (PostgreSQL percentile_cont, interpolated; from the summaries: estimated
    from the histogram), `average`. None without deals."""
    if _summaries():
        months, edges = _month_split(period)
        rows: list[tuple[int, int, int]] = []
        if months is not None:
            rows += CycleMonth.objects.filter(scope.q(), _day_q(months, "month")).order_by().values("bucket") \
                .annotate(n=Sum("deals"), s=Sum("seconds")).values_list("bucket", "n", "s")
        for edge in edges:
            rows += _won(scope=scope, period=edge).annotate(bucket=_bucket(_seconds(F("closed_at") - F("created_at")))) \
                .order_by().values("bucket").annotate(n=Count("pk"), s=Sum(_seconds(F("closed_at") - F("created_at")))) \
                .values_list("bucket", "n", "s")
        return _histogram_figures([(b, n, int(s)) for b, n, s in rows])
    if connection.vendor != "postgresql":  # SQLite (`make run`): the demo's few deals, in Python
        return _exact_figures([(closed - created).total_seconds() / SECONDS_PER_DAY for created, closed
                               in _won(scope=scope, period=period).values_list("created_at", "closed_at")])
    days = _days(F("closed_at") - F("created_at"))
    return _won(scope=scope, period=period).aggregate(
        count=Count("pk"), median=PercentileCont(days, 0.5), p75=PercentileCont(days, 0.75), average=Avg(days)
    )


def _exact_figures(days: list[float]) -> dict[str, Any]:
    """`count`, `average`, `median` and `p75` as percentile_cont computes them, for databases without it."""
    ordered = sorted(days)

    def percentile(p: float) -> float | None:
        if not ordered:
            return None
        position = p * (len(ordered) - 1)
        low, high = int(position), min(int(position) + 1, len(ordered) - 1)
        return ordered[low] + (position - low) * (ordered[high] - ordered[low])

    return {"count": len(ordered), "median": percentile(0.5), "p75": percentile(0.75),
            "average": sum(ordered) / len(ordered) if ordered else None}


def _won(*, scope: DashboardScope, period: Period):
    return Opportunity.objects.filter(scope.q(), period.dt_q("closed_at"), stage__kind=StageKind.WON)


def _seconds(expression: Any) -> Func:
    """An interval expression as whole seconds (as the summaries keep them)."""
    return Func(expression, template="ROUND(EXTRACT(EPOCH FROM (%(expressions)s)))", output_field=FloatField())


def sales_cycle_trend(*, scope: DashboardScope, until: date, months: int = TREND_MONTHS) -> list[dict[str, Any]]:
    """`sales_cycle` per calendar month (local time zone) for the `months` months ending with the month
    of `until`; months without won deals have count 0 and no median."""
    first = add_months(month_start(until), -(months - 1))
    period = Period(first, add_months(month_start(until), 1))
    if _summaries():
        histograms: dict[date, list[tuple[int, int, int]]] = {}
        for month, bucket, n, seconds in (
            CycleMonth.objects.filter(scope.q(), _day_q(period, "month")).order_by().values("month", "bucket")
            .annotate(n=Sum("deals"), s=Sum("seconds")).values_list("month", "bucket", "n", "s")
        ):
            histograms.setdefault(month, []).append((bucket, n, seconds))
        result = []
        for i in range(months):
            m = add_months(first, i)
            figures = _histogram_figures(histograms.get(m, []))
            result.append({"month": m, "count": figures["count"], "median": figures["median"], "p75": figures["p75"]})
        return result
    if connection.vendor != "postgresql":  # SQLite (`make run`): the demo's few deals, in Python
        durations: dict[date, list[float]] = {}
        for created, closed in _won(scope=scope, period=period).values_list("created_at", "closed_at"):
            month = month_start(timezone.localtime(closed).date())
            durations.setdefault(month, []).append((closed - created).total_seconds() / SECONDS_PER_DAY)
        return [{"month": m, **{k: v for k, v in _exact_figures(durations.get(m, [])).items() if k != "average"}}
                for m in (add_months(first, i) for i in range(months))]
    days = _days(F("closed_at") - F("created_at"))
    rows = (
        Opportunity.objects.filter(scope.q(), period.dt_q("closed_at"), stage__kind=StageKind.WON)
        .annotate(month=TruncMonth("closed_at"))
        .order_by()
        .values("month")
        .annotate(count=Count("pk"), median=PercentileCont(days, 0.5), p75=PercentileCont(days, 0.75))
    )
    by_month = {timezone.localtime(r["month"]).date() if isinstance(r["month"], datetime) else r["month"]: r for r in rows}
    result = []
    for i in range(months):
        m = add_months(first, i)
        r = by_month.get(m, {})
        result.append({"month": m, "count": r.get("count", 0), "median": r.get("median"), "p75": r.get("p75")})
    return result


@dataclass
class StageTime:
    stage: Stage
    moves: int = 0
    average: float | None = None
    median: float | None = None


def time_in_stage(*, scope: DashboardScope, period: Period, pipeline: Pipeline) -> list[StageTime]:
    """Days spent in each open stage of the pipeline, from the StageChange rows of moves *out of* the
    stage in the period (forward, back, won, lost): `moves`, `average` and `median` of
    seconds_in_previous_stage / 86400. A deal that went through a stage twice counts twice."""
    stages = [s for s in _stages(pipeline) if s.is_open]
    if _summaries():
        histograms: dict[int, list[tuple[int, int, int]]] = {}
        stage_ids = [s.pk for s in stages]
        for r in _month_and_day_rows(
            StageExitMonth.objects.filter(scope.q(), stage_id__in=stage_ids),
            StageExitDay.objects.filter(scope.q(), stage_id__in=stage_ids),
            period, "stage_id", "bucket", n=Sum("moves"), s=Sum("seconds"),
        ):
            histograms.setdefault(r["stage_id"], []).append((r["bucket"], r["n"], int(r["s"])))
        times = []
        for stage in stages:
            figures = _histogram_figures(histograms.get(stage.pk, []))
            times.append(StageTime(stage, figures["count"], figures["average"], figures["median"]))
        return times
    if connection.vendor != "postgresql":  # SQLite (`make run`): the demo's few moves, in Python
        spent: dict[int, list[float]] = {}
        for stage_id, seconds in _exits(scope=scope, period=period, stages=stages).values_list(
            "from_stage_id", "seconds_in_previous_stage"
        ):
            spent.setdefault(stage_id, []).append(seconds / SECONDS_PER_DAY)
        exact = {stage.pk: _exact_figures(spent.get(stage.pk, [])) for stage in stages}
        return [StageTime(s, exact[s.pk]["count"], exact[s.pk]["average"], exact[s.pk]["median"]) for s in stages]
    days = F("seconds_in_previous_stage") / SECONDS_PER_DAY
    rows = (
        _exits(scope=scope, period=period, stages=stages)
        .order_by()
        .values("from_stage_id")
        .annotate(n=Count("pk"), average=Avg(days, output_field=FloatField()), median=PercentileCont(days, 0.5))
    )
    by_stage = {r["from_stage_id"]: r for r in rows}
    return [
        StageTime(s, by_stage.get(s.pk, {}).get("n", 0), by_stage.get(s.pk, {}).get("average"),
                  by_stage.get(s.pk, {}).get("median"))
        for s in stages
    ]


def _exits(*, scope: DashboardScope, period: Period, stages: list[Stage]):
    return StageChange.objects.filter(
        scope.q("opportunity__owner"), period.dt_q("changed_at"),
        from_stage__in=[s.pk for s in stages], seconds_in_previous_stage__isnull=False,
    )


def bottleneck(times: list[StageTime]) -> StageTime | None:
    """The stage where deals stall most: the highest median days in stage (of `time_in_stage`), the
    earlier stage on a tie; None when no deal left any stage in the period."""
    candidates = [t for t in times if t.median is not None]
    if not candidates:
        return None
    return max(candidates, key=lambda t: (t.median, -t.stage.order, -t.stage.pk))


def stalled_deals(*, scope: DashboardScope, limit: int = STALLED_LIST_SIZE) -> list[Opportunity]:
    """Open deals flagged stalled (past their stage's time limit, set by the stall scan), longest first."""
    return list(
        Opportunity.objects.filter(scope.q(), closed_at__isnull=True, stalled_since__isnull=False)
        .select_related("customer", "owner", "stage")
        .order_by("stalled_since", "id")[:limit]
    )


# --- activities ---------------------------------------------------------------------------------------
def activity_stats(*, scope: DashboardScope, period: Period) -> list[dict[str, Any]]:
    """Per owner and activity kind: `planned` = activities planned for the period (planned_at in the
    period, not cancelled, whatever their status now), `done` = activities done in the period (done_at in
    the period). Rows only for owner/kind pairs with at least one of them."""
    if _summaries():
        return list(
            ActivityDay.objects.filter(scope.q(), _day_q(period))
            .order_by()
            .values("owner_id", "kind_id", "kind__code", "kind__name", "kind__name_en")
            .annotate(planned=Sum("planned"), done=Sum("done"))
            .filter(Q(planned__gt=0) | Q(done__gt=0))
            .order_by("owner_id", "kind_id")
        )
    planned_q = period.dt_q("planned_at") & ~Q(status=ActivityStatus.CANCELLED)
    done_q = Q(status=ActivityStatus.DONE) & period.dt_q("done_at")
    return list(
        Activity.objects.filter(scope.q(), planned_q | done_q)
        .order_by()
        .values("owner_id", "kind_id", "kind__code", "kind__name", "kind__name_en")
        .annotate(planned=Count("pk", filter=planned_q), done=Count("pk", filter=done_q))
        .order_by("owner_id", "kind_id")
    )


def overdue_follow_ups(*, scope: DashboardScope, now: datetime | None = None) -> dict[int, int]:
    """Per owner: planned activities whose deadline (due_at, else planned_at) has passed. A snapshot.
    From the summaries: the days before today, and today's activities due before `now`."""
    now = now or timezone.now()
    overdue = Activity.objects.filter(scope.q(), status=ActivityStatus.PLANNED).annotate(
        deadline=Coalesce("due_at", "planned_at")
    )
    result: dict[int, int] = {}
    if _summaries():
        today = timezone.localdate(now)
        for r in ActivityDueDay.objects.filter(scope.q(), day__lt=today).order_by().values("owner_id") \
                .annotate(n=Sum("planned")).filter(n__gt=0):
            result[r["owner_id"]] = r["n"]
        overdue = overdue.filter(deadline__gte=timezone.make_aware(datetime.combine(today, time.min)))
    for r in overdue.filter(deadline__lt=now).order_by().values("owner_id").annotate(n=Count("pk")):
        result[r["owner_id"]] = result.get(r["owner_id"], 0) + r["n"]
    return result


# --- revenue and customers ----------------------------------------------------------------------------
def revenue_trend(*, scope: DashboardScope, until: date, months: int = TREND_MONTHS) -> list[dict[str, Any]]:
    """Per calendar month, for the `months` months ending with the month of `until`:
    `signed` = Σ total of contracts signed that month (signed_on, whatever happened to them after);
    `collected` = Σ payment receipts received that month (received_on), by the contract's owner.
    Both are local dates, so the month boundary is the configured time zone's."""
    first = add_months(month_start(until), -(months - 1))
    period = Period(first, add_months(month_start(until), 1))
    if _summaries():
        by_month = {
            r["month"]: r for r in RevenueDay.objects.filter(scope.q(), _day_q(period))
            .annotate(month=TruncMonth("day")).order_by().values("month")
            .annotate(signed=Sum("signed"), collected=Sum("collected"))
        }
        return [
            {"month": m, "signed": by_month.get(m, {}).get("signed") or ZERO,
             "collected": by_month.get(m, {}).get("collected") or ZERO}
            for m in (add_months(first, i) for i in range(months))
        ]
    signed = (
        Contract.objects.filter(scope.q(), period.date_q("signed_on"))
        .annotate(month=TruncMonth("signed_on"))
        .order_by()
        .values("month")
        .annotate(total=Sum("total_amount"))
    )
    collected = (
        PaymentReceipt.objects.filter(scope.q("contract__owner"), period.date_q("received_on"))
        .annotate(month=TruncMonth("received_on"))
        .order_by()
        .values("month")
        .annotate(total=Sum("amount"))
    )
    signed_by = {r["month"]: r["total"] for r in signed}
    collected_by = {r["month"]: r["total"] for r in collected}
    return [
        {"month": m, "signed": signed_by.get(m) or ZERO, "collected": collected_by.get(m) or ZERO}
        for m in (add_months(first, i) for i in range(months))
    ]


def tier_distribution(*, scope: DashboardScope) -> list[dict[str, Any]]:
    """Customers owned by the scope's users per tier (A, B, C), with their share. Unowned pool customers
    count only for an unfiltered admin. A snapshot."""
    if _summaries():
        rows = CustomerTierTotal.objects.filter(scope.q()).order_by().values("tier").annotate(n=Sum("customers"))
    else:
        rows = Customer.objects.filter(scope.q()).order_by().values("tier").annotate(n=Count("pk"))
    counts = {r["tier"]: r["n"] for r in rows}
    total = sum(counts.values())
    return [{"tier": value, "label": label, "count": counts.get(value, 0), "share": _ratio(counts.get(value, 0), total)}
            for value, label in Tier.choices]


def tier_movement(*, scope: DashboardScope, period: Period) -> list[dict[str, Any]]:
    """Customers of the scope (by current owner) whose tier changed during the period: the tier of the
    last history record before the period's start (None: the customer did not exist yet) against the
    tier of the last record before its end; one row per (from, to) pair with the number of customers.
    From the customer history (django-simple-history), aggregated in one query; from the summaries, the
    tier changes of the period (CustomerTierChange, derived from the same history rows): the "from" of a
    customer's first change in the period is its tier before, the "to" of its last its tier after."""
    if _summaries():
        return _tier_movement_from_changes(scope=scope, period=period)
    history_model = Customer.history.model
    history = history_model.objects.filter(id=OuterRef("pk")).order_by("-history_date", "-history_id")
    # a customer without a history row inside the period has the same last row before its start and its
    # end: only the customers changed in the period (index on history_date) are looked at
    changed = history_model.objects.filter(period.dt_q("history_date")).values("id")
    rows = (
        Customer.objects.filter(scope.q(), created_at__lt=period.end_dt, pk__in=changed)
        .annotate(
            tier_before=Subquery(history.filter(history_date__lt=period.start_dt).values("tier")[:1]),
            tier_after=Subquery(history.filter(history_date__lt=period.end_dt).values("tier")[:1]),
        )
        .exclude(tier_after__isnull=True)
        .filter(Q(tier_before__isnull=True) | ~Q(tier_before=F("tier_after")))
        .order_by()
        .values("tier_before", "tier_after")
        .annotate(n=Count("pk"))
        .order_by("tier_before", "tier_after")
    )
    return list(rows)


def _tier_movement_from_changes(*, scope: DashboardScope, period: Period) -> list[dict[str, Any]]:
    customers = Customer.objects.filter(scope.q(), created_at__lt=period.end_dt).values("pk")
    changes = CustomerTierChange.objects.filter(period.dt_q("changed_at"), customer__in=customers)
    # per customer: (first change's from, last change's to), then grouped by the pair, in one query
    inner, params = changes.values("customer_id", "from_tier", "to_tier", "changed_at", "id").query.sql_with_params()
    # the inner query is the ORM's, with its parameters
    query = (
        "SELECT before, after, count(*) FROM ("
        " SELECT (array_agg(c.from_tier ORDER BY c.changed_at, c.id))[1] AS before,"
        "        (array_agg(c.to_tier ORDER BY c.changed_at DESC, c.id DESC))[1] AS after"
        f" FROM ({inner}) c GROUP BY c.customer_id"  # nosec B608
        ") m WHERE before IS DISTINCT FROM after GROUP BY before, after ORDER BY before, after"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return [{"tier_before": b, "tier_after": a, "n": n} for b, a, n in cursor.fetchall()]


def aftersales_summary(*, user: User, scope: DashboardScope, period: Period) -> dict[str, Any]:
    """After-sales of the scope (definitions in aftersales.selectors): tickets resolved in the period,
    SLA compliance (resolved without a breach / resolved), CSAT average of surveys answered in the period,
    and the repurchase rate of the scope's customers (signed contracts up to the period's last day)."""
    from aftersales.selectors import rep_service_stats

    reps = rep_service_stats(user=user, since=period.start_dt, until=period.end_dt)
    if scope.owner_ids is not None:
        reps = reps.filter(pk__in=sorted(scope.owner_ids))
    agg = reps.aggregate(
        handled_sum=Coalesce(Sum("tickets_handled"), 0),
        within_sum=Coalesce(Sum("tickets_within_sla"), 0),
        csat_weighted=Sum(F("csat_avg") * F("csat_count"), output_field=FloatField()),
        csat_n=Coalesce(Sum("csat_count"), 0),
    )
    repeat = repurchase(scope=scope, until=period.last_day)
    return {
        "tickets_handled": agg["handled_sum"],
        "sla_compliance": _ratio(agg["within_sum"], agg["handled_sum"]),
        "csat_avg": _ratio(agg["csat_weighted"], agg["csat_n"]),
        "csat_count": agg["csat_n"],
        "repurchase_rate": repeat.get("repurchase_rate"),
        "customers_purchasing": repeat.get("customers_purchasing"),
    }


def repurchase(*, scope: DashboardScope, until: date) -> dict[str, Any]:
    """The repurchase rate of `aftersales.selectors.repeat_purchase_stats` (customers of the scope with a
    second signed contract up to `until` / those with one), without the purchase gaps the dashboard does
    not show: one query over the signed contracts grouped by customer; from the summaries, over the
    customers' first and second signing dates (CustomerPurchase)."""
    if _summaries():
        agg = CustomerPurchase.objects.filter(scope.q(), first_on__lte=until).aggregate(
            purchasing=Count("first_on"), repurchasing=Count("second_on", filter=Q(second_on__lte=until))
        )
        return {"customers_purchasing": agg["purchasing"], "customers_repurchasing": agg["repurchasing"],
                "repurchase_rate": _ratio(agg["repurchasing"], agg["purchasing"])}
    contracts = Contract.objects.filter(signed_on__isnull=False, signed_on__lte=until)
    if scope.owner_ids is not None:
        contracts = contracts.filter(customer__in=Customer.objects.filter(scope.q()).values("pk"))
    agg = contracts.order_by().values("customer_id").annotate(n=Count("pk")).aggregate(
        purchasing=Count("customer_id"), repurchasing=Count("customer_id", filter=Q(n__gte=2))
    )
    return {"customers_purchasing": agg["purchasing"], "customers_repurchasing": agg["repurchasing"],
            "repurchase_rate": _ratio(agg["repurchasing"], agg["purchasing"])}


# --- targets ------------------------------------------------------------------------------------------
METRICS = ("signed_revenue", "collected", "new_customers", "won_deals", "calls", "visits")


def rep_actuals(*, scope: DashboardScope, period: Period) -> dict[int, dict[str, Any]]:
    """What each owner reached in the period, the measures of a Target:
    `signed_revenue` Σ total of contracts signed (signed_on in the period); `collected` Σ receipts
    received (received_on) on their contracts; `new_customers` customers created in the period now owned
    by them; `won_deals` deals won (closed_at in the period, now won); `calls` / `visits` activities of
    kind "call" / "visit" done in the period. Owners without any figure are absent (read as 0)."""
    result: dict[int, dict[str, Any]] = {}

    def put(rows: Any, key: str, owner_key: str = "owner_id") -> None:
        for r in rows:
            result.setdefault(r[owner_key], {})[key] = r["v"]

    if _summaries():
        revenue = RevenueDay.objects.filter(scope.q(), _day_q(period)).order_by().values("owner_id")
        put(revenue.annotate(v=Sum("signed")).exclude(v=0), "signed_revenue")
        put(revenue.annotate(v=Sum("collected")).exclude(v=0), "collected")
        put(CustomerDay.objects.filter(scope.q(), _day_q(period)).order_by().values("owner_id")
            .annotate(v=Sum("created")).filter(v__gt=0), "new_customers")
    else:
        put(Contract.objects.filter(scope.q(), period.date_q("signed_on")).order_by().values("owner_id")
            .annotate(v=Sum("total_amount")), "signed_revenue")
        put(PaymentReceipt.objects.filter(scope.q("contract__owner"), period.date_q("received_on")).order_by()
            .values("contract__owner_id").annotate(v=Sum("amount")), "collected", "contract__owner_id")
        put(Customer.objects.filter(scope.q(), period.dt_q("created_at")).order_by().values("owner_id")
            .annotate(v=Count("pk")), "new_customers")
    if _summaries():
        put(DealWonDay.objects.filter(scope.q(), _day_q(period)).order_by().values("owner_id")
            .annotate(v=Sum("won")).filter(v__gt=0), "won_deals")
        done = ActivityDay.objects.filter(scope.q(), _day_q(period), kind__code__in=["call", "visit"]).order_by() \
            .values("owner_id", "kind__code").annotate(v=Sum("done")).filter(v__gt=0)
    else:
        put(_won(scope=scope, period=period).order_by().values("owner_id").annotate(v=Count("pk")), "won_deals")
        done = Activity.objects.filter(
            scope.q(), period.dt_q("done_at"), status=ActivityStatus.DONE, kind__code__in=["call", "visit"]
        ).order_by().values("owner_id", "kind__code").annotate(v=Count("pk"))
    for r in done:
        result.setdefault(r["owner_id"], {})["calls" if r["kind__code"] == "call" else "visits"] = r["v"]
    return result


@dataclass
class Progress:
    metric: str
    target: Any
    actual: Any

    @property
    def ratio(self) -> float | None:
        """actual / target (None without a target)."""
        return _ratio(float(self.actual), float(self.target)) if self.target else None

    @property
    def percent(self) -> int | None:
        return None if self.ratio is None else round(self.ratio * 100)


@dataclass
class RepProgress:
    user: User | None  # None for the totals row
    metrics: list[Progress]


def target_progress(*, scope: DashboardScope, month: date, period: Period | None = None) -> tuple[list[RepProgress], RepProgress]:
    """Targets of the month vs actuals (`rep_actuals`) per rep of the scope, and the team totals (Σ of
    targets, Σ of actuals). The actuals are for `period` (default: the whole month)."""
    month = month_start(month)
    period = period or Period(month, add_months(month, 1))
    users = scope_users(scope)
    targets = {t.user_id: t for t in Target.objects.filter(scope.q("user"), month=month)}
    actuals = rep_actuals(scope=scope, period=period)
    rows = []
    totals = {m: [ZERO, ZERO] for m in METRICS}
    for user in users:
        target = targets.get(user.pk)
        actual = actuals.get(user.pk, {})
        metrics = []
        for m in METRICS:
            t = getattr(target, m) if target else ZERO
            a = actual.get(m) or 0
            totals[m][0] += t
            totals[m][1] += a
            metrics.append(Progress(m, t, a))
        rows.append(RepProgress(user, metrics))
    total_row = RepProgress(None, [Progress(m, totals[m][0], totals[m][1]) for m in METRICS])
    return rows, total_row


# --- the monthly review (定期复盘) ---------------------------------------------------------------------
def closed_deals(*, scope: DashboardScope, period: Period) -> dict[str, Any]:
    """Deals closed in the period (closed_at in the period) by their current stage: `won`, `lost`,
    `win_rate` = won / (won + lost) (None without closed deals)."""
    agg = Opportunity.objects.filter(scope.q(), period.dt_q("closed_at")).aggregate(
        won_n=Count("pk", filter=Q(stage__kind=StageKind.WON)), lost_n=Count("pk", filter=Q(stage__kind=StageKind.LOST))
    )
    return {"won": agg["won_n"], "lost": agg["lost_n"], "win_rate": _ratio(agg["won_n"], agg["won_n"] + agg["lost_n"])}


def monthly_review(*, scope: DashboardScope, month: date) -> dict[str, Any]:
    """The month against the previous month and against target, for the scope:

    - `metrics`: per target measure (`rep_actuals` summed over the scope): `current`, `previous`,
      `change` = (current − previous) / previous (None when previous is 0), `target` = Σ targets of the
      month, `progress` = current / target (None without target);
    - `closed`: `closed_deals` of both months; `cycle`: `sales_cycle` of both months;
    - `reps`, `total`: `target_progress` of the month.
    """
    month = month_start(month)
    current = Period(month, add_months(month, 1), "month")
    previous = Period(add_months(month, -1), month, "month")
    reps, total = target_progress(scope=scope, month=month, period=current)
    before = rep_actuals(scope=scope, period=previous)
    metrics = []
    for index, metric in enumerate(METRICS):
        now_value = total.metrics[index].actual
        then_value = sum((row.get(metric) or 0 for row in before.values()), 0)
        target = total.metrics[index].target
        metrics.append({
            "metric": metric, "current": now_value, "previous": then_value,
            "change": _ratio(float(now_value) - float(then_value), float(then_value)),
            "target": target, "progress": _ratio(float(now_value), float(target)),
        })
    return {
        "month": month, "previous_month": previous.start, "metrics": metrics, "reps": reps, "total": total,
        "closed": {"current": closed_deals(scope=scope, period=current), "previous": closed_deals(scope=scope, period=previous)},
        "cycle": {"current": sales_cycle(scope=scope, period=current), "previous": sales_cycle(scope=scope, period=previous)},
    }
