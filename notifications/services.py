"""Writes of the reminder mechanism.

The flow, every minute (tasks.reminders_scan):
1. `sources_collect`: each registered source upserts the reminders due in its window (from where the
   previous successful collect ended, so an outage is covered when the workers come back);
2. `reminders_dispatch`: due pending reminders are claimed with FOR UPDATE SKIP LOCKED (two scans never
   take the same row) and fanned out into one Delivery per wanted channel, UNIQUE per (reminder, due time,
   channel);
3. `deliveries_send` (one task per channel, so a slow webhook never holds up email): each pending
   delivery is claimed in its own transaction (FOR UPDATE SKIP LOCKED), sent, and marked sent in that same
   transaction. A failure schedules the next attempt with exponential back-off and lets the loop go on with
   the other deliveries; after NOTIFICATIONS_MAX_ATTEMPTS it is marked failed (admin: failed deliveries).

A worker killed mid-send leaves its transaction uncommitted: PostgreSQL releases the row lock, the
delivery is still pending, and the next scan sends it. The in-app notification is written in the same
transaction, so it exists exactly once. An email or webhook call accepted by the far side in the instant
before the commit would be repeated once; it carries the delivery's idempotency key (email Message-ID,
`Idempotency-Key` header) so the receiving side can recognise the repeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User

from . import registry
from .channels import SENDERS, Message, in_language, webhook_for
from .models import (
    MAX_LEAD_MINUTES,
    Channel,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationPreference,
    Reminder,
    ReminderStatus,
    SourceCursor,
    TeamWebhook,
)

logger = logging.getLogger(__name__)

DEFAULT_LEAD_MINUTES = 30
COLLECT_OVERLAP = timedelta(minutes=10)
FIRST_COLLECT_LOOKBACK = timedelta(hours=1)
DISPATCH_BATCH = 200


def late_after() -> timedelta:
    """A delivery sent this long after its due time is marked late (catch-up after an outage)."""
    return timedelta(seconds=getattr(settings, "NOTIFICATIONS_LATE_AFTER_SECONDS", 300))


def max_attempts() -> int:
    return getattr(settings, "NOTIFICATIONS_MAX_ATTEMPTS", 8)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the n-th failed attempt, at most an hour."""
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


# --- preferences ------------------------------------------------------------------------------


def preferences_for(user_ids: Iterable[int]) -> dict[int, NotificationPreference]:
    """Each user's preference (an unsaved default for users who never set one). One query."""
    ids = set(user_ids)
    found = {pref.user_id: pref for pref in NotificationPreference.objects.filter(user_id__in=ids)}
    return {uid: found.get(uid) or NotificationPreference(user_id=uid) for uid in ids}


@transaction.atomic
def preference_update(
    *, user: User, in_app: bool, email: bool, webhook: bool, lead_minutes: int
) -> NotificationPreference:
    pref, _created = NotificationPreference.objects.update_or_create(
        user=user,
        defaults={
            "in_app": in_app,
            "email": email,
            "webhook": webhook,
            "lead_minutes": max(0, min(int(lead_minutes), MAX_LEAD_MINUTES)),
        },
    )
    return pref


def channels_for(user: User, pref: NotificationPreference, hooks: dict[int | None, TeamWebhook]) -> list[str]:
    channels = []
    if pref.in_app:
        channels.append(Channel.IN_APP)
    if pref.email and user.email:
        channels.append(Channel.EMAIL)
    if pref.webhook and webhook_for(user, hooks) is not None:
        channels.append(Channel.WEBHOOK)
    return channels


# --- scheduling (imperative API for apps that may import notifications) -----------------------


def _target_ref(target: Any) -> tuple[ContentType | None, int | None]:
    if target is None:
        return None, None
    return ContentType.objects.get_for_model(target), target.pk


