"""Reads of the activities app: lists, the rep's day, the week calendar, plan progress, team summaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from accounts.scope import get_visible_or_404, managed_user_ids
from leads.models import Customer
from opportunities.selectors import OpportunityFilters, opportunity_list

from .models import Activity, ActivityKind, ActivityPlan, ActivityStatus, CalendarFeed

LIST_RELATED = ("kind", "customer", "owner", "contact", "opportunity")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of a local calendar day."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    return start, start + timedelta(days=1)


def _with_when(qs: QuerySet[Activity]) -> QuerySet[Activity]:
    return qs.annotate(when_at=Coalesce("done_at", "planned_at", "due_at"))


def kinds() -> QuerySet[ActivityKind]:
    return ActivityKind.objects.filter(is_active=True)


@dataclass
class ActivityFilters:
    status: str = ""
    kind_id: int | None = None
    owner_id: int | None = None
    customer_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None


def activity_list(*, user: User, filters: ActivityFilters | None = None) -> QuerySet[Activity]:
    """The activities `user` sees, latest first (done time, else planned time, else deadline)."""
    filters = filters or ActivityFilters()
    qs = _with_when(Activity.objects.visible_to(user).select_related(*LIST_RELATED))
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.kind_id:
        qs = qs.filter(kind_id=filters.kind_id)
    if filters.owner_id:
        qs = qs.filter(owner_id=filters.owner_id)
    if filters.customer_id:
        qs = qs.filter(customer_id=filters.customer_id)
    if filters.date_from:
        qs = qs.filter(when_at__gte=day_bounds(filters.date_from)[0])
    if filters.date_to:
        qs = qs.filter(when_at__lt=day_bounds(filters.date_to)[1])
    return qs.order_by("-when_at", "-id")


def activity_list_count(*, user: User, filters: ActivityFilters) -> int | None:
    """The row count of `activity_list` without filters, from the scope totals (None: filtered, or not
    PostgreSQL; count the rows)."""
    return Activity.objects.scope_count(user) if filters == ActivityFilters() else None


def activity_get_for_user(*, user: User, pk: int) -> Activity:
    return get_visible_or_404(Activity.objects.select_related(*LIST_RELATED, "plan", "created_by"), user, pk=pk)


def owner_choices(*, user: User) -> QuerySet[User]:
    """Whom `user` may plan activities for: themselves, and the users they manage."""
    ids = managed_user_ids(user)
    users = User.objects.filter(is_active=True)
    if ids is not None:
        users = users.filter(pk__in=ids)
    return users.order_by("username")


@dataclass
class MyDay:
    today: list[Activity]
    overdue: list[Activity]
    overdue_count: int
    follow_ups: list[Customer]
    follow_up_count: int
    stalled: list
    now: datetime


def my_day(*, user: User, now: datetime | None = None, limit: int = 20) -> MyDay:
    """The rep's day: today's planned activities, overdue ones, customers due for follow-up (today or
    earlier), stalled deals. A fixed number of queries."""
    now = now or timezone.now()
    start, end = day_bounds(timezone.localdate(now))
    planned = (
        Activity.objects.filter(owner=user, status=ActivityStatus.PLANNED)
        .select_related("kind", "customer", "contact", "opportunity")
        .annotate(deadline_at=Coalesce("due_at", "planned_at"), slot_at=Coalesce("planned_at", "due_at"))
    )
    today = list(planned.filter(slot_at__gte=start, slot_at__lt=end).order_by("slot_at", "id")[:50])
    overdue_qs = planned.filter(deadline_at__lt=start).exclude(slot_at__gte=start)
    follow_ups_qs = Customer.objects.filter(owner=user, next_follow_up_at__lt=end)
    stalled = list(
        opportunity_list(user=user, filters=OpportunityFilters(stalled=True, owner_id=user.pk, status="open"), now=now)[
            :limit
        ]
    )
    return MyDay(
        today=today,
        overdue=list(overdue_qs.order_by("deadline_at", "id")[:limit]),
        overdue_count=overdue_qs.count(),
        follow_ups=list(follow_ups_qs.order_by("next_follow_up_at", "id")[:limit]),
        follow_up_count=follow_ups_qs.count(),
        stalled=stalled,
        now=now,
    )


def week_start_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_calendar(*, user: User, owner: User, week_start: date) -> list[tuple[date, list[Activity]]]:
    """The owner's activities (planned, done; not cancelled) in the week, per day. One query."""
    start = day_bounds(week_start)[0]
    end = day_bounds(week_start + timedelta(days=6))[1]
    activities = (
        Activity.objects.visible_to(user)
        .filter(owner=owner)
        .exclude(status=ActivityStatus.CANCELLED)
        .select_related("kind", "customer")
        .annotate(slot_at=Coalesce("planned_at", "due_at", "done_at"))
        .filter(slot_at__gte=start, slot_at__lt=end)
        .order_by("slot_at", "id")
    )
    days: dict[date, list[Activity]] = {week_start + timedelta(days=n): [] for n in range(7)}
    for activity in activities:
        days.setdefault(timezone.localdate(activity.slot_at), []).append(activity)
    return list(days.items())


