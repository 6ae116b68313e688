"""The dashboard as sections: each a table (header + rows) and a chart spec, built from the selectors.

The page renders every section's table and chart; the CSV export writes the same table, so what a user
downloads is exactly what they saw (and scoped the same way).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from accounts.models import User
from opportunities.models import Pipeline

from . import selectors as s


@dataclass
class Section:
    key: str
    title: str
    header: list[str]
    rows: list[list[Any]]
    chart: dict[str, Any] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)


def _days(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _month(value: Any) -> str:
    return date_format(value, "Y-m")


def _chart(kind: str, labels: list[str], datasets: list[tuple[str, list[Any]]]) -> dict[str, Any]:
    return {"type": kind, "labels": labels,
            "datasets": [{"label": label, "data": [_num(v) for v in data]} for label, data in datasets]}


GENERATION_KEY = "dashboards:generation"


def cached_sections_forget() -> None:
    """Drop every cached dashboard (after new targets: the manager who set them expects to see them)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:  # no generation yet
        cache.set(GENERATION_KEY, 1, None)


def cached_sections(
    *, user: User, scope: s.DashboardScope, period: s.Period, pipeline: Pipeline
) -> tuple[list[Section], datetime]:
    """`build_sections`, kept in the cache for settings.DASHBOARD_CACHE_SECONDS (0: always fresh), and
    the time the figures were computed. At 1,000,000 deals and 3,000,000 activities a team's sections
    take seconds of database time (about 45 aggregate queries); a manager who reloads the page, switches
    period or downloads a table's CSV gets the same figures from the cache. The key holds everything the
    figures depend on: the user (their scope), the scope's filters, the period, the pipeline, the language,
    and a generation that `cached_sections_forget` moves on."""
    seconds = settings.DASHBOARD_CACHE_SECONDS
    if not seconds:
        return build_sections(user=user, scope=scope, period=period, pipeline=pipeline), timezone.now()
    owners = "all" if scope.owner_ids is None else ",".join(map(str, sorted(scope.owner_ids)))
    raw = (f"{cache.get(GENERATION_KEY, 0)}|{user.pk}|{owners}|{getattr(scope.team, 'pk', '')}|{getattr(scope.rep, 'pk', '')}|"
           f"{period.start}|{period.end}|{pipeline.pk}|{get_language()}")
    key = "dashboards:sections:" + hashlib.sha256(raw.encode()).hexdigest()
    found = cache.get(key)
    if found is None:
        found = (build_sections(user=user, scope=scope, period=period, pipeline=pipeline), timezone.now())
        cache.set(key, found, seconds)
    return found