@transaction.atomic
def reminder_schedule(
    *,
    source: str,
    key: str,
    recipient: User,
    due_at: datetime,
    title: str = "",
    body: str = "",
    link: str = "",
    target: Any = None,
    data: dict | None = None,
) -> Reminder:
    """Create or move the reminder (source, key, recipient). A new due time makes it pending again (and
    allows new deliveries); the same due time changes nothing that was already sent."""
    content_type, object_id = _target_ref(target)
    fields = {
        "title": str(title)[:255],
        "body": str(body),
        "link": str(link)[:500],
        "content_type": content_type,
        "object_id": object_id,
        "data": data or {},
    }
    reminder, created = Reminder.objects.select_for_update().get_or_create(
        source=source, key=key, recipient=recipient, defaults={"due_at": due_at, "event_at": due_at, **fields}
    )
    if created:
        return reminder
    for name, value in fields.items():
        setattr(reminder, name, value)
    if reminder.due_at != due_at:
        reminder.due_at = reminder.event_at = due_at
        reminder.status = ReminderStatus.PENDING
        reminder.late = False
        reminder.dispatched_at = None
    elif reminder.status == ReminderStatus.CANCELLED:
        reminder.status = ReminderStatus.PENDING
    reminder.save()
    return reminder


@transaction.atomic
def reminder_cancel(*, source: str, key: str, recipient: User | None = None) -> int:
    """Cancel the pending reminder(s) (source, key[, recipient]) and their unsent deliveries."""
    reminders = Reminder.objects.filter(source=source, key=key)
    if recipient is not None:
        reminders = reminders.filter(recipient=recipient)
    ids = list(reminders.values_list("pk", flat=True))
    Delivery.objects.filter(reminder_id__in=ids, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.SKIPPED, updated_at=timezone.now()
    )
    return Reminder.objects.filter(pk__in=ids, status=ReminderStatus.PENDING).update(
        status=ReminderStatus.CANCELLED, updated_at=timezone.now()
    )


def notify(
    *, source: str, key: str, recipient: User, title: str, body: str = "", link: str = "", target: Any = None
) -> Reminder:
    """Tell `recipient` now, through their channels. `key` identifies the event: notifying the same
    (source, key, recipient) again sends nothing new. Delivery starts right after the commit."""
    content_type, object_id = _target_ref(target)
    now = timezone.now()
    reminder, created = Reminder.objects.get_or_create(
        source=source,
        key=key,
        recipient=recipient,
        defaults={
            "due_at": now, "event_at": now, "title": str(title)[:255], "body": str(body), "link": str(link)[:500],
            "content_type": content_type, "object_id": object_id,
        },
    )
    if not created:
        return reminder

    def _queue() -> None:
        from .tasks import reminders_deliver

        reminders_deliver.delay([reminder.pk])

    # robust: a broker outage must not fail the caller's request; the minute scan delivers it anyway
    transaction.on_commit(_queue, robust=True)
    return reminder


# --- 1. collect -------------------------------------------------------------------------------


def _upsert(source: registry.ReminderSource, items: list[dict], now: datetime) -> int:
    """Write the source's items as reminders. Returns how many were created or moved."""
    if not items:
        return 0
    existing = {
        (r.key, r.recipient_id): r
        for r in Reminder.objects.filter(source=source.key, key__in={str(item["key"]) for item in items})
    }
    leads = (
        {uid: pref.lead_minutes for uid, pref in preferences_for(item["recipient_id"] for item in items).items()}
        if source.lead
        else {}
    )
    new: list[Reminder] = []
    moved: list[Reminder] = []
    for item in items:
        key, recipient_id, at = str(item["key"]), item["recipient_id"], item["at"]
        due = at - timedelta(minutes=leads.get(recipient_id, DEFAULT_LEAD_MINUTES)) if source.lead else at
        changed_at = item.get("changed_at")
        if changed_at is not None and due < changed_at:
            due = changed_at  # it could not have been reminded before it existed: not late
        content_type, object_id = _target_ref(item.get("target"))
        reminder = existing.get((key, recipient_id))
        if reminder is None:
            new.append(
                Reminder(
                    source=source.key, key=key, recipient_id=recipient_id, event_at=at, due_at=due,
                    content_type=content_type, object_id=object_id, data=item.get("data") or {},
                )
            )
        elif reminder.event_at != at or (reminder.status == ReminderStatus.PENDING and reminder.due_at != due):
            reminder.event_at, reminder.due_at = at, due
            reminder.status, reminder.late, reminder.dispatched_at = ReminderStatus.PENDING, False, None
            reminder.content_type, reminder.object_id = content_type, object_id
            reminder.data = item.get("data") or {}
            moved.append(reminder)
    Reminder.objects.bulk_create(new, ignore_conflicts=True)
    for reminder in moved:
        reminder.save()
    return len(new) + len(moved)


