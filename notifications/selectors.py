"""Reads of the notifications app. A notification is only ever fetched through its user."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import User

from .models import Delivery, DeliveryStatus, Notification, NotificationPreference


def notification_list(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    notifications = Notification.objects.filter(user=user)
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications.order_by("-created_at", "-id")


def notification_get_for_user(*, user: User, pk: int) -> Notification:
    """The user's own notification; anyone else's is a 404."""
    return get_object_or_404(Notification, pk=pk, user=user)


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def preference_get(*, user: User) -> NotificationPreference:
    """The user's preference, or the defaults (unsaved) if they never changed them."""
    return NotificationPreference.objects.filter(user=user).first() or NotificationPreference(user=user)


def failing_q() -> Q:
    """Deliveries that gave up, or that are retrying after a failure (the admin's failed list)."""
    return Q(status=DeliveryStatus.FAILED) | Q(status=DeliveryStatus.PENDING, attempts__gt=0)


def failing_deliveries() -> QuerySet[Delivery]:
    return Delivery.objects.filter(failing_q()).select_related("reminder__recipient")