def build_sections(*, user: User, scope: s.DashboardScope, period: s.Period, pipeline: Pipeline) -> list[Section]:
    """Every section of the dashboard for `scope` and `period` (a fixed number of queries)."""
    sections: list[Section] = []
    users = {u.pk: u for u in s.scope_users(scope)}

    def name(user_id: int) -> str:
        u = users.get(user_id)
        return u.display_name if u else str(user_id)

    # targets vs actuals
    metric_labels = {
        "signed_revenue": _("Signed revenue"), "collected": _("Collected payments"), "new_customers": _("New customers"),
        "won_deals": _("Won deals"), "calls": _("Calls"), "visits": _("Visits"),
    }
    rows, total = s.target_progress(scope=scope, month=period.start, period=period)
    header = [_("Sales rep")]
    target_word, actual_word = _("target"), _("actual")
    for m in s.METRICS:
        header += [f"{metric_labels[m]} · {target_word}", f"{metric_labels[m]} · {actual_word}", f"{metric_labels[m]} · %"]
    table = []
    for r in [*rows, total]:
        line: list[Any] = [r.user.display_name if r.user else _("Team total")]
        for p in r.metrics:
            line += [p.target, p.actual, "" if p.percent is None else p.percent]
        table.append(line)
    sections.append(Section(
        "targets", _("Targets vs actuals"), header, table,
        _chart("bar", [r.user.display_name for r in rows],
               [(f"{metric_labels['signed_revenue']} %", [r.metrics[0].percent or 0 for r in rows]),
                (f"{metric_labels['collected']} %", [r.metrics[1].percent or 0 for r in rows])]),
        note=_("Targets of the month in which the period starts; actuals over the period."),
        extra={"reps": rows, "total": total, "labels": [metric_labels[m] for m in s.METRICS]},
    ))

    # pipeline and forecast
    stage_rows = s.pipeline_by_stage(scope=scope, pipeline=pipeline)
    sections.append(Section(
        "pipeline", _("Pipeline by stage"), [_("Stage"), _("Deals"), _("Amount"), _("Weighted amount")],
        [[r.stage.name, r.count, r.amount, r.weighted] for r in stage_rows],
        _chart("bar", [r.stage.name for r in stage_rows],
               [(_("Amount"), [r.amount for r in stage_rows]), (_("Weighted amount"), [r.weighted for r in stage_rows])]),
    ))
    f = s.forecast(scope=scope, period=period)
    sections.append(Section(
        "forecast", _("Forecast for the period"), [_("Measure"), _("Value")],
        [[_("Won"), f["won"]], [_("Open deals closing in the period"), f["open_count"]],
         [_("Their amount"), f["open_amount"]], [_("Weighted"), f["weighted"]],
         [_("Commit (probability at least %(p)s%%)") % {"p": f["commit_probability"]}, f["commit"]]],
        _chart("bar", [_("Won"), _("Commit"), _("Weighted")], [(_("Amount"), [f["won"], f["commit"], f["weighted"]])]),
    ))

    # funnel
    funnel = s.conversion_funnel(scope=scope, period=period, pipeline=pipeline)
    sections.append(Section(
        "funnel", _("Conversion funnel"), [_("Stage"), _("Reached"), _("Share of created"), _("From previous stage")],
        [[st.stage.name, st.reached, _pct(st.share), _pct(st.from_previous)] for st in funnel.steps]
        + [[_("Win rate (won / closed)"), funnel.won, _pct(funnel.win_rate), ""]],
        _chart("bar", [st.stage.name for st in funnel.steps], [(_("Reached"), [st.reached for st in funnel.steps])]),
        note=_("%(n)s opportunities created in the period.") % {"n": funnel.created},
    ))
    stage_names = [st.stage.name for st in funnel.steps]
    for key, title, funnels in (
        ("funnel_source", _("Conversion by lead source"), s.conversion_by_source(scope=scope, period=period, pipeline=pipeline)),
        ("funnel_rep", _("Conversion by rep"), s.conversion_by_rep(scope=scope, period=period, pipeline=pipeline)),
    ):
        sections.append(Section(
            key, title, [_("Group"), _("Created"), *stage_names, _("Win rate")],
            [[fu.label, fu.created, *[_pct(st.share) for st in fu.steps], _pct(fu.win_rate)] for fu in funnels],
            _chart("bar", [fu.label for fu in funnels], [(_("Win rate"), [(fu.win_rate or 0) * 100 for fu in funnels])]),
        ))

    # sales cycle
    cycle = s.sales_cycle(scope=scope, period=period)
    trend = s.sales_cycle_trend(scope=scope, until=period.last_day)
    sections.append(Section(
        "cycle", _("Sales cycle (days from creation to won)"), [_("Month"), _("Won deals"), _("Median"), _("75th percentile")],
        [[_month(r["month"]), r["count"], _days(r["median"]), _days(r["p75"])] for r in trend],
        _chart("line", [_month(r["month"]) for r in trend],
               [(_("Median"), [r["median"] for r in trend]), (_("75th percentile"), [r["p75"] for r in trend])]),
        note=_("In the period: %(n)s won, median %(m)s days, 75th percentile %(p)s days.")
        % {"n": cycle["count"], "m": _days(cycle["median"]) or "—", "p": _days(cycle["p75"]) or "—"},
    ))

    # time in stage
    times = s.time_in_stage(scope=scope, period=period, pipeline=pipeline)
    worst = s.bottleneck(times)
    sections.append(Section(
        "stages", _("Time in stage"), [_("Stage"), _("Moves out"), _("Average days"), _("Median days")],
        [[t.stage.name, t.moves, _days(t.average), _days(t.median)] for t in times],
        _chart("bar", [t.stage.name for t in times],
               [(_("Average days"), [t.average for t in times]), (_("Median days"), [t.median for t in times])]),
        note=(_("Bottleneck: %(stage)s") % {"stage": worst.stage.name}) if worst else _("No moves in the period."),
    ))
    stalled = s.stalled_deals(scope=scope)
    sections.append(Section(
        "stalled", _("Stalled deals"), [_("Opportunity"), _("Customer"), _("Owner"), _("Stage"), _("Stalled since"), _("Amount")],
        [[o.title, o.customer.name, o.owner.display_name, o.stage.name, o.stalled_since, o.amount] for o in stalled],
    ))

    # activities
    stats = s.activity_stats(scope=scope, period=period)
    overdue = s.overdue_follow_ups(scope=scope)
    english = (get_language() or "").startswith("en")
    act_rows = [[name(r["owner_id"]), (r["kind__name_en"] if english else "") or r["kind__name"], r["planned"], r["done"],
                 _pct(s._ratio(r["done"], r["planned"]))] for r in stats]
    sections.append(Section(
        "activities", _("Activities done vs planned"), [_("Sales rep"), _("Kind"), _("Planned"), _("Done"), _("Done / planned")],
        act_rows,
        _chart("bar", [f"{row[0]} · {row[1]}" for row in act_rows],
               [(_("Planned"), [row[2] for row in act_rows]), (_("Done"), [row[3] for row in act_rows])]),
    ))
    sections.append(Section(
        "overdue", _("Overdue follow-ups"), [_("Sales rep"), _("Overdue")],
        [[u.display_name, overdue.get(pk, 0)] for pk, u in users.items()],
        _chart("bar", [u.display_name for u in users.values()], [(_("Overdue"), [overdue.get(pk, 0) for pk in users])]),
    ))

    # after-sales
    after = s.aftersales_summary(user=user, scope=scope, period=period)
    sections.append(Section(
        "aftersales", _("After-sales"), [_("Measure"), _("Value")],
        [[_("Tickets resolved"), after["tickets_handled"]], [_("SLA compliance"), _pct(after["sla_compliance"])],
         [_("CSAT (average score)"), "" if after["csat_avg"] is None else round(after["csat_avg"], 2)],
         [_("Repurchase rate"), _pct(after["repurchase_rate"])]],
    ))

    # revenue and tiers
    revenue = s.revenue_trend(scope=scope, until=period.last_day)
    sections.append(Section(
        "revenue", _("Revenue by month"), [_("Month"), _("Signed"), _("Collected")],
        [[_month(r["month"]), r["signed"], r["collected"]] for r in revenue],
        _chart("line", [_month(r["month"]) for r in revenue],
               [(_("Signed"), [r["signed"] for r in revenue]), (_("Collected"), [r["collected"] for r in revenue])]),
    ))
    tiers = s.tier_distribution(scope=scope)
    sections.append(Section(
        "tiers", _("Customer tiers"), [_("Tier"), _("Customers"), _("Share")],
        [[str(t["label"]), t["count"], _pct(t["share"])] for t in tiers],
        _chart("doughnut", [str(t["label"]) for t in tiers], [(_("Customers"), [t["count"] for t in tiers])]),
    ))
    tier_labels = {value: str(label) for value, label in s.Tier.choices}
    moves = s.tier_movement(scope=scope, period=period)
    sections.append(Section(
        "tier_moves", _("Customer tier movement"), [_("From"), _("To"), _("Customers")],
        [[tier_labels.get(m["tier_before"], _("New customer")), tier_labels.get(m["tier_after"], m["tier_after"]), m["n"]]
         for m in moves],
    ))
    for section in sections:
        section.rows = [[_plain(v) for v in row] for row in section.rows]
    return sections


def _plain(value: Any) -> Any:
    return value.quantize(Decimal("0.01")) if isinstance(value, Decimal) else value
