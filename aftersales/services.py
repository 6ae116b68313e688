"""Every write of the after-sales app: tickets, their lifecycle and SLA, comments, attachments,
surveys, the public form and service plans. Views, the API, admin actions and tasks call these."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django_fsm import can_proceed

from accounts.models import Team, User
from accounts.scope import is_manager_or_admin, managed_user_ids
from contracts.models import Contract
from leads.models import Contact, Customer

from . import reminders
from .models import (
    ACTIVE_STATUSES,
    CommentVisibility,
    CustomerPortal,
    PlanItemStatus,
    PlanOwnerSource,
    Priority,
    SatisfactionSurvey,
    ServicePlan,
    ServicePlanItem,
    ServicePlanTemplate,
    ServiceSettings,
    SlaBreach,
    SlaKind,
    SlaPolicy,
    Ticket,
    TicketAttachment,
    TicketComment,
    TicketKind,
    TicketSource,
    TicketStatus,
    TicketStatusChange,
)
from .sla import add_working_time

logger = logging.getLogger(__name__)

# The statuses in which the SLA clock stands still (closed: it never runs again).
CLOCK_STOPPED = {TicketStatus.WAITING, TicketStatus.RESOLVED, TicketStatus.CLOSED}

# The moves a person may ask for, in the order the buttons show them.
TRANSITIONS = ["start", "wait_on_customer", "resume", "resolve", "close", "reopen"]


class TransitionError(ValidationError):
    """The lifecycle refused the move (not allowed from the current status, or outside the window)."""


# --- SLA deadlines ------------------------------------------------------------------------------
def pause_intervals(changes: Iterable[TicketStatusChange]) -> list[tuple[datetime, datetime | None]]:
    """The periods the SLA clock stood still, from the status history (ordered by time)."""
    intervals: list[tuple[datetime, datetime | None]] = []
    paused_since: datetime | None = None
    for change in changes:
        stopped = change.to_status in CLOCK_STOPPED
        if stopped and paused_since is None:
            paused_since = change.at
        elif not stopped and paused_since is not None:
            intervals.append((paused_since, change.at))
            paused_since = None
    if paused_since is not None:
        intervals.append((paused_since, None))
    return intervals


def _snapshot_policy(ticket: Ticket) -> None:
    policy = SlaPolicy.objects.filter(priority=ticket.priority).first()
    if policy is None:
        ticket.sla_response_minutes = ticket.sla_resolution_minutes = None
        ticket.sla_warning_minutes = 0
        ticket.sla_business_hours = False
        return
    ticket.sla_response_minutes = policy.response_minutes
    ticket.sla_resolution_minutes = policy.resolution_minutes
    ticket.sla_warning_minutes = policy.warning_minutes
    ticket.sla_business_hours = policy.business_hours_only


def ticket_compute_deadlines(
    *, ticket: Ticket, changes: Iterable[TicketStatusChange], service_settings: ServiceSettings | None = None
) -> None:
    """Set the response/resolution deadlines (and warning times) from the ticket's SLA targets, the
    working calendar and the time the clock stood still. While the clock is stopped the deadline is
    unknown: the last computed value is kept (the page shows "paused")."""
    calendar = None
    if ticket.sla_business_hours:
        calendar = (service_settings or ServiceSettings.load()).calendar()
    pauses = pause_intervals(changes)
    warning = timedelta(minutes=ticket.sla_warning_minutes)
    for kind, minutes in (("response", ticket.sla_response_minutes), ("resolution", ticket.sla_resolution_minutes)):
        if minutes is None:
            setattr(ticket, f"{kind}_due_at", None)
            setattr(ticket, f"{kind}_warn_at", None)
            continue
        due = add_working_time(ticket.created_at, minutes * 60, calendar, pauses)
        if due is not None:
            setattr(ticket, f"{kind}_due_at", due)
            setattr(ticket, f"{kind}_warn_at", due - warning)


def _history(ticket: Ticket) -> list[TicketStatusChange]:
    return list(TicketStatusChange.objects.filter(ticket=ticket).order_by("at", "id"))


def _record_breach(*, ticket: Ticket, kind: str, due_at: datetime, now: datetime) -> tuple[SlaBreach, bool]:
    """The breach row, created at most once per ticket and kind (the unique constraint decides)."""
    try:
        with transaction.atomic():
            return SlaBreach.objects.get_or_create(
                ticket=ticket, kind=kind, defaults={"due_at": due_at, "detected_at": now, "owner": ticket.owner}
            )
    except IntegrityError:
        return SlaBreach.objects.get(ticket=ticket, kind=kind), False


def _record_late(ticket: Ticket, now: datetime) -> None:
    """A deadline met late (first response or resolution after it) is a breach for the reports."""
    if ticket.first_responded_at and ticket.response_due_at and ticket.first_responded_at > ticket.response_due_at:
        _record_breach(ticket=ticket, kind=SlaKind.RESPONSE, due_at=ticket.response_due_at, now=now)
    if ticket.resolved_at and ticket.resolution_due_at and ticket.resolved_at > ticket.resolution_due_at:
        _record_breach(ticket=ticket, kind=SlaKind.RESOLUTION, due_at=ticket.resolution_due_at, now=now)


# --- tickets ------------------------------------------------------------------------------------
def _queue_team(customer: Customer, owner: User | None, service_settings: ServiceSettings) -> Team | None:
    if service_settings.service_team_id:
        return service_settings.service_team
    if customer.team_id:
        return customer.team
    if owner is not None and owner.team_id:
        return owner.team
    if customer.owner_id and customer.owner.team_id:
        return customer.owner.team
    return None


def assignable_owners(*, by: User):
    """The users `by` may make owner of a ticket: a manager their people, a rep only themselves."""
    qs = User.objects.filter(is_active=True)
    ids = managed_user_ids(by)
    if ids is None:
        return qs
    if not is_manager_or_admin(by):
        return qs.filter(pk=by.pk)
    return qs.filter(pk__in=ids)


def _check_owner(by: User | None, owner: User | None) -> None:
    if owner is None or by is None:
        return
    if not assignable_owners(by=by).filter(pk=owner.pk).exists():
        raise ValidationError({"owner": _("You cannot assign tickets to this user.")})


def _check_contact(customer: Customer, contact: Contact | None) -> None:
    if contact is not None and contact.customer_id != customer.pk:
        raise ValidationError({"contact": _("The contact does not belong to this customer.")})


@transaction.atomic
def ticket_create(
    *,
    customer: Customer,
    kind: TicketKind,
    subject: str,
    description: str = "",
    priority: str = Priority.NORMAL,
    contact: Contact | None = None,
    contract: Contract | None = None,
    owner: User | None = None,
    created_by: User | None = None,
    source: str = TicketSource.STAFF,
    requester_name: str = "",
    requester_email: str = "",
    requester_phone: str = "",
    now: datetime | None = None,
) -> Ticket:
    """Open a ticket: copy the SLA targets of its priority, compute its deadlines, record the opening."""
    now = now or timezone.now()
    _check_contact(customer, contact)
    _check_owner(created_by, owner)
    if contract is not None and contract.customer_id != customer.pk:
        raise ValidationError({"contract": _("The contract does not belong to this customer.")})
    service_settings = ServiceSettings.load()
    ticket = Ticket(
        customer=customer,
        contact=contact,
        kind=kind,
        subject=subject,
        description=description,
        priority=priority,
        owner=owner,
        team=_queue_team(customer, owner, service_settings),
        source=source,
        created_by=created_by,
        requester_name=requester_name,
        requester_email=requester_email,
        requester_phone=requester_phone,
        created_at=now,
    )
    ticket.contract = contract
    _snapshot_policy(ticket)
    opening = TicketStatusChange(from_status="", to_status=TicketStatus.OPEN, by=created_by, at=now,
                                 by_customer=source == TicketSource.PUBLIC_FORM)
    ticket_compute_deadlines(ticket=ticket, changes=[opening], service_settings=service_settings)
    ticket.full_clean(exclude=["status", "contact", "owner", "team", "kind", "customer", "created_by"])
    ticket.save()
    opening.ticket = ticket
    opening.save()
    if owner is not None and owner != created_by:
        transaction.on_commit(lambda: reminders.ticket_assigned(ticket_id=ticket.pk))
    return ticket


EDITABLE_FIELDS = ("subject", "description", "kind", "priority", "contact", "contract")


@transaction.atomic
def ticket_update(*, ticket: Ticket, by: User, **changes: Any) -> Ticket:
    """Edit the ticket's details. A new priority takes the SLA targets of that priority, counted from
    the opening (so raising the priority can make the ticket due, or breached, at once)."""
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    for field, value in changes.items():
        setattr(locked, field, value)
    _check_contact(locked.customer, locked.contact)
    if locked.contract is not None and locked.contract.customer_id != locked.customer_id:
        raise ValidationError({"contract": _("The contract does not belong to this customer.")})
    if "priority" in changes and changes["priority"] != ticket.priority:
        _snapshot_policy(locked)
        locked.response_warned_at = locked.resolution_warned_at = None
        ticket_compute_deadlines(ticket=locked, changes=_history(locked))
    locked.version += 1
    locked.save()
    return locked


@transaction.atomic
def ticket_assign(*, ticket: Ticket, by: User, owner: User | None) -> Ticket:
    """Give the ticket an owner (or send it back to the team queue). A rep may take an unassigned
    ticket or hand back their own; a manager assigns within their teams. Writes an internal note."""
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if locked.owner_id == (owner.pk if owner else None):
        return locked
    if not is_manager_or_admin(by):
        taking = owner is not None and owner.pk == by.pk and locked.owner_id is None
        handing_back = owner is None and locked.owner_id == by.pk
        if not (taking or handing_back):
            raise PermissionDenied(_("Only a manager can assign this ticket."))
    else:
        _check_owner(by, owner)
    previous = locked.owner
    locked.owner = owner
    if locked.team_id is None and owner is not None:
        locked.team_id = owner.team_id
    locked.version += 1
    locked.save(update_fields=["owner", "team", "version", "updated_at"])
    if owner is None:
        text = _("%(user)s returned the ticket to the team queue.") % {"user": by.display_name}
    else:
        text = _("%(user)s assigned the ticket to %(owner)s.") % {"user": by.display_name, "owner": owner.display_name}
    TicketComment.objects.create(ticket=locked, author=by, body=text, visibility=CommentVisibility.INTERNAL)
    if owner is not None and owner != by:
        transaction.on_commit(lambda: reminders.ticket_assigned(ticket_id=locked.pk))
    logger.info("ticket %s owner %s -> %s by %s", locked.pk, previous and previous.pk, owner and owner.pk, by.pk)
    return locked


def allowed_transitions(*, ticket: Ticket, now: datetime | None = None) -> list[str]:
    """The moves the lifecycle allows from the ticket's current status (conditions included)."""
    ticket._transition_at = now or timezone.now()
    names = {t.name for t in ticket.get_available_status_transitions()}
    return [name for name in TRANSITIONS if name in names]


