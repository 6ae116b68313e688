"""Pages: the ticket queue, detail (thread, history, moves), forms, the customer panel, service plans,
and the public pages (ticket form per customer token, tokenised status link, satisfaction survey).

Views are thin: fetch-and-authorize through the selectors (404 outside the scope), call a service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.scope import is_manager_or_admin
from accounts.security_log import client_ip
from leads.selectors import customer_get_for_user

from . import selectors, services
from .forms import (
    AssignForm,
    AttachmentForm,
    CommentForm,
    PlanItemForm,
    PlanItemStatusForm,
    PublicReplyForm,
    PublicTicketForm,
    QueueFilterForm,
    SurveyForm,
    TicketEditForm,
    TicketForm,
    TransitionForm,
)
from .models import CustomerPortal, PlanItemStatus, ServicePlan, TicketAttachment, TicketStatus

# Labels and button styles of the moves, in the order services.TRANSITIONS lists them.
TRANSITION_BUTTONS = {
    "start": (gettext_lazy("Start work"), "primary"),
    "wait_on_customer": (gettext_lazy("Wait on customer"), "secondary"),
    "resume": (gettext_lazy("Resume"), "primary"),
    "resolve": (gettext_lazy("Resolve"), "success"),
    "close": (gettext_lazy("Close"), "dark"),
    "reopen": (gettext_lazy("Reopen"), "warning"),
}


def _next_url(request, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


# --- the queue ------------------------------------------------------------------------------------
@login_required
def ticket_list(request):
    view = request.GET.get("view") or ("team" if is_manager_or_admin(request.user) else "mine")
    if view not in selectors.QUEUE_VIEWS:
        view = "mine"
    filters = QueueFilterForm(request.GET or None)
    cleaned = filters.cleaned_data if filters.is_valid() else {}
    now = timezone.now()
    qs = selectors.ticket_queue(
        user=request.user,
        view=view,
        status=cleaned.get("status", ""),
        priority=cleaned.get("priority", ""),
        sla_state=cleaned.get("sla_state", ""),
        now=now,
    )
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("view", None)
    return render(
        request,
        "aftersales/ticket_list.html",
        {
            "page": page,
            "view": view,
            "filters": filters,
            "query": query.urlencode(),
            "now": now,
            "views": [
                ("mine", _("Mine")),
                ("team", _("My team")),
                ("unassigned", _("Unassigned")),
                *([("all", _("All"))] if is_manager_or_admin(request.user) else []),
            ],
        },
    )


@login_required
def ticket_create(request):
    customer = None
    if request.GET.get("customer"):
        try:
            customer = customer_get_for_user(user=request.user, pk=int(request.GET["customer"]))
        except ValueError as exc:
            raise Http404 from exc
    form = TicketForm(request.POST or None, request.FILES or None, user=request.user, customer=customer)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                ticket = services.ticket_create(
                    customer=data["customer"],
                    contact=data.get("contact"),
                    contract=data.get("contract"),
                    kind=data["kind"],
                    priority=data["priority"],
                    subject=data["subject"],
                    description=data.get("description", ""),
                    owner=data.get("owner"),
                    created_by=request.user,
                )
                if data.get("attachment"):
                    services.ticket_attach(ticket=ticket, file=data["attachment"], uploaded_by=request.user)
        except ValidationError as exc:
            _add_errors(form, exc, file_field="attachment")
        else:
            messages.success(request, _("Ticket %(reference)s was opened.") % {"reference": ticket.reference})
            return redirect(ticket)
    return render(request, "aftersales/ticket_form.html", {"form": form, "customer": customer})


def _add_errors(form, exc: ValidationError, file_field: str | None = None) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    elif file_field:
        form.add_error(file_field, exc)
    else:
        form.add_error(None, exc)


@login_required
def ticket_edit(request, pk: int):
    ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
    form = TicketEditForm(request.POST or None, instance=ticket, user=request.user)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        try:
            services.ticket_update(ticket=ticket, by=request.user, **changes)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The ticket was saved."))
            return redirect(ticket)
    return render(request, "aftersales/ticket_edit.html", {"form": form, "ticket": ticket})


# --- the detail page ------------------------------------------------------------------------------
def _detail_context(request, ticket, **extra):
    now = timezone.now()
    allowed = services.allowed_transitions(ticket=ticket, now=now)
    context = {
        "ticket": ticket,
        "now": now,
        "sla_state": ticket.sla_state_at(now) if not hasattr(ticket, "sla_state") else ticket.sla_state,
        "transitions": [(name, *TRANSITION_BUTTONS[name]) for name in allowed],
        "comment_form": CommentForm(),
        "assign_form": AssignForm(user=request.user, initial={"owner": ticket.owner_id}),
        "attachment_form": AttachmentForm(),
        "can_assign": is_manager_or_admin(request.user),
        "can_take": ticket.owner_id is None,
        "status_link": request.build_absolute_uri(reverse("aftersales:public_ticket", args=[ticket.public_token])),
        **selectors.ticket_detail(ticket=ticket),
    }
    context.update(extra)
    return context


@login_required
def ticket_detail(request, pk: int):
    ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
    return render(request, "aftersales/ticket_detail.html", _detail_context(request, ticket))


@login_required
@require_POST
def ticket_transition(request, pk: int):
    ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
    form = TransitionForm(request.POST)
    if form.is_valid():
        try:
            services.ticket_transition(
                ticket=ticket, transition=form.cleaned_data["transition"], by=request.user,
                note=form.cleaned_data["note"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            label = TRANSITION_BUTTONS[form.cleaned_data["transition"]][0]
            messages.success(request, _("The ticket moved: %(move)s.") % {"move": label})
    return redirect("aftersales:ticket_detail", pk=ticket.pk)


@login_required
@require_POST
def ticket_assign(request, pk: int):
    ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
    if request.POST.get("take"):
        owner = request.user
    elif request.POST.get("release"):
        owner = None
    else:
        form = AssignForm(request.POST, user=request.user)
        if not form.is_valid():
            messages.error(request, _("You cannot assign tickets to this user."))
            return redirect(ticket)
        owner = form.cleaned_data["owner"]
    try:
        services.ticket_assign(ticket=ticket, by=request.user, owner=owner)
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    return redirect(ticket)


@login_required
@require_POST
def ticket_comment(request, pk: int):
    """Add to the thread; an HTMX request gets the thread partial back."""
    ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        services.ticket_comment_add(
            ticket=ticket, author=request.user, body=form.cleaned_data["body"],
            visibility=form.cleaned_data["visibility"],
        )
        form = CommentForm()
    if request.htmx:
        ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
        return render(request, "aftersales/partials/_thread.html", _detail_context(request, ticket, comment_form=form))
    if form.errors:
        messages.error(request, _("Write something."))
    return redirect(ticket)


@login_required
@require_POST
def ticket_attachment_upload(request, pk: int):
    ticket = selectors.ticket_get_for_user(user=request.user, pk=pk)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.ticket_attach(ticket=ticket, file=form.cleaned_data["file"], uploaded_by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("The file was attached."))
    else:
        messages.error(request, _("Choose a file."))
    return redirect(ticket)


@login_required
def attachment_download(request, pk: int):
    """The file, only to those who see its ticket (a 404 otherwise); always as a download."""
    attachment = TicketAttachment.objects.select_related("ticket").filter(pk=pk).first()
    if attachment is None:
        raise Http404
    selectors.ticket_get_for_user(user=request.user, pk=attachment.ticket_id)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle, as_attachment=True, filename=attachment.original_name,
                            content_type=attachment.content_type)
    response["Cache-Control"] = "private, no-store"
    return response


# --- the customer page panel ------------------------------------------------------------------------
@login_required
def for_customer(request, customer_pk: int):
    """HTMX partial for the customer page: the customer's tickets, CSAT, planned service, form link."""
    customer = customer_get_for_user(user=request.user, pk=customer_pk)
    portal = CustomerPortal.objects.filter(customer=customer, is_active=True).first()
    return render(
        request,
        "aftersales/partials/_for_customer.html",
        {
            "customer": customer,
            "summary": selectors.customer_service_summary(customer=customer),
            "tickets": selectors.customer_tickets(user=request.user, customer=customer),
            "plan_items": list(selectors.customer_plan_items(customer=customer).filter(status=PlanItemStatus.PLANNED)[:10]),
            "portal_url": request.build_absolute_uri(portal.get_absolute_url()) if portal else "",
            "now": timezone.now(),
        },
    )


