from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.scope import is_manager_or_admin, managed_user_ids
from crm.pagination import KnownCountPaginator
from leads.selectors import customer_get_for_user
from opportunities.selectors import opportunity_get_for_user

from . import ical, selectors, services
from .forms import (
    ActivityEditForm,
    ActivityForm,
    CompleteForm,
    QuickLogForm,
    RescheduleForm,
    SeriesPlanForm,
    TemplatePlanForm,
)
from .models import ActivityStatus

PAGE_SIZE = 50


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _date(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _error_text(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or _("You are not allowed to do this.")


# --- the rep's day ----------------------------------------------------------------------------


@login_required
@require_GET
def home(request):
    """The home page: today's planned activities, overdue ones, customers due for follow-up, stalled
    deals, unread notifications (loaded from the notifications app), and for managers the team's week."""
    now = timezone.now()
    context = {"day": selectors.my_day(user=request.user, now=now)}
    if is_manager_or_admin(request.user):
        context["team"] = _team_rows(request.user, selectors.week_start_of(timezone.localdate(now)))
    return render(request, "activities/home.html", context)


def _team_rows(user: User, week_start: date) -> list[dict]:
    ids = managed_user_ids(user)
    users = User.objects.filter(is_active=True).order_by("username")
    if ids is not None:
        users = users.filter(pk__in=ids)
    users = list(users)
    start = selectors.day_bounds(week_start)[0]
    summary = {
        row["owner_id"]: row
        for row in selectors.team_summary(user_ids=[u.pk for u in users], start=start, end=start + timedelta(days=7))
    }
    empty = {"planned": 0, "planned_done": 0, "done": 0, "cancelled": 0, "missed": 0}
    return [{"user": u, **summary.get(u.pk, empty)} for u in users]


@login_required
@require_GET
def team(request):
    """Managers: was the plan carried out? Per person, the week's planned activities against done."""
    if not is_manager_or_admin(request.user):
        raise Http404
    week_start = selectors.week_start_of(_date(request.GET.get("week")) or timezone.localdate())
    return render(request, "activities/team.html", {
        "rows": _team_rows(request.user, week_start),
        "week_start": week_start,
        "week_end": week_start + timedelta(days=6),
        "previous_week": week_start - timedelta(days=7),
        "next_week": week_start + timedelta(days=7),
    })


# --- lists and pages --------------------------------------------------------------------------


@login_required
@require_GET
def activity_list(request):
    filters = selectors.ActivityFilters(
        status=request.GET.get("status", "") if request.GET.get("status") in ActivityStatus.values else "",
        kind_id=_int(request.GET.get("kind")),
        owner_id=_int(request.GET.get("owner")),
        customer_id=_int(request.GET.get("customer")),
        date_from=_date(request.GET.get("from")),
        date_to=_date(request.GET.get("to")),
    )
    page = KnownCountPaginator(
        selectors.activity_list(user=request.user, filters=filters), PAGE_SIZE,
        known_count=selectors.activity_list_count(user=request.user, filters=filters),
    ).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "activities/activity_list.html", {
        "page": page,
        "filters": filters,
        "statuses": ActivityStatus.choices,
        "kinds": list(selectors.kinds()),
        "owners": list(selectors.owner_choices(user=request.user)) if is_manager_or_admin(request.user) else [],
        "query": query.urlencode(),
        "now": timezone.now(),
    })


@login_required
@require_GET
def activity_detail(request, pk: int):
    activity = selectors.activity_get_for_user(user=request.user, pk=pk)
    can_change = services.can_change(request.user, activity)
    return render(request, "activities/activity_detail.html", {
        "activity": activity,
        "can_change": can_change,
        "complete_form": CompleteForm() if can_change else None,
        "reschedule_form": RescheduleForm(initial={"planned_at": activity.planned_at, "due_at": activity.due_at}),
        "now": timezone.now(),
    })


@login_required
@require_http_methods(["GET", "POST"])
def activity_create(request):
    """Plan an activity (for oneself, or for a managed rep)."""
    customer = None
    customer_id = _int(request.GET.get("customer") or request.POST.get("customer"))
    if customer_id:
        customer = customer_get_for_user(user=request.user, pk=customer_id)
    form = ActivityForm(request.POST or None, user=request.user, customer=customer)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            activity, _created = services.activity_plan(
                by=request.user, customer=data["customer"], kind=data["kind"], subject=data["subject"],
                planned_at=data["planned_at"], due_at=data["due_at"], notes=data["notes"],
                contact=data["contact"], opportunity=data["opportunity"], owner=data["owner"],
                duration_minutes=data["duration_minutes"], idempotency_key=data["idempotency_key"],
            )
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _error_text(exc))
        else:
            messages.success(request, _("Activity planned."))
            return redirect(activity)
    return render(request, "activities/activity_form.html", {"form": form, "customer": customer})