@transaction.atomic
def ticket_transition(
    *,
    ticket: Ticket,
    transition: str,
    by: User | None,
    note: str = "",
    by_customer: bool = False,
    now: datetime | None = None,
) -> Ticket:
    """Move the ticket through its lifecycle and record who/when/why.

    Side effects: resuming (or reopening) restarts the SLA clock, which moves the deadlines by the time
    it stood still; a late first response or resolution is recorded as a breach; resolving sends the
    satisfaction survey; starting an unassigned ticket makes the person who starts it its owner.
    """
    now = now or timezone.now()
    if transition not in TRANSITIONS:
        raise TransitionError(_("Unknown move."), code="unknown")
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    locked._transition_at = now
    method = getattr(locked, transition)
    if not can_proceed(method):
        if transition == "reopen" and locked.status == TicketStatus.RESOLVED:
            raise TransitionError(_("The reopen window of this ticket has passed."), code="reopen_window_passed")
        raise TransitionError(
            _("A ticket that is %(status)s cannot be moved this way.") % {"status": locked.get_status_display()},
            code="not_allowed",
        )
    from_status = locked.status
    service_settings = ServiceSettings.load()
    if transition == "resolve":
        method(at=now, reopen_window_days=service_settings.reopen_window_days)
    else:
        method(at=now)
    if transition == "start" and locked.owner_id is None and by is not None and not by_customer:
        locked.owner = by
    change = TicketStatusChange.objects.create(
        ticket=locked, from_status=from_status, to_status=locked.status, by=by, by_customer=by_customer, at=now,
        note=note,
    )
    if from_status in CLOCK_STOPPED and locked.status not in CLOCK_STOPPED:
        ticket_compute_deadlines(ticket=locked, changes=_history(locked), service_settings=service_settings)
    locked.version += 1
    locked.save()
    _record_late(locked, now)
    if transition == "resolve":
        survey_send(ticket=locked, now=now, service_settings=service_settings)
    logger.info("ticket %s %s -> %s (%s)", locked.pk, from_status, locked.status, change.pk)
    return locked


