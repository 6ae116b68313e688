"""The one reminder mechanism: what is due (Reminder), what was sent on which channel (Delivery), what a
user sees in the bell (Notification), and who wants what (NotificationPreference, TeamWebhook).

The due time lives in the database. A beat task scans due reminders every minute and claims them with
`SELECT ... FOR UPDATE SKIP LOCKED`; each claimed reminder fans out into one Delivery per channel, and
the UNIQUE key (reminder, due time, channel) makes a retried task, a crashed worker or two beats at once
send nothing twice.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

MAX_LEAD_MINUTES = 24 * 60


class Channel(models.TextChoices):
    IN_APP = "in_app", _("In-app")
    EMAIL = "email", _("Email")
    WEBHOOK = "webhook", _("Team webhook")


class Notification(models.Model):
    """An in-app notification: the bell's unread count and the notification list. Only its user sees it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="notifications"
    )
    verb = models.CharField(_("kind"), max_length=64, blank=True, help_text=_("The reminder source."))
    title = models.CharField(_("title"), max_length=255)
    body = models.TextField(_("body"), blank=True)
    link = models.CharField(_("link"), max_length=500, blank=True)
    late = models.BooleanField(_("late"), default=False)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # The in-app delivery that wrote this row: one notification per delivery, enforced by the database.
    delivery = models.OneToOneField(
        "notifications.Delivery",
        verbose_name=_("delivery"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notification",
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            # the notification list: a user's notifications, newest first
            models.Index(fields=["user", "-created_at"], name="notification_user_created_idx"),
            # the bell: a user's unread count
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationPreference(models.Model):
    """Which channels a user wants, and how long before a planned activity they are reminded."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notification_preference",
    )
    in_app = models.BooleanField(_("in the app (bell)"), default=True)
    email = models.BooleanField(_("by email"), default=True)
    webhook = models.BooleanField(
        _("in the team chat (webhook)"),
        default=True,
        help_text=_("Only when an administrator has configured a webhook for your team."),
    )
    lead_minutes = models.PositiveSmallIntegerField(
        _("remind me before a planned activity (minutes)"),
        default=30,
        validators=[MaxValueValidator(MAX_LEAD_MINUTES)],
    )

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")

    def __str__(self) -> str:
        return str(self.user)


class WebhookFormat(models.TextChoices):
    JSON = "json", _("JSON (generic)")
    WECOM = "wecom", _("WeCom group robot (企业微信)")
    DINGTALK = "dingtalk", _("DingTalk group robot (钉钉)")


class TeamWebhook(models.Model):
    """A team's chat webhook (admin-edited). The one without a team serves users of no other webhook."""

    team = models.ForeignKey(
        "accounts.Team",
        verbose_name=_("team"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhooks",
        help_text=_("Empty: the default webhook, for users whose team has none."),
    )
    url = models.URLField(_("URL"), max_length=500)
    format = models.CharField(_("format"), max_length=16, choices=WebhookFormat.choices, default=WebhookFormat.JSON)
    secret = models.CharField(
        _("signing secret"), max_length=200, blank=True, help_text=_("DingTalk robots with signing enabled.")
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("team webhook")
        verbose_name_plural = _("team webhooks")
        constraints = [
            models.UniqueConstraint(fields=["team"], nulls_distinct=False, name="team_webhook_one_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.team or _('default')} · {self.get_format_display()}"


class ReminderStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DISPATCHED = "dispatched", _("Dispatched")
    CANCELLED = "cancelled", _("Cancelled")


class Reminder(models.Model):
    """Something a user must be told at `due_at`. One row per (source, key, recipient); a new due time
    on the same row (an activity moved) makes it pending again and allows new deliveries."""

    source = models.CharField(_("source"), max_length=64)
    key = models.CharField(_("key"), max_length=200)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("recipient"), on_delete=models.CASCADE, related_name="reminders"
    )
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, null=True, blank=True)
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    target = GenericForeignKey("content_type", "object_id")
    event_at = models.DateTimeField(_("event at"), null=True, blank=True)
    due_at = models.DateTimeField(_("due at"))
    status = models.CharField(
        _("status"), max_length=16, choices=ReminderStatus.choices, default=ReminderStatus.PENDING
    )
    late = models.BooleanField(_("late"), default=False)
    # Content for reminders scheduled with a ready message (sources without a render function).
    title = models.CharField(_("title"), max_length=255, blank=True)
    body = models.TextField(_("body"), blank=True)
    link = models.CharField(_("link"), max_length=500, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key", "recipient"], name="reminder_unique_per_recipient"),
        ]
        indexes = [
            # reminders_dispatch: pending reminders that are due, oldest first
            models.Index(fields=["due_at"], condition=Q(status="pending"), name="reminder_pending_due_idx"),
            # the admin and a source's own look-ups: a source's reminders
            models.Index(fields=["source", "status"], name="reminder_source_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.key} → {self.recipient_id} @ {self.due_at:%Y-%m-%d %H:%M}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class Delivery(models.Model):
    """One channel's delivery of one reminder at one due time. The unique key is the exactly-once rule."""

    reminder = models.ForeignKey(
        Reminder, verbose_name=_("reminder"), on_delete=models.CASCADE, related_name="deliveries"
    )
    due_at = models.DateTimeField(_("due at"))
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    late = models.BooleanField(_("late"), default=False, help_text=_("Sent well after it was due (catch-up)."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["reminder", "due_at", "channel"], name="delivery_once_per_due_channel"),
        ]
        indexes = [
            # deliveries_send: a channel's pending deliveries whose next attempt is due
            models.Index(
                fields=["channel", "next_attempt_at"], condition=Q(status="pending"), name="delivery_pending_idx"
            ),
            # the admin's failed-deliveries list
            models.Index(fields=["status", "-updated_at"], name="delivery_status_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} · {self.reminder}"

    @property
    def idempotency_key(self) -> str:
        """The delivery's identity outside: the email Message-ID and the webhook's idempotency header."""
        return f"crm-reminder-{self.reminder_id}-{int(self.due_at.timestamp())}-{self.channel}"


class FailedDelivery(Delivery):
    """The admin's list of deliveries that gave up or are still failing (a proxy of Delivery)."""

    class Meta:
        proxy = True
        verbose_name = _("failed delivery")
        verbose_name_plural = _("failed deliveries")


class SourceCursor(models.Model):
    """How far a reminder source has been collected: after an outage the next scan covers the gap."""

    source = models.CharField(_("source"), max_length=64, unique=True)
    scanned_until = models.DateTimeField(_("scanned until"))

    class Meta:
        verbose_name = _("reminder source cursor")
        verbose_name_plural = _("reminder source cursors")

    def __str__(self) -> str:
        return f"{self.source} @ {self.scanned_until:%Y-%m-%d %H:%M}"