def customer_activities(*, user: User, customer_id: int, limit: int = 10) -> tuple[list[Activity], list[Activity]]:
    """(upcoming planned, latest done) activities of a customer that the user sees. Two queries."""
    base = Activity.objects.visible_to(user).filter(customer_id=customer_id).select_related("kind", "owner", "contact")
    upcoming = list(base.filter(status=ActivityStatus.PLANNED).order_by(Coalesce("planned_at", "due_at"), "id")[:limit])
    done = list(base.filter(status=ActivityStatus.DONE).order_by("-done_at", "-id")[:limit])
    return upcoming, done


def opportunity_activities(*, user: User, opportunity_id: int, limit: int = 10) -> tuple[list[Activity], list[Activity]]:
    base = Activity.objects.visible_to(user).filter(opportunity_id=opportunity_id).select_related("kind", "owner")
    upcoming = list(base.filter(status=ActivityStatus.PLANNED).order_by(Coalesce("planned_at", "due_at"), "id")[:limit])
    done = list(base.filter(status=ActivityStatus.DONE).order_by("-done_at", "-id")[:limit])
    return upcoming, done


def plan_list(*, user: User, now: datetime | None = None) -> QuerySet[ActivityPlan]:
    """Plans the user sees, with their progress: how many activities done, planned, overdue, cancelled."""
    now = now or timezone.now()
    return (
        ActivityPlan.objects.visible_to(user)
        .select_related("customer", "owner", "template")
        .annotate(
            total=Count("activities"),
            done=Count("activities", filter=Q(activities__status=ActivityStatus.DONE)),
            cancelled=Count("activities", filter=Q(activities__status=ActivityStatus.CANCELLED)),
            open=Count("activities", filter=Q(activities__status=ActivityStatus.PLANNED)),
            overdue=Count(
                "activities",
                filter=Q(activities__status=ActivityStatus.PLANNED, activities__planned_at__lt=now),
            ),
        )
        .order_by("-created_at", "-id")
    )


def plan_get_for_user(*, user: User, pk: int) -> ActivityPlan:
    return get_visible_or_404(plan_list(user=user), user, pk=pk)


def team_summary(
    *, user_ids: list[int] | None, start: datetime, end: datetime, now: datetime | None = None
) -> list[dict]:
    """Per owner, for [start, end): activities planned in the period and how many of them were done,
    activities done in the period (planned or logged), cancelled, and still open past their time
    (`missed`, counted up to now). Two queries, each read from a covering index only (planned_at /
    done_at, with owner and status): an OR of the two ranges would read every activity's row.
    `user_ids` None: everyone."""
    now = now or timezone.now()
    qs = Activity.objects.all()
    if user_ids is not None:
        qs = qs.filter(owner_id__in=user_ids)
    rows: dict[int, dict] = {}
    for row in (
        qs.filter(planned_at__gte=start, planned_at__lt=end).order_by().values("owner_id").annotate(
            planned=Count("planned_at"),  # a column of the index (COUNT(id) would read the rows)
            planned_done=Count("planned_at", filter=Q(status=ActivityStatus.DONE)),
            cancelled=Count("planned_at", filter=Q(status=ActivityStatus.CANCELLED)),
            missed=Count("planned_at", filter=Q(status=ActivityStatus.PLANNED, planned_at__lt=now)),
        )
    ):
        rows[row["owner_id"]] = {**row, "done": 0}
    for row in (
        qs.filter(status=ActivityStatus.DONE, done_at__gte=start, done_at__lt=end).order_by().values("owner_id")
        .annotate(done=Count("done_at"))
    ):
        rows.setdefault(row["owner_id"], {"owner_id": row["owner_id"], "planned": 0, "planned_done": 0,
                                          "cancelled": 0, "missed": 0})["done"] = row["done"]
    return list(rows.values())


def calendar_feed_for_token(token: str) -> CalendarFeed | None:
    if not token or len(token) > 64:
        return None
    return CalendarFeed.objects.select_related("user").filter(token=token, user__is_active=True).first()


def feed_activities(*, user: User, now: datetime, past_days: int = 60, future_days: int = 180) -> QuerySet[Activity]:
    """The user's own activities (planned and done) for the calendar feed."""
    return (
        Activity.objects.filter(owner=user)
        .exclude(status=ActivityStatus.CANCELLED)
        .select_related("kind", "customer", "contact")
        .annotate(slot_at=Coalesce("planned_at", "due_at", "done_at"))
        .filter(slot_at__gte=now - timedelta(days=past_days), slot_at__lt=now + timedelta(days=future_days))
        .order_by("slot_at", "id")
    )


def feed_follow_ups(*, user: User, now: datetime, future_days: int = 180) -> QuerySet[Customer]:
    """The user's customers with a follow-up date coming (or overdue up to a month)."""
    return Customer.objects.filter(
        owner=user,
        next_follow_up_at__gte=now - timedelta(days=30),
        next_follow_up_at__lt=now + timedelta(days=future_days),
    ).only("id", "name", "next_follow_up_at", "tier")