@transaction.atomic
def ticket_comment_add(
    *,
    ticket: Ticket,
    body: str,
    author: User | None,
    visibility: str = CommentVisibility.INTERNAL,
    by_customer: bool = False,
    now: datetime | None = None,
) -> TicketComment:
    """Add to the thread. A reply to the customer is the ticket's first response if none came yet;
    the customer answering a ticket that waits on them puts it back in progress."""
    now = now or timezone.now()
    body = body.strip()
    if not body:
        raise ValidationError({"body": _("Write something.")})
    if by_customer:
        visibility = CommentVisibility.PUBLIC
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    comment = TicketComment.objects.create(
        ticket=locked, author=author, by_customer=by_customer, visibility=visibility, body=body, created_at=now
    )
    if (
        not by_customer
        and visibility == CommentVisibility.PUBLIC
        and locked.first_responded_at is None
        and locked.status in ACTIVE_STATUSES
    ):
        locked.first_responded_at = now
        locked.version += 1
        locked.save(update_fields=["first_responded_at", "version", "updated_at"])
        _record_late(locked, now)
    if by_customer and locked.status == TicketStatus.WAITING:
        ticket_transition(
            ticket=locked, transition="resume", by=None, by_customer=True, now=now,
            note=_("The customer replied."),
        )
    elif by_customer:
        transaction.on_commit(lambda: reminders.ticket_customer_replied(ticket_id=locked.pk))
    return comment


