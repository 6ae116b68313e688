"""The weekly review digest (定期复盘): for a manager, last week of everyone they manage — activities
per rep against plan, new customers, stage moves, deals won and lost, overdue follow-ups.

Built at delivery time in the manager's language (notifications renders it through
activities.reminders.digest_render); a fixed number of queries whatever the team size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Count, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.scope import managed_user_ids
from leads.models import Customer
from opportunities.models import Opportunity, StageChange, StageKind, TransitionAction

from .selectors import day_bounds, team_summary


@dataclass
class RepRow:
    user: User
    planned: int = 0
    planned_done: int = 0
    done: int = 0
    missed: int = 0
    new_customers: int = 0
    stage_moves: int = 0
    won: int = 0
    lost: int = 0
    overdue_follow_ups: int = 0


@dataclass
class Digest:
    manager: User
    week_start: date
    week_end: date
    rows: list[RepRow] = field(default_factory=list)
    won_amount: Decimal = Decimal("0")
    lost_amount: Decimal = Decimal("0")

    def total(self, name: str) -> int:
        return sum(getattr(row, name) for row in self.rows)


def build(*, manager: User, week_start: date) -> Digest:
    start = day_bounds(week_start)[0]
    end = day_bounds(week_start + timedelta(days=6))[1]
    ids = managed_user_ids(manager)
    users = User.objects.filter(is_active=True).order_by("username")
    if ids is not None:
        users = users.filter(pk__in=ids)
    rows = {user.pk: RepRow(user=user) for user in users}
    user_ids = list(rows)
    for summary in team_summary(user_ids=user_ids, start=start, end=end):
        row = rows[summary["owner_id"]]
        row.planned, row.planned_done = summary["planned"], summary["planned_done"]
        row.done, row.missed = summary["done"], summary["missed"]
    for owner_id, count in (
        Customer.objects.filter(owner_id__in=user_ids, created_at__gte=start, created_at__lt=end)
        .values_list("owner_id")
        .annotate(n=Count("id"))
    ):
        rows[owner_id].new_customers = count
    for owner_id, count in (
        StageChange.objects.filter(
            opportunity__owner_id__in=user_ids, changed_at__gte=start, changed_at__lt=end, imported=False
        )
        .exclude(action__in=[TransitionAction.CREATE, TransitionAction.IMPORT])
        .values_list("opportunity__owner_id")
        .annotate(n=Count("id"))
    ):
        rows[owner_id].stage_moves = count
    digest = Digest(manager=manager, week_start=week_start, week_end=week_start + timedelta(days=6))
    closed = (
        Opportunity.objects.filter(
            owner_id__in=user_ids, closed_at__gte=start, closed_at__lt=end,
            stage__kind__in=[StageKind.WON, StageKind.LOST],
        )
        .values_list("owner_id", "stage__kind")
        .annotate(n=Count("id"), amount=Sum("amount"))
    )
    for owner_id, kind, count, amount in closed:
        if kind == StageKind.WON:
            rows[owner_id].won += count
            digest.won_amount += amount or 0
        else:
            rows[owner_id].lost += count
            digest.lost_amount += amount or 0
    for owner_id, count in (
        Customer.objects.filter(owner_id__in=user_ids, next_follow_up_at__lt=timezone.now())
        .values_list("owner_id")
        .annotate(n=Count("id"))
    ):
        rows[owner_id].overdue_follow_ups = count
    digest.rows = [
        row for row in rows.values()
        if row.user.pk != manager.pk or any((row.planned, row.done, row.new_customers, row.won, row.lost))
    ]
    return digest


COLUMNS = ["planned", "planned_done", "done", "missed", "new_customers", "stage_moves", "won", "lost",
           "overdue_follow_ups"]


def _headers() -> list[str]:
    labels = {
        "planned": _("Planned"),
        "planned_done": _("Done as planned"),
        "done": _("Done in total"),
        "missed": _("Overdue"),
        "new_customers": _("New customers"),
        "stage_moves": _("Stage moves"),
        "won": _("Won"),
        "lost": _("Lost"),
        "overdue_follow_ups": _("Overdue follow-ups"),
    }
    return [labels[name] for name in COLUMNS]


def render(digest: Digest) -> dict:
    """Title, plain-text body and HTML table of the digest, in the active language."""
    period = f"{digest.week_start:%Y-%m-%d} – {digest.week_end:%Y-%m-%d}"
    title = _("Weekly review %(period)s") % {"period": period}
    headers = _headers()
    lines = [
        _("Activities: %(done)d done, %(planned_done)d of %(planned)d planned carried out.")
        % {"done": digest.total("done"), "planned_done": digest.total("planned_done"),
           "planned": digest.total("planned")},
        _("New customers: %(count)d · stage moves: %(moves)d") % {
            "count": digest.total("new_customers"), "moves": digest.total("stage_moves")},
        _("Deals won: %(won)d (%(won_amount)s) · lost: %(lost)d (%(lost_amount)s)") % {
            "won": digest.total("won"), "won_amount": f"{digest.won_amount:,.2f}",
            "lost": digest.total("lost"), "lost_amount": f"{digest.lost_amount:,.2f}"},
        _("Overdue follow-ups: %(count)d") % {"count": digest.total("overdue_follow_ups")},
        "",
    ]
    for row in digest.rows:
        values = " · ".join(f"{label} {getattr(row, name)}" for name, label in zip(COLUMNS, headers, strict=True))
        lines.append(f"{row.user.display_name}: {values}")
    header_cells = format_html_join("", "<th style=\"text-align:left;padding:2px 6px\">{}</th>", ((h,) for h in headers))
    body_rows = format_html_join(
        "",
        "<tr><td style=\"padding:2px 6px\">{}</td>{}</tr>",
        (
            (
                row.user.display_name,
                format_html_join("", "<td style=\"padding:2px 6px\">{}</td>", ((getattr(row, name),) for name in COLUMNS)),
            )
            for row in digest.rows
        ),
    )
    summary = format_html_join("", "<p>{}</p>", ((line,) for line in lines[:4]))
    html = format_html(
        "{}<table style=\"border-collapse:collapse\"><thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table>",
        summary, header_cells, body_rows,
    )
    return {"title": title, "body": "\n".join(lines), "html": str(html), "link": _review_link(digest)}


def _review_link(digest: Digest) -> str:
    """The monthly review page (定期复盘) of the manager's team for the month the week starts in.
    Named by URL only: dashboards sits above activities in the house map."""
    params = {"month": f"{digest.week_start:%Y-%m}"}
    if digest.manager.team_id:
        params["team"] = str(digest.manager.team_id)
    try:
        return f"{reverse('dashboards:review')}?{urlencode(params)}"
    except NoReverseMatch:
        return reverse("activities:team")
