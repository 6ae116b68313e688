"""The team dashboard, a rep's own dashboard and the CSV export of every table: thin views over
`dashboards.reports` (itself over the selectors), scoped by `dashboards.selectors.dashboard_scope`."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from accounts.models import Team
from accounts.scope import is_manager_or_admin, user_team_ids
from crm.exports import csv_response
from opportunities.selectors import pipeline_get, pipeline_list

from . import selectors as s
from .forms import TargetRowForm
from .models import Target
from .reports import cached_sections
from .services import targets_set

PERIOD_KINDS = ("week", "month", "quarter", "custom")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        raise Http404("bad filter") from None


def _context(request: HttpRequest, *, own: bool) -> dict:
    kind = request.GET.get("period", "month")
    kind = kind if kind in PERIOD_KINDS else "month"
    start = parse_date(request.GET.get("from") or "") if kind == "custom" else None
    end = parse_date(request.GET.get("to") or "") if kind == "custom" else None
    period = s.period_for(kind, start=start, end=end)
    user = request.user
    if own or not is_manager_or_admin(user):
        scope = s.dashboard_scope(user=user, rep_id=user.pk)
    else:
        scope = s.dashboard_scope(user=user, team_id=_int(request.GET.get("team")), rep_id=_int(request.GET.get("rep")))
    pipeline = pipeline_get(_int(request.GET.get("pipeline")))
    sections, computed_at = cached_sections(user=user, scope=scope, period=period, pipeline=pipeline)
    return {"period": period, "scope": scope, "pipeline": pipeline, "own": own, "sections": sections,
            "computed_at": computed_at, "cache_minutes": settings.DASHBOARD_CACHE_SECONDS // 60}


def _filter_choices(user) -> dict:
    team_ids = user_team_ids(user)
    teams = Team.objects.order_by("name")
    if team_ids is not None:
        teams = teams.filter(pk__in=sorted(team_ids))
    return {"teams": list(teams), "reps": s.scope_users(s.dashboard_scope(user=user)),
            "pipelines": list(pipeline_list())}


@login_required
def team(request: HttpRequest) -> HttpResponse:
    """Managers: their team subtree (filters by team and rep); admins: any team; reps: themselves."""
    context = _context(request, own=False)
    if is_manager_or_admin(request.user):
        context.update(_filter_choices(request.user))
    context["kinds"] = PERIOD_KINDS
    context["query"] = request.GET.urlencode()
    return render(request, "dashboards/team.html", context)


@login_required
def mine(request: HttpRequest) -> HttpResponse:
    """The same sections for the signed-in user's own records."""
    context = _context(request, own=True)
    context.update({"kinds": PERIOD_KINDS, "query": request.GET.urlencode(), "pipelines": list(pipeline_list())})
    return render(request, "dashboards/team.html", context)


@login_required
def export(request: HttpRequest, section: str) -> HttpResponse:
    """One table of the dashboard as CSV, with the same filters and scope as the page."""
    context = _context(request, own=request.GET.get("own") == "1")
    found = next((sec for sec in context["sections"] if sec.key == section), None)
    if found is None:
        raise Http404("section")
    period = context["period"]
    return csv_response(found.rows, header=found.header,
                        filename=f"{section}-{period.start:%Y%m%d}-{period.last_day:%Y%m%d}.csv")




def _month(value: str | None) -> date:
    """A "YYYY-MM" parameter as the first day of that month (default: this month)."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        return date(year, month, 1)
    except ValueError:
        return timezone.localdate().replace(day=1)


@login_required
def targets(request: HttpRequest) -> HttpResponse:
    """The bulk grid of a month's targets: one row per user of the manager's teams (admins: everyone)."""
    if not is_manager_or_admin(request.user):
        raise Http404("targets")
    month = _month(request.GET.get("month") or request.POST.get("month"))
    scope = s.dashboard_scope(user=request.user, team_id=_int(request.GET.get("team") or request.POST.get("team")))
    users = s.scope_users(scope)
    existing = {t.user_id: t for t in Target.objects.filter(month=month, user__in=users)}
    data = request.POST if request.method == "POST" else None
    rows = [(u, TargetRowForm(data, instance=existing.get(u.pk) or Target(user=u, month=month), prefix=f"u{u.pk}"))
            for u in users]
    if data is not None and all(form.is_valid() for _u, form in rows):
        targets_set(user=request.user, month=month,
                    values={u.pk: {m: form.cleaned_data[m] for m in s.METRICS} for u, form in rows})
        messages.success(request, _("Targets saved."))
        return redirect(f"{request.path}?month={month:%Y-%m}" + (f"&team={scope.team.pk}" if scope.team else ""))
    return render(request, "dashboards/targets.html", {
        "month": month, "rows": rows, "scope": scope, "metrics": s.METRICS, **_filter_choices(request.user),
    })


@login_required
def review(request: HttpRequest) -> HttpResponse:
    """The monthly review (定期复盘) of a team: the month against the previous one and against target,
    printable. Managers and admins (team filter within scope); a rep gets their own."""
    month = _month(request.GET.get("month"))
    if is_manager_or_admin(request.user):
        scope = s.dashboard_scope(user=request.user, team_id=_int(request.GET.get("team")),
                                  rep_id=_int(request.GET.get("rep")))
        choices = _filter_choices(request.user)
    else:
        scope = s.dashboard_scope(user=request.user, rep_id=request.user.pk)
        choices = {}
    labels = {
        "signed_revenue": _("Signed revenue"), "collected": _("Collected payments"), "new_customers": _("New customers"),
        "won_deals": _("Won deals"), "calls": _("Calls"), "visits": _("Visits"),
    }
    data = s.monthly_review(scope=scope, month=month)
    for row in data["metrics"]:
        row["label"] = labels[row["metric"]]
    return render(request, "dashboards/review.html", {"review": data, "scope": scope, "month": month,
                                                      "metric_labels": [labels[m] for m in s.METRICS], **choices})