@login_required
@require_POST
def customer_portal(request, customer_pk: int):
    """Create the customer's public form link, or (`regenerate`) replace it so the old one stops working."""
    customer = customer_get_for_user(user=request.user, pk=customer_pk)
    if request.POST.get("regenerate"):
        services.portal_regenerate(customer=customer)
        messages.success(request, _("A new public form link was made; the old one no longer works."))
    else:
        services.portal_get_or_create(customer=customer)
    return redirect(_next_url(request, reverse("aftersales:customer_plan", args=[customer.pk])))


# --- service plans ------------------------------------------------------------------------------
@login_required
def customer_plan(request, customer_pk: int):
    """The customer's planned service, editable: add items, edit, mark done or cancel, open a ticket."""
    customer = customer_get_for_user(user=request.user, pk=customer_pk)
    form = PlanItemForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        plan = ServicePlan.objects.filter(customer=customer, template__isnull=True).first() or ServicePlan.objects.create(
            customer=customer, name=_("Individual service plan")
        )
        try:
            services.plan_item_save(plan=plan, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The planned service was added."))
            return redirect("aftersales:customer_plan", customer_pk=customer.pk)
    portal = CustomerPortal.objects.filter(customer=customer, is_active=True).first()
    return render(
        request,
        "aftersales/customer_plan.html",
        {
            "customer": customer,
            "items": selectors.customer_plan_items(customer=customer),
            "form": form,
            "portal_url": request.build_absolute_uri(portal.get_absolute_url()) if portal else "",
        },
    )


@login_required
def plan_item_edit(request, pk: int):
    item = selectors.plan_item_get_for_user(user=request.user, pk=pk)
    form = PlanItemForm(request.POST or None, instance=item, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            services.plan_item_save(item=item, by=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The planned service was saved."))
            return redirect("aftersales:customer_plan", customer_pk=item.customer_id)
    return render(request, "aftersales/plan_item_form.html", {"form": form, "item": item})


@login_required
@require_POST
def plan_item_status(request, pk: int):
    item = selectors.plan_item_get_for_user(user=request.user, pk=pk)
    form = PlanItemStatusForm(request.POST)
    if form.is_valid():
        services.plan_item_set_status(item=item, by=request.user, status=form.cleaned_data["status"])
    return redirect(_next_url(request, reverse("aftersales:customer_plan", args=[item.customer_id])))


@login_required
@require_POST
def plan_item_ticket(request, pk: int):
    item = selectors.plan_item_get_for_user(user=request.user, pk=pk)
    ticket = services.plan_item_open_ticket(item=item, by=request.user)
    return redirect(ticket)


@login_required
def plan_item_list(request):
    view = request.GET.get("view") or "mine"
    if view not in ("mine", "unassigned", "all"):
        view = "mine"
    page = Paginator(selectors.plan_items_for_user(user=request.user, view=view), 50).get_page(request.GET.get("page"))
    return render(request, "aftersales/plan_item_list.html", {"page": page, "view": view,
                                                               "today": timezone.localdate()})


# --- public pages -------------------------------------------------------------------------------
def _rate_limited(request) -> bool:
    return services.public_rate_limit_hit(ip=client_ip(request))


def _too_many(request):
    return render(request, "aftersales/public/rate_limited.html", status=429)


@never_cache
def public_ticket_new(request, token: str):
    """The customer's ticket form (per-customer token): validated, honeypot, rate-limited per IP."""
    portal = selectors.portal_for_token(token=token)
    form = PublicTicketForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if _rate_limited(request):
            return _too_many(request)
        if form.is_bot():
            # pretend it worked: a bot learns nothing
            return render(request, "aftersales/public/ticket_received.html", {"ticket": None, "customer": portal.customer})
        if form.is_valid():
            data = form.cleaned_data
            try:
                ticket = services.public_ticket_submit(
                    portal=portal, kind=data["kind"], subject=data["subject"], description=data["description"],
                    name=data["name"], email=data.get("email", ""), phone=data.get("phone", ""),
                    files=[data["attachment"]] if data.get("attachment") else [],
                )
            except ValidationError as exc:
                _add_errors(form, exc, file_field="attachment")
            else:
                return redirect("aftersales:public_ticket", token=ticket.public_token)
    return render(request, "aftersales/public/ticket_new.html", {"form": form, "customer": portal.customer},
                  status=400 if form.is_bound and form.errors else 200)


@never_cache
def public_ticket(request, token: str):
    """The tokenised status link: status, the customer-visible thread, reply, reopen within the window."""
    ticket = selectors.ticket_for_public_token(token=token)
    form = PublicReplyForm(request.POST or None)
    if request.method == "POST":
        if _rate_limited(request):
            return _too_many(request)
        if form.is_bot():
            return redirect("aftersales:public_ticket", token=token)
        if request.POST.get("reopen"):
            try:
                services.ticket_transition(
                    ticket=ticket, transition="reopen", by=None, by_customer=True,
                    note=request.POST.get("body", "")[:2000],
                )
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            return redirect("aftersales:public_ticket", token=token)
        if ticket.status == TicketStatus.CLOSED:
            messages.error(request, _("This ticket is closed. Please open a new one."))
            return redirect("aftersales:public_ticket", token=token)
        if form.is_valid():
            services.ticket_comment_add(ticket=ticket, author=None, by_customer=True, body=form.cleaned_data["body"])
            messages.success(request, _("Your message was sent."))
            return redirect("aftersales:public_ticket", token=token)
    now = timezone.now()
    return render(
        request,
        "aftersales/public/ticket_status.html",
        {
            "ticket": ticket,
            "form": form,
            "comments": list(ticket.comments.all()),
            "can_reopen": ticket.status == TicketStatus.RESOLVED and ticket.can_reopen_at(now),
            "can_reply": ticket.status != TicketStatus.CLOSED,
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@never_cache
def survey(request, token: str):
    """The satisfaction survey: 1-5 and a comment, answered once, until it expires."""
    survey = selectors.survey_for_token(token=token)
    now = timezone.now()
    if survey.answered_at is not None:
        return render(request, "aftersales/public/survey_done.html", {"survey": survey, "already": True})
    if not survey.is_open_at(now):
        return render(request, "aftersales/public/survey_expired.html", {"survey": survey}, status=410)
    form = SurveyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.survey_answer(survey=survey, score=form.cleaned_data["score"],
                                   comment=form.cleaned_data["comment"], now=now)
        except services.SurveyClosed:
            return render(request, "aftersales/public/survey_done.html", {"survey": survey, "already": True})
        return render(request, "aftersales/public/survey_done.html", {"survey": survey, "already": False})
    return render(request, "aftersales/public/survey.html", {"survey": survey, "form": form},
                  status=400 if form.is_bound and form.errors else 200)