def source_collect(source: registry.ReminderSource, *, now: datetime) -> int:
    """Collect one source over [its cursor - overlap, now (+ the longest lead)] and advance the cursor.
    Runs in one transaction: a failing source keeps its cursor and is collected again next minute."""
    with transaction.atomic():
        cursor, _created = SourceCursor.objects.select_for_update().get_or_create(
            source=source.key, defaults={"scanned_until": now - FIRST_COLLECT_LOOKBACK}
        )
        if source.every and not _created and now - cursor.scanned_until < timedelta(seconds=source.every):
            return 0
        start = cursor.scanned_until - COLLECT_OVERLAP
        end = now + timedelta(minutes=MAX_LEAD_MINUTES) if source.lead else now
        items = list(source.collect(start=start, end=end))
        count = _upsert(source, items, now)
        if now > cursor.scanned_until:
            cursor.scanned_until = now
            cursor.save(update_fields=["scanned_until"])
    return count


def sources_collect(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    counts: dict[str, int] = {}
    for source in registry.sources():
        if source.collect is None:
            continue
        try:
            counts[source.key] = source_collect(source, now=now)
        except Exception:
            logger.exception("reminder source %s failed to collect", source.key)
            counts[source.key] = -1
    return counts


# --- 2. dispatch ------------------------------------------------------------------------------


def render_message(reminder: Reminder, *, late: bool = False) -> Message | None:
    """The reminder's message in the recipient's language, or None if its source says it is moot."""
    source = registry.get_source(reminder.source)
    with in_language(reminder.recipient):
        if source is not None and source.render is not None:
            content = source.render(reminder)
            if content is None:
                return None
        else:
            content = {"title": reminder.title, "body": reminder.body, "link": reminder.link}
        return Message(
            title=str(content.get("title") or registry.source_label(reminder.source)),
            body=str(content.get("body") or ""),
            link=str(content.get("link") or ""),
            html=str(content.get("html") or ""),
            late=late,
            due_at=reminder.due_at,
            source=reminder.source,
        )


def reminders_dispatch(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> int:
    """Claim up to `limit` due pending reminders and fan each out into its deliveries. Returns the number
    claimed. Concurrent callers skip each other's rows (SKIP LOCKED); a crash rolls the claim back."""
    now = now or timezone.now()
    with transaction.atomic():
        batch = list(
            Reminder.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=ReminderStatus.PENDING, due_at__lte=now)
            .select_related("recipient")
            .order_by("due_at", "id")[:limit]
        )
        if not batch:
            return 0
        prefs = preferences_for(r.recipient_id for r in batch)
        hooks = {hook.team_id: hook for hook in TeamWebhook.objects.filter(enabled=True)}
        deliveries = []
        for reminder in batch:
            reminder.dispatched_at = reminder.updated_at = now
            reminder.late = now - reminder.due_at > late_after()
            reminder.status = ReminderStatus.CANCELLED
            if not reminder.recipient.is_active:
                continue
            try:
                if render_message(reminder) is None:
                    continue
            except Exception:  # rendering is retried at delivery time; do not lose the reminder
                logger.exception("rendering reminder %s failed", reminder.pk)
            reminder.status = ReminderStatus.DISPATCHED
            for channel in channels_for(reminder.recipient, prefs[reminder.recipient_id], hooks):
                deliveries.append(
                    Delivery(reminder=reminder, due_at=reminder.due_at, channel=channel, next_attempt_at=now)
                )
        Delivery.objects.bulk_create(deliveries, ignore_conflicts=True)
        Reminder.objects.bulk_update(batch, ["status", "dispatched_at", "late", "updated_at"])
    return len(batch)


# --- 3. send ----------------------------------------------------------------------------------


def _attempt(delivery: Delivery, *, now: datetime) -> None:
    reminder = delivery.reminder
    user = reminder.recipient
    late = now - delivery.due_at > late_after()
    try:
        message = render_message(reminder, late=late) if user.is_active else None
        if message is None:
            delivery.status = DeliveryStatus.SKIPPED
        else:
            with in_language(user), transaction.atomic():  # a failing channel rolls back its own writes
                SENDERS[delivery.channel](delivery=delivery, message=message, user=user)
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = now
            delivery.late = late
            delivery.last_error = ""
    except Exception as exc:
        delivery.attempts += 1
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        if delivery.attempts >= max_attempts():
            delivery.status = DeliveryStatus.FAILED
            logger.error("delivery %s (%s) failed for good: %s", delivery.pk, delivery.channel, delivery.last_error)
        else:
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            logger.warning(
                "delivery %s (%s) failed, attempt %s: %s",
                delivery.pk, delivery.channel, delivery.attempts, delivery.last_error,
            )
    delivery.save(
        update_fields=["status", "sent_at", "late", "attempts", "last_error", "next_attempt_at", "updated_at"]
    )


def delivery_attempt_next(
    *, channel: str | None = None, ids: Iterable[int] | None = None, now: datetime | None = None
) -> Delivery | None:
    """Claim one due pending delivery (skipping rows another worker holds), attempt it, and commit.
    Returns it, or None when nothing is due."""
    now = now or timezone.now()
    with transaction.atomic():
        deliveries = Delivery.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        if channel:
            deliveries = deliveries.filter(channel=channel)
        if ids is not None:
            deliveries = deliveries.filter(pk__in=list(ids))
        delivery = deliveries.select_related("reminder__recipient").order_by("next_attempt_at", "id").first()
        if delivery is None:
            return None
        _attempt(delivery, now=now)
    return delivery


def deliveries_send(
    *,
    channel: str | None = None,
    ids: Iterable[int] | None = None,
    now: datetime | None = None,
    budget_seconds: float = 50.0,
) -> dict[str, int]:
    """Send due deliveries one by one until none is left or the time budget is spent (the next scan
    continues). Returns counts per resulting status."""
    ids = list(ids) if ids is not None else None
    counts: dict[str, int] = {}
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        delivery = delivery_attempt_next(channel=channel, ids=ids, now=now)
        if delivery is None:
            break
        counts[delivery.status] = counts.get(delivery.status, 0) + 1
    return counts


def reminders_scan(*, now: datetime | None = None) -> dict[str, Any]:
    """Collect, dispatch everything due, and name the channels that have deliveries to send."""
    now = now or timezone.now()
    collected = sources_collect(now=now)
    dispatched = 0
    while True:
        claimed = reminders_dispatch(now=now)
        dispatched += claimed
        if claimed < DISPATCH_BATCH:
            break
    channels = sorted(
        set(
            Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .values_list("channel", flat=True)
            .distinct()
        )
    )
    return {"collected": collected, "dispatched": dispatched, "channels": channels}


def delivery_retry(*, delivery: Delivery, now: datetime | None = None) -> bool:
    """Admin: try a failed or back-off delivery again at the next scan."""
    now = now or timezone.now()
    return bool(
        Delivery.objects.filter(
            pk=delivery.pk, status__in=[DeliveryStatus.FAILED, DeliveryStatus.PENDING]
        ).update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, updated_at=now)
    )


# --- in-app notifications ---------------------------------------------------------------------


def notification_mark_read(*, notification: Notification, now: datetime | None = None) -> Notification:
    """Mark read (idempotent: a second call changes nothing, not even the version)."""
    if notification.read_at is None:
        read_at = now or timezone.now()
        claimed = Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=read_at, version=F("version") + 1
        )
        if claimed:
            notification.read_at = read_at
        notification.refresh_from_db(fields=["read_at", "version"])
    return notification


def notifications_mark_all_read(*, user: User, now: datetime | None = None) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).update(
        read_at=now or timezone.now(), version=F("version") + 1
    )


def notification_delete(*, notification: Notification, user: User) -> None:
    """The recipient deletes one of their notifications (anyone else's is not theirs to delete)."""
    if notification.user_id != user.pk:
        raise PermissionDenied
    Notification.objects.filter(pk=notification.pk, user=user).delete()
