from datetime import timedelta

from django.utils import timezone

from notifications.models import Reminder


def due_reminders(users, *, due_at=None, source="tests.direct", prefix="r"):
    """One due reminder per user, with a ready message (no render function)."""
    due_at = due_at or timezone.now() - timedelta(minutes=1)
    return [
        Reminder.objects.create(
            source=source, key=f"{prefix}-{user.pk}", recipient=user, due_at=due_at, event_at=due_at,
            title=f"Call back {user.username}", body="Ask about the quote.", link="/customers/",
        )
        for user in users
    ]