@login_required
@require_http_methods(["GET", "POST"])
def activity_edit(request, pk: int):
    activity = selectors.activity_get_for_user(user=request.user, pk=pk)
    if not services.can_change(request.user, activity):
        raise Http404
    form = ActivityEditForm(request.POST or None, instance=activity)
    if request.method == "POST" and form.is_valid():
        services.activity_update(activity=activity, by=request.user, **{
            name: form.cleaned_data[name] for name in ActivityEditForm.Meta.fields
        })
        messages.success(request, _("Activity saved."))
        return redirect(activity)
    return render(request, "activities/activity_edit.html", {"form": form, "activity": activity})


def _act(request, pk: int, action) -> HttpResponse:
    activity = selectors.activity_get_for_user(user=request.user, pk=pk)
    try:
        action(activity)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, _error_text(exc))
    return redirect(activity)


@login_required
@require_POST
def activity_complete(request, pk: int):
    form = CompleteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please correct the errors: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("activities:detail", pk=pk)

    def complete(activity):
        services.activity_complete(activity=activity, by=request.user, **form.cleaned_data)
        messages.success(request, _("Activity done."))

    return _act(request, pk, complete)


@login_required
@require_POST
def activity_cancel(request, pk: int):
    def cancel(activity):
        services.activity_cancel(activity=activity, by=request.user)
        messages.success(request, _("Activity cancelled."))

    return _act(request, pk, cancel)


@login_required
@require_POST
def activity_reopen(request, pk: int):
    def reopen(activity):
        services.activity_reopen(activity=activity, by=request.user)
        messages.success(request, _("Activity planned again."))

    return _act(request, pk, reopen)


@login_required
@require_POST
def activity_reschedule(request, pk: int):
    form = RescheduleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Please correct the errors: %(errors)s") % {"errors": form.errors.as_text()})
        return redirect("activities:detail", pk=pk)

    def reschedule(activity):
        services.activity_reschedule(activity=activity, by=request.user, **form.cleaned_data)
        messages.success(request, _("Activity rescheduled."))

    return _act(request, pk, reschedule)


# --- quick-log and the panels of the customer and deal pages -----------------------------------


def _quick_log_context(request, customer, opportunity, form, logged=None, repeated=False):
    return {"customer": customer, "opportunity": opportunity, "form": form, "logged": logged, "repeated": repeated}


@login_required
@require_http_methods(["GET", "POST"])
def quick_log(request):
    """The quick-log form (HTMX partial) for ?customer=<id> or ?opportunity=<id>. POST logs a done
    activity; the form's idempotency key makes a double submit or a retried request log it once."""
    opportunity = None
    opportunity_id = _int(request.GET.get("opportunity") or request.POST.get("opportunity"))
    if opportunity_id:
        opportunity = opportunity_get_for_user(user=request.user, pk=opportunity_id)
        customer = opportunity.customer
    else:
        customer_id = _int(request.GET.get("customer") or request.POST.get("customer"))
        if not customer_id:
            raise Http404
        customer = customer_get_for_user(user=request.user, pk=customer_id)
    if request.method == "GET":
        form = QuickLogForm(customer=customer)
        return render(request, "activities/partials/_quick_log.html",
                      _quick_log_context(request, customer, opportunity, form))
    form = QuickLogForm(request.POST, customer=customer)
    status = 200
    logged, repeated = None, False
    if form.is_valid():
        data = form.cleaned_data
        try:
            logged, created = services.activity_log(
                by=request.user, customer=customer, opportunity=opportunity, kind=data["kind"],
                subject=data["subject"], notes=data["notes"], contact=data["contact"], outcome=data["outcome"],
                next_step=data["next_step"], follow_up_at=data["follow_up_at"],
                duration_minutes=data["duration_minutes"], done_at=data["done_at"],
                idempotency_key=data["idempotency_key"],
            )
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _error_text(exc))
            status = 422
        else:
            repeated = not created
            if not request.htmx:
                messages.success(request, _("Activity logged."))
                return redirect(opportunity or customer)
            form = QuickLogForm(customer=customer)  # a fresh form, with a new key
    else:
        status = 422
    response = render(request, "activities/partials/_quick_log.html",
                      _quick_log_context(request, customer, opportunity, form, logged, repeated), status=status)
    if logged is not None:
        response["HX-Trigger"] = "activity-logged"
    return response


@login_required
@require_GET
def for_customer(request, customer_pk: int):
    """The activities panel of the customer page (HTMX): quick-log, coming and latest activities."""
    customer = customer_get_for_user(user=request.user, pk=customer_pk)
    upcoming, done = selectors.customer_activities(user=request.user, customer_id=customer.pk)
    template = (
        "activities/partials/_activity_lists.html" if request.GET.get("part") == "lists"
        else "activities/partials/_for_customer.html"
    )
    return render(request, template, {
        "customer": customer, "upcoming": upcoming, "done": done, "now": timezone.now(),
        "form": QuickLogForm(customer=customer), "refresh_url": request.path + "?part=lists",
    })


