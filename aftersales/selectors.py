"""Reads of the after-sales app: the scoped ticket queue, the detail page, the customer panel, and the
evaluation selectors the dashboards call (per customer, per service rep, repeat purchase)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import (
    Avg,
    BooleanField,
    Case,
    CharField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from accounts.scope import get_visible_or_404, managed_user_ids, user_team_ids
from contracts.models import Contract
from leads.models import Customer

from .models import (
    ACTIVE_STATUSES,
    DONE_STATUSES,
    CustomerPortal,
    PlanItemStatus,
    SatisfactionSurvey,
    ServicePlanItem,
    SlaBreach,
    SlaState,
    Ticket,
    TicketComment,
    TicketStatus,
    TicketStatusChange,
)

QUEUE_VIEWS = ("mine", "team", "unassigned", "all")
OPEN_STATUSES = (*ACTIVE_STATUSES, TicketStatus.WAITING)


def with_sla_state(qs: QuerySet[Ticket], *, now: datetime | None = None) -> QuerySet[Ticket]:
    """Annotate `has_breach` and `sla_state` (see SlaState) in SQL, so the queue can filter on it."""
    now = now or timezone.now()
    active = Q(status__in=ACTIVE_STATUSES)
    response_pending = Q(first_responded_at__isnull=True)
    return qs.annotate(
        has_breach=Exists(SlaBreach.objects.filter(ticket=OuterRef("pk"))),
    ).annotate(
        sla_state=Case(
            When(status=TicketStatus.WAITING, then=Value(SlaState.PAUSED)),
            When(has_breach=True, then=Value(SlaState.BREACHED)),
            When(status__in=DONE_STATUSES, then=Value(SlaState.MET)),
            When(
                active & ((response_pending & Q(response_due_at__lte=now)) | Q(resolution_due_at__lte=now)),
                then=Value(SlaState.BREACHED),
            ),
            When(
                active & ((response_pending & Q(response_warn_at__lte=now)) | Q(resolution_warn_at__lte=now)),
                then=Value(SlaState.AT_RISK),
            ),
            default=Value(SlaState.ON_TRACK),
            output_field=CharField(),
        )
    )


def ticket_queue(
    *,
    user: User,
    view: str = "mine",
    status: str = "",
    priority: str = "",
    sla_state: str = "",
    customer_id: int | None = None,
    now: datetime | None = None,
) -> QuerySet[Ticket]:
    """The tickets `user` may see, narrowed to a queue view and filters. Open tickets first by due time.

    mine: owned by the user; team: owned by someone in the user's teams or in their queue;
    unassigned: no owner yet (the team queue); all: everything in scope.
    """
    qs = Ticket.objects.visible_to(user)
    if view == "mine":
        qs = qs.filter(owner=user)
    elif view == "unassigned":
        qs = qs.filter(owner__isnull=True)
    elif view == "team":
        team_ids = user_team_ids(user)
        if team_ids is not None:
            qs = qs.filter(Q(owner__team_id__in=sorted(team_ids)) | Q(team_id__in=sorted(team_ids)) | Q(owner=user))
    if status == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if priority:
        qs = qs.filter(priority=priority)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    qs = with_sla_state(qs, now=now)
    if sla_state:
        qs = qs.filter(sla_state=sla_state)
    return qs.select_related("customer", "kind", "owner", "team").annotate(
        is_open=Case(When(status__in=OPEN_STATUSES, then=Value(True)), default=Value(False), output_field=BooleanField())
    ).order_by("-is_open", "resolution_due_at", "-created_at", "-id")


def ticket_get_for_user(*, user: User, pk: int, for_update: bool = False) -> Ticket:
    """Fetch-and-authorize: a ticket outside the user's scope is a 404."""
    qs = with_sla_state(
        Ticket.objects.select_related("customer", "contact", "contract", "kind", "owner__team", "team", "created_by")
    )
    return get_visible_or_404(qs, user, pk=pk)


def ticket_detail(*, ticket: Ticket) -> dict:
    """The thread, history, attachments and survey of one ticket (a fixed number of queries)."""
    return {
        "comments": list(TicketComment.objects.filter(ticket=ticket).select_related("author")),
        "history": list(TicketStatusChange.objects.filter(ticket=ticket).select_related("by")),
        "attachments": list(ticket.attachments.select_related("uploaded_by")),
        "breaches": list(ticket.breaches.all()),
        "survey": SatisfactionSurvey.objects.filter(ticket=ticket).first(),
        "plan_items": list(ticket.plan_items.all()),
    }


def ticket_for_public_token(*, token: str) -> Ticket:
    ticket = (
        Ticket.objects.select_related("customer", "kind")
        .prefetch_related(Prefetch("comments", queryset=TicketComment.objects.customer_visible().select_related("author")))
        .filter(public_token=token)
        .first()
    )
    if ticket is None or not token:
        raise Http404
    return ticket