# --- attachments --------------------------------------------------------------------------------
# extension -> (content type, magic prefixes; None: text that must decode as UTF-8)
ALLOWED_ATTACHMENTS: dict[str, tuple[str, tuple[bytes, ...] | None]] = {
    "pdf": ("application/pdf", (b"%PDF-",)),
    "png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    "jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    "gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    "webp": ("image/webp", (b"RIFF",)),
    "txt": ("text/plain", None),
    "csv": ("text/csv", None),
    "log": ("text/plain", None),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", (b"PK\x03\x04",)),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (b"PK\x03\x04",)),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", (b"PK\x03\x04",)),
    "zip": ("application/zip", (b"PK\x03\x04",)),
}
MAX_ATTACHMENT_BYTES = getattr(settings, "AFTERSALES_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024)


def attachment_validate(file: UploadedFile) -> str:
    """Check the file's size, extension and content (its first bytes must match the extension).
    Returns the content type to serve it with (ours, never the browser's)."""
    name = file.name or ""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext not in ALLOWED_ATTACHMENTS:
        raise ValidationError(
            _("This file type is not allowed. Allowed: %(types)s.") % {"types": ", ".join(sorted(ALLOWED_ATTACHMENTS))},
            code="file_type",
        )
    if file.size is None or file.size > MAX_ATTACHMENT_BYTES:
        raise ValidationError(
            _("The file is too large (at most %(mb)s MB).") % {"mb": MAX_ATTACHMENT_BYTES // (1024 * 1024)},
            code="file_size",
        )
    if file.size == 0:
        raise ValidationError(_("The file is empty."), code="file_empty")
    content_type, magic = ALLOWED_ATTACHMENTS[ext]
    file.seek(0)
    head = file.read(2048)
    file.seek(0)
    if magic is None:
        try:
            head.decode("utf-8") if len(head) < 2048 else head[:2000].decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            try:
                head.decode("gb18030")
            except UnicodeDecodeError:
                raise ValidationError(_("The file's content does not match its type."), code="file_content") from None
        if b"\x00" in head:
            raise ValidationError(_("The file's content does not match its type."), code="file_content")
    elif not head.startswith(magic):
        raise ValidationError(_("The file's content does not match its type."), code="file_content")
    return content_type


@transaction.atomic
def ticket_attach(
    *, ticket: Ticket, file: UploadedFile, uploaded_by: User | None, by_customer: bool = False
) -> TicketAttachment:
    content_type = attachment_validate(file)
    return TicketAttachment.objects.create(
        ticket=ticket,
        file=file,
        original_name=(file.name or "file")[-200:],
        content_type=content_type,
        size=file.size,
        uploaded_by=uploaded_by,
        by_customer=by_customer,
    )


# --- SLA scan (Celery beat) ---------------------------------------------------------------------
def sla_recipients(ticket: Ticket) -> list[User]:
    """Who hears about the ticket's SLA: its owner and the owner's team manager (for an unassigned
    ticket: the manager of its queue's team). A manager who owns the ticket: the manager above."""
    recipients: list[User] = []
    if ticket.owner is not None and ticket.owner.is_active:
        recipients.append(ticket.owner)
    team = ticket.owner.team if ticket.owner is not None and ticket.owner.team_id else ticket.team
    while team is not None:
        manager = team.manager
        if manager is not None and manager.is_active and manager not in recipients:
            recipients.append(manager)
            break
        if manager is not None and manager == ticket.owner:
            team = team.parent
            continue
        break
    return recipients


@transaction.atomic
def _breach_and_notify(*, ticket_id: int, kind: str, now: datetime) -> bool:
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("owner__team__manager", "team__manager", "customer")
        .get(pk=ticket_id)
    )
    due_at = ticket.response_due_at if kind == SlaKind.RESPONSE else ticket.resolution_due_at
    still_breached = ticket.status in ACTIVE_STATUSES and due_at is not None and due_at <= now
    if kind == SlaKind.RESPONSE:
        still_breached = still_breached and ticket.first_responded_at is None
    if not still_breached:
        return False
    breach, created = _record_breach(ticket=ticket, kind=kind, due_at=due_at, now=now)
    if breach.notified_at is not None:
        return False
    # claim the notification: only one scan (even two beats at once) gets the row count 1
    if not SlaBreach.objects.filter(pk=breach.pk, notified_at__isnull=True).update(notified_at=now):
        return False
    reminders.sla_breached(ticket=ticket, kind=kind, recipients=sla_recipients(ticket), now=now)
    return True


@transaction.atomic
def _warn(*, ticket_id: int, kind: str, now: datetime) -> bool:
    field = f"{kind}_warned_at"
    claimed = Ticket.objects.filter(
        pk=ticket_id, status__in=ACTIVE_STATUSES, **{f"{field}__isnull": True, f"{kind}_warn_at__lte": now}
    ).update(**{field: now})
    if not claimed:
        return False
    ticket = Ticket.objects.select_related("owner__team__manager", "team__manager", "customer").get(pk=ticket_id)
    reminders.sla_approaching(ticket=ticket, kind=kind, recipients=sla_recipients(ticket), now=now)
    return True


def sla_scan(*, now: datetime | None = None) -> dict[str, int]:
    """Find tickets past (or near) a deadline: record each breach once and notify the owner and their
    manager exactly once per ticket and kind; warn once before a deadline. Also closes resolved
    tickets whose reopen window has passed and reminds owners of planned service that is due."""
    now = now or timezone.now()
    counts = {"breached": 0, "warned": 0, "closed": 0, "plan_items": 0}
    active = Ticket.objects.filter(status__in=ACTIVE_STATUSES)
    due = {
        SlaKind.RESPONSE: active.filter(first_responded_at__isnull=True, response_due_at__lte=now),
        SlaKind.RESOLUTION: active.filter(resolution_due_at__lte=now),
    }
    for kind, qs in due.items():
        notified = SlaBreach.objects.filter(ticket=OuterRef("pk"), kind=kind, notified_at__isnull=False)
        unnotified = qs.exclude(Exists(notified))
        for ticket_id in unnotified.values_list("pk", flat=True):
            counts["breached"] += _breach_and_notify(ticket_id=ticket_id, kind=kind, now=now)
    warn = {
        SlaKind.RESPONSE: active.filter(
            first_responded_at__isnull=True, response_warn_at__lte=now, response_due_at__gt=now,
            response_warned_at__isnull=True,
        ),
        SlaKind.RESOLUTION: active.filter(
            resolution_warn_at__lte=now, resolution_due_at__gt=now, resolution_warned_at__isnull=True
        ),
    }
    for kind, qs in warn.items():
        for ticket_id in qs.values_list("pk", flat=True):
            counts["warned"] += _warn(ticket_id=ticket_id, kind=kind, now=now)
    expired = Ticket.objects.filter(status=TicketStatus.RESOLVED, reopen_until__lt=now)
    for ticket in expired.only("pk"):
        try:
            ticket_transition(
                ticket=ticket, transition="close", by=None, now=now,
                note=_("Closed automatically: the reopen window has passed."),
            )
            counts["closed"] += 1
        except TransitionError:  # moved meanwhile
            continue
    counts["plan_items"] = plan_items_remind(today=timezone.localdate(now), now=now)
    return counts


# --- satisfaction surveys -----------------------------------------------------------------------
def survey_recipient(ticket: Ticket) -> str:
    if ticket.contact_id and ticket.contact.email:
        return ticket.contact.email
    if ticket.requester_email:
        return ticket.requester_email
    return ticket.customer.email or ""


def survey_send(
    *, ticket: Ticket, now: datetime | None = None, service_settings: ServiceSettings | None = None
) -> SatisfactionSurvey | None:
    """Create (or renew, if unanswered) the ticket's survey and e-mail its link after commit.
    One survey per ticket: a ticket resolved again after its survey was answered gets none."""
    now = now or timezone.now()
    service_settings = service_settings or ServiceSettings.load()
    expires_at = now + timedelta(days=service_settings.survey_valid_days)
    recipient = survey_recipient(ticket)
    survey, created = SatisfactionSurvey.objects.get_or_create(
        ticket=ticket, defaults={"expires_at": expires_at, "sent_to": recipient, "created_at": now}
    )
    if not created:
        if survey.answered_at is not None:
            return None
        survey.expires_at = expires_at
        survey.sent_to = recipient
        survey.save(update_fields=["expires_at", "sent_to"])
    if recipient:
        from .tasks import survey_email_send as task

        transaction.on_commit(lambda: task.delay(survey.pk))
    return survey


def survey_email_send(*, survey_id: int) -> bool:
    """E-mail the survey link (in the site's language). Marks the survey as sent."""
    survey = SatisfactionSurvey.objects.select_related("ticket__customer", "ticket__contact").get(pk=survey_id)
    if not survey.sent_to or survey.answered_at is not None:
        return False
    with translation.override(settings.LANGUAGE_CODE):
        context = {
            "survey": survey,
            "ticket": survey.ticket,
            "url": settings.SITE_URL.rstrip("/") + survey.get_absolute_url(),
        }
        subject = _("How did we do? %(reference)s %(subject)s") % {
            "reference": survey.ticket.reference, "subject": survey.ticket.subject,
        }
        text = render_to_string("aftersales/email/survey.txt", context)
    message = EmailMultiAlternatives(subject=" ".join(subject.split()), body=text, to=[survey.sent_to])
    message.send()
    SatisfactionSurvey.objects.filter(pk=survey.pk).update(sent_at=timezone.now())
    return True


class SurveyClosed(ValidationError):
    """The survey was already answered or has expired."""


def survey_answer(*, survey: SatisfactionSurvey, score: int, comment: str = "", now: datetime | None = None) -> None:
    """Record the answer, once: a conditional update claims the unanswered, unexpired survey."""
    now = now or timezone.now()
    if not 1 <= int(score) <= 5:
        raise ValidationError({"score": _("Choose a score from 1 to 5.")})
    claimed = SatisfactionSurvey.objects.filter(pk=survey.pk, answered_at__isnull=True, expires_at__gt=now).update(
        answered_at=now, score=int(score), comment=comment.strip()
    )
    if not claimed:
        raise SurveyClosed(_("This survey has already been answered or has expired."))


# --- the public form ----------------------------------------------------------------------------
@transaction.atomic
def portal_get_or_create(*, customer: Customer) -> CustomerPortal:
    portal, _created = CustomerPortal.objects.get_or_create(customer=customer)
    return portal


@transaction.atomic
def portal_regenerate(*, customer: Customer) -> CustomerPortal:
    """A new token for the customer's public form: the old link stops working."""
    from .models import new_token

    portal, _created = CustomerPortal.objects.select_for_update().get_or_create(customer=customer)
    portal.token = new_token()
    portal.is_active = True
    portal.save(update_fields=["token", "is_active"])
    return portal


def public_rate_limit_hit(*, ip: str, now: datetime | None = None) -> bool:
    """Count one public submission from `ip`; True when the hourly limit is exceeded.
    A fixed one-hour window in the shared cache (Redis), so every web process counts together."""
    now = now or timezone.now()
    limit = ServiceSettings.load().public_form_limit_per_hour
    key = f"aftersales:public:{ip}:{int(now.timestamp()) // 3600}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > limit


@transaction.atomic
def public_ticket_submit(
    *,
    portal: CustomerPortal,
    kind: TicketKind,
    subject: str,
    description: str,
    name: str,
    email: str = "",
    phone: str = "",
    priority: str = Priority.NORMAL,
    files: Iterable[UploadedFile] = (),
    source: str = TicketSource.PUBLIC_FORM,
    now: datetime | None = None,
) -> Ticket:
    """A ticket opened by the customer: the contact is matched by e-mail; it waits in the queue."""
    if not portal.is_active:
        raise PermissionDenied
    if not email and not phone:
        raise ValidationError({"email": _("Give an e-mail address or a phone number.")})
    customer = portal.customer
    contact = None
    if email:
        contact = Contact.objects.filter(customer=customer, email__iexact=email).first()
    ticket = ticket_create(
        customer=customer, kind=kind, subject=subject, description=description, priority=priority,
        contact=contact, source=source, requester_name=name, requester_email=email, requester_phone=phone,
        now=now,
    )
    for file in files:
        ticket_attach(ticket=ticket, file=file, uploaded_by=None, by_customer=True)
    transaction.on_commit(lambda: reminders.ticket_opened_by_customer(ticket_id=ticket.pk))
    return ticket


# --- service plans ------------------------------------------------------------------------------
@transaction.atomic
def service_plan_apply(
    *,
    template: ServicePlanTemplate,
    customer: Customer,
    start: date,
    owner: User | None = None,
    name: str = "",
    contract: Contract | None = None,
) -> ServicePlan:
    """Create the customer's plan from a template: one planned item per template step, due
    `offset_days` after `start`, owned by `owner` (the contract owner) or left in the service team's
    queue, as the template says."""
    plan = ServicePlan.objects.create(
        customer=customer, template=template, name=name or template.name, contract=contract
    )
    if template.owner_source == PlanOwnerSource.SERVICE_TEAM:
        item_owner, team = None, template.service_team or ServiceSettings.load().service_team or customer.team
    else:
        item_owner = owner or customer.owner
        team = (item_owner.team if item_owner and item_owner.team_id else None) or customer.team
    ServicePlanItem.objects.bulk_create(
        ServicePlanItem(
            plan=plan, customer=customer, title=item.title, kind=item.kind, notes=item.notes,
            due_date=start + timedelta(days=item.offset_days), owner=item_owner, team=team,
        )
        for item in template.items.select_related("kind")
    )
    return plan


def contract_signed_apply_plans(
    *, customer: Customer, owner: User | None, signed_on: date, label: str = "", contract: Contract | None = None
) -> list[ServicePlan]:
    """Apply every active template to a customer whose contract was just signed (once per contract:
    a repeated signal finds the plans already there)."""
    plans = []
    for template in ServicePlanTemplate.objects.filter(is_active=True).order_by("name"):
        if contract is not None and ServicePlan.objects.filter(template=template, contract=contract).exists():
            continue
        name = f"{template.name} · {label}" if label else template.name
        try:
            with transaction.atomic():
                plans.append(
                    service_plan_apply(
                        template=template, customer=customer, start=signed_on, owner=owner, name=name[:200],
                        contract=contract,
                    )
                )
        except IntegrityError:  # the same signal delivered twice at once: the other one made it
            continue
    return plans


@transaction.atomic
def plan_item_save(
    *,
    item: ServicePlanItem | None = None,
    plan: ServicePlan | None = None,
    by: User,
    title: str,
    kind: TicketKind,
    due_date: date,
    owner: User | None,
    notes: str = "",
) -> ServicePlanItem:
    """Add an item to a customer's plan, or edit one (per-customer editing of the plan)."""
    if item is None:
        if plan is None:
            raise ValueError("plan or item")
        item = ServicePlanItem(plan=plan, customer=plan.customer, team=plan.customer.team)
    elif item.owner_id != (owner.pk if owner else None):
        item.reminded_at = None
    if owner is not None and (item.owner_id != owner.pk):
        _check_owner(by, owner)
    if item.pk and item.due_date != due_date:
        item.reminded_at = None
    item.title, item.kind, item.due_date, item.owner, item.notes = title, kind, due_date, owner, notes
    if owner is not None and owner.team_id:
        item.team_id = owner.team_id
    item.save()
    return item


@transaction.atomic
def plan_item_set_status(*, item: ServicePlanItem, by: User, status: str, now: datetime | None = None) -> ServicePlanItem:
    if status not in PlanItemStatus.values:
        raise ValidationError({"status": _("Unknown status.")})
    locked = ServicePlanItem.objects.select_for_update().get(pk=item.pk)
    locked.status = status
    locked.done_at = (now or timezone.now()) if status == PlanItemStatus.DONE else None
    locked.save(update_fields=["status", "done_at"])
    return locked


@transaction.atomic
def plan_item_open_ticket(*, item: ServicePlanItem, by: User, now: datetime | None = None) -> Ticket:
    """Turn a planned item into a ticket (e.g. the training is being scheduled), linked to the item."""
    locked = ServicePlanItem.objects.select_for_update().select_related("customer").get(pk=item.pk)
    if locked.ticket_id:
        return locked.ticket
    ticket = ticket_create(
        customer=locked.customer, kind=locked.kind, subject=locked.title, description=locked.notes,
        owner=locked.owner, created_by=by if locked.owner is None or locked.owner == by else None,
        source=TicketSource.SERVICE_PLAN, now=now,
    )
    locked.ticket = ticket
    locked.save(update_fields=["ticket"])
    return ticket


def plan_items_remind(*, today: date, now: datetime) -> int:
    """Remind owners (or the team manager for queue items) once of planned service that is due."""
    sent = 0
    due = ServicePlanItem.objects.filter(status=PlanItemStatus.PLANNED, due_date__lte=today, reminded_at__isnull=True)
    for item_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            if not ServicePlanItem.objects.filter(pk=item_id, reminded_at__isnull=True).update(reminded_at=now):
                continue
            item = ServicePlanItem.objects.select_related("owner", "team__manager", "customer").get(pk=item_id)
            recipients = [item.owner] if item.owner else ([item.team.manager] if item.team and item.team.manager else [])
            reminders.plan_item_due(item=item, recipients=[u for u in recipients if u.is_active], now=now)
            sent += 1
    return sent