@login_required
@require_GET
def for_opportunity(request, opportunity_pk: int):
    """The activities panel of the deal page (HTMX): quick-log, coming and latest activities."""
    opportunity = opportunity_get_for_user(user=request.user, pk=opportunity_pk)
    upcoming, done = selectors.opportunity_activities(user=request.user, opportunity_id=opportunity.pk)
    template = (
        "activities/partials/_activity_lists.html" if request.GET.get("part") == "lists"
        else "activities/partials/_for_opportunity.html"
    )
    return render(request, template, {
        "customer": opportunity.customer, "opportunity": opportunity, "upcoming": upcoming, "done": done,
        "now": timezone.now(), "form": QuickLogForm(customer=opportunity.customer),
        "refresh_url": request.path + "?part=lists",
    })


# --- calendar ---------------------------------------------------------------------------------


@login_required
@require_GET
def calendar(request):
    """The week calendar of planned (and done) activities; managers may look at a rep's week."""
    week_start = selectors.week_start_of(_date(request.GET.get("week")) or timezone.localdate())
    owner = request.user
    owner_id = _int(request.GET.get("owner"))
    if owner_id and owner_id != request.user.pk:
        owner = get_object_or_404(selectors.owner_choices(user=request.user), pk=owner_id)
    return render(request, "activities/calendar.html", {
        "days": selectors.week_calendar(user=request.user, owner=owner, week_start=week_start),
        "owner": owner,
        "owners": list(selectors.owner_choices(user=request.user)) if is_manager_or_admin(request.user) else [],
        "week_start": week_start,
        "week_end": week_start + timedelta(days=6),
        "previous_week": week_start - timedelta(days=7),
        "next_week": week_start + timedelta(days=7),
        "today": timezone.localdate(),
    })


@never_cache
@require_GET
def ical_feed(request, token: str):
    """The personal iCalendar feed: no login (calendar apps cannot log in), the secret token is the key.
    Only the token owner's own activities and follow-ups. A reset or revoked token is a 404."""
    feed = selectors.calendar_feed_for_token(token)
    if feed is None:
        raise Http404
    now = timezone.now()
    body = ical.build_feed(
        user=feed.user,
        activities=selectors.feed_activities(user=feed.user, now=now),
        follow_ups=selectors.feed_follow_ups(user=feed.user, now=now),
        now=now,
    )
    services.calendar_feed_touch(feed=feed)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="crm.ics"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def feed_settings(request):
    """Show the personal feed URL; reset it (the old URL stops working) or turn it off."""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "reset":
            services.calendar_feed_reset(user=request.user)
            messages.success(request, _("A new calendar address was created; the old one no longer works."))
        elif action == "revoke":
            services.calendar_feed_revoke(user=request.user)
            messages.success(request, _("Your calendar feed is turned off."))
        elif action == "create":
            services.calendar_feed_get_or_create(user=request.user)
        return redirect("activities:feed_settings")
    feed = getattr(request.user, "calendar_feed", None)
    url = request.build_absolute_uri(feed.get_absolute_url()) if feed else ""
    return render(request, "activities/feed_settings.html", {"feed": feed, "url": url})


# --- plans ------------------------------------------------------------------------------------


@login_required
@require_GET
def plan_list(request):
    page = Paginator(selectors.plan_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "activities/plan_list.html", {"page": page})


@login_required
@require_GET
def plan_detail(request, pk: int):
    plan = selectors.plan_get_for_user(user=request.user, pk=pk)
    activities = list(plan.activities.select_related("kind", "owner").order_by("planned_at", "id"))
    return render(request, "activities/plan_detail.html", {"plan": plan, "activities": activities,
                                                          "now": timezone.now()})


@login_required
@require_http_methods(["GET", "POST"])
def plan_create(request):
    """A series (every N days) or a plan template applied to a customer."""
    customer = None
    customer_id = _int(request.GET.get("customer") or request.POST.get("customer"))
    if customer_id:
        customer = customer_get_for_user(user=request.user, pk=customer_id)
    mode = request.POST.get("mode") or request.GET.get("mode") or "template"
    series_form = SeriesPlanForm(request.POST if mode == "series" else None, user=request.user, customer=customer,
                                 prefix="series")
    template_form = TemplatePlanForm(request.POST if mode == "template" else None, user=request.user,
                                     customer=customer, prefix="template")
    form = series_form if mode == "series" else template_form
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if mode == "series":
                plan = services.plan_series_create(
                    by=request.user, customer=data["customer"], owner=data["owner"], kind=data["kind"],
                    subject=data["subject"], first_at=data["first_at"], interval_days=data["interval_days"],
                    occurrences=data["occurrences"],
                )
            else:
                plan = services.plan_template_apply(
                    by=request.user, customer=data["customer"], owner=data["owner"], template=data["template"],
                    start=data["start"],
                )
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, _error_text(exc))
        else:
            messages.success(request, _("Plan created."))
            return redirect(plan)
    return render(request, "activities/plan_form.html", {
        "series_form": series_form, "template_form": template_form, "mode": mode, "customer": customer,
    })


@login_required
@require_POST
def plan_cancel(request, pk: int):
    plan = selectors.plan_get_for_user(user=request.user, pk=pk)
    try:
        count = services.plan_cancel(plan=plan, by=request.user)
    except PermissionDenied as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("Plan stopped; %(count)d planned activities cancelled.") % {"count": count})
    return redirect(plan)