def portal_for_token(*, token: str) -> CustomerPortal:
    portal = CustomerPortal.objects.select_related("customer").filter(token=token, is_active=True).first()
    if portal is None or not token:
        raise Http404
    return portal


def survey_for_token(*, token: str) -> SatisfactionSurvey:
    survey = SatisfactionSurvey.objects.select_related("ticket__customer").filter(token=token).first()
    if survey is None or not token:
        raise Http404
    return survey


# --- the customer page ------------------------------------------------------------------------------
def customer_service_summary(*, customer: Customer) -> dict:
    """Open tickets and CSAT of one customer (all its tickets: the viewer already sees the customer)."""
    tickets = Ticket.objects.filter(customer=customer)
    counts = tickets.aggregate(
        open_tickets=Count("pk", filter=Q(status__in=OPEN_STATUSES)),
        total_tickets=Count("pk"),
    )
    csat = SatisfactionSurvey.objects.filter(ticket__customer=customer, answered_at__isnull=False).aggregate(
        csat_avg=Avg("score"), csat_count=Count("pk")
    )
    return {**counts, **csat}


def customer_service_stats(*, customers: QuerySet[Customer] | None = None) -> QuerySet[Customer]:
    """Customers annotated with `open_tickets`, `total_tickets`, `csat_avg`, `csat_count` (one query).

    Pass a scoped queryset (e.g. `Customer.objects.visible_to(user)`) to limit the rows."""
    qs = customers if customers is not None else Customer.objects.all()
    return qs.annotate(
        open_tickets=Count("tickets", filter=Q(tickets__status__in=OPEN_STATUSES), distinct=True),
        total_tickets=Count("tickets", distinct=True),
        csat_avg=Avg("tickets__survey__score", filter=Q(tickets__survey__answered_at__isnull=False)),
        csat_count=Count("tickets__survey", filter=Q(tickets__survey__answered_at__isnull=False), distinct=True),
    )


def customer_tickets(*, user: User, customer: Customer, limit: int = 20) -> list[Ticket]:
    """The customer's tickets the viewer may see, open first (for the customer page panel)."""
    return list(ticket_queue(user=user, view="all", customer_id=customer.pk)[:limit])


def customer_plan_items(*, customer: Customer) -> QuerySet[ServicePlanItem]:
    return ServicePlanItem.objects.filter(customer=customer).select_related("kind", "owner", "plan", "ticket")


# --- per service rep ----------------------------------------------------------------------------
def rep_service_stats(
    *, user: User, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[User]:
    """Service reps `user` may see, annotated per period (tickets resolved in [since, until)):

    - `tickets_handled`: tickets they resolved (owner at resolution, still resolved or closed);
    - `tickets_within_sla`: of those, tickets without any SLA breach;
    - `sla_compliance`: tickets_within_sla / tickets_handled (None without tickets) — computed in Python
      from the two counts by `sla_compliance()`;
    - `csat_avg`, `csat_count`: answered surveys of their tickets answered in the period.
    """
    handled = Ticket.objects.filter(owner=OuterRef("pk"), status__in=DONE_STATUSES, resolved_at__isnull=False)
    answered = SatisfactionSurvey.objects.filter(ticket__owner=OuterRef("pk"), answered_at__isnull=False)
    if since is not None:
        handled = handled.filter(resolved_at__gte=since)
        answered = answered.filter(answered_at__gte=since)
    if until is not None:
        handled = handled.filter(resolved_at__lt=until)
        answered = answered.filter(answered_at__lt=until)
    within_sla = handled.exclude(Exists(SlaBreach.objects.filter(ticket=OuterRef("pk"))))
    qs = User.objects.filter(is_active=True)
    ids = managed_user_ids(user)
    if ids is not None:
        qs = qs.filter(pk__in=sorted(ids))
    return (
        qs.annotate(
            tickets_handled=_count(handled, "owner"),
            tickets_within_sla=_count(within_sla, "owner"),
            csat_avg=Subquery(
                answered.order_by().values("ticket__owner").annotate(v=Avg("score")).values("v"),
                output_field=FloatField(),
            ),
            csat_count=_count(answered, "ticket__owner"),
        )
        .select_related("team")
        .order_by("-tickets_handled", "username")
    )


def _count(qs: QuerySet, group_by: str):
    """A correlated COUNT subquery (0 when there are no rows), one per outer row: no join fan-out."""
    return Coalesce(
        Subquery(qs.order_by().values(group_by).annotate(n=Count("pk")).values("n"), output_field=IntegerField()),
        Value(0),
    )


def sla_compliance(stats_row) -> float | None:
    """Share of handled tickets without a breach, 0..1 (None without handled tickets)."""
    if not stats_row.tickets_handled:
        return None
    return stats_row.tickets_within_sla / stats_row.tickets_handled


# --- planned service ----------------------------------------------------------------------------
def plan_items_for_user(*, user: User, view: str = "mine") -> QuerySet[ServicePlanItem]:
    qs = ServicePlanItem.objects.visible_to(user).filter(status=PlanItemStatus.PLANNED)
    if view == "mine":
        qs = qs.filter(owner=user)
    elif view == "unassigned":
        qs = qs.filter(owner__isnull=True)
    return qs.select_related("customer", "kind", "owner", "ticket").order_by("due_date", "id")


def plan_item_get_for_user(*, user: User, pk: int) -> ServicePlanItem:
    return get_visible_or_404(ServicePlanItem.objects.select_related("customer", "kind", "owner", "plan"), user, pk=pk)


# --- repeat purchase ----------------------------------------------------------------------------
def _purchases(*, customers: QuerySet[Customer] | None, until: date | None) -> QuerySet[Contract]:
    """Every contract that was signed (whatever happened after: active, completed, terminated)."""
    qs = Contract.objects.filter(signed_on__isnull=False)
    if customers is not None:
        qs = qs.filter(customer__in=customers.values("pk"))
    if until is not None:
        qs = qs.filter(signed_on__lte=until)
    return qs


def repeat_customers(*, customers: QuerySet[Customer] | None = None, until: date | None = None) -> QuerySet[Customer]:
    """Customers with a second signed contract, annotated with `purchases`, `first_purchase_on` and
    `last_purchase_on`. Pass `customers=Customer.objects.visible_to(user)` to scope it."""
    signed = Q(contracts__signed_on__isnull=False)
    if until is not None:
        signed &= Q(contracts__signed_on__lte=until)
    qs = customers if customers is not None else Customer.objects.all()
    return (
        qs.annotate(
            purchases=Count("contracts", filter=signed, distinct=True),
            first_purchase_on=Min("contracts__signed_on", filter=signed),
            last_purchase_on=Max("contracts__signed_on", filter=signed),
        )
        .filter(purchases__gte=2)
        .order_by("-purchases", "name")
    )


def repeat_purchase_stats(*, customers: QuerySet[Customer] | None = None, until: date | None = None) -> dict:
    """Repeat purchase, for the dashboards. A purchase is a signed contract; a customer with a second
    one is repurchasing. Returns:

    - `customers_purchasing`: customers with at least one signed contract;
    - `customers_repurchasing`: those with two or more;
    - `repurchase_rate`: repurchasing / purchasing (0..1, None without purchases);
    - `avg_days_between_purchases`: mean gap between a customer's consecutive purchases;
    - `avg_days_to_second_purchase`: mean gap between a customer's first and second purchase.

    `customers` scopes the customers counted (e.g. `Customer.objects.visible_to(user)`); `until` counts
    only contracts signed on or before that date. Everything is aggregated in SQL (3 queries).
    """
    purchases = _purchases(customers=customers, until=until)
    per_customer = purchases.order_by().values("customer_id").annotate(n=Count("pk"))
    purchasing = per_customer.count()
    repurchasing = per_customer.filter(n__gte=2).count()
    earlier = purchases.filter(customer_id=OuterRef("customer_id")).filter(
        Q(signed_on__lt=OuterRef("signed_on")) | Q(signed_on=OuterRef("signed_on"), pk__lt=OuterRef("pk"))
    )
    gaps = (
        purchases.annotate(
            previous_on=Subquery(earlier.order_by("-signed_on", "-pk").values("signed_on")[:1]),
            rank=Coalesce(
                Subquery(earlier.order_by().values("customer_id").annotate(c=Count("pk")).values("c"),
                         output_field=IntegerField()),
                Value(0),
            ),
        )
        .filter(previous_on__isnull=False)
        .annotate(gap=ExpressionWrapper(F("signed_on") - F("previous_on"), output_field=DurationField()))
        .aggregate(avg_gap=Avg("gap"), avg_second=Avg("gap", filter=Q(rank=1)))
    )

    def days(value) -> float | None:
        if value is None:
            return None
        if isinstance(value, timedelta):
            return round(value.total_seconds() / 86400, 1)
        return round(float(value) / 86400e6, 1)  # microseconds (SQLite)

    return {
        "customers_purchasing": purchasing,
        "customers_repurchasing": repurchasing,
        "repurchase_rate": (repurchasing / purchasing) if purchasing else None,
        "avg_days_between_purchases": days(gaps["avg_gap"]),
        "avg_days_to_second_purchase": days(gaps["avg_second"]),
    }
