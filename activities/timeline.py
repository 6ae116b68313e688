"""Our entries in the customer page's timeline (leads.timeline; named on ActivitiesConfig)."""

from __future__ import annotations

from leads.timeline import TimelineEntry

from .models import Activity, ActivityStatus


def entries(*, customer, user, limit: int) -> list[TimelineEntry]:
    """Done activities of the customer that the viewer sees, newest first. One query."""
    activities = (
        Activity.objects.visible_to(user)
        .filter(customer=customer, status=ActivityStatus.DONE)
        .select_related("kind", "owner", "contact")
        .order_by("-done_at", "-id")[:limit]
    )
    result = []
    for activity in activities:
        details = []
        if activity.get_outcome_display():
            details.append(str(activity.get_outcome_display()))
        if activity.next_step:
            details.append(activity.next_step)
        result.append(
            TimelineEntry(
                when=activity.done_at,
                title=f"{activity.kind} · {activity.subject}",
                kind="activity",
                icon=activity.kind.icon,
                body=activity.notes,
                url=activity.get_absolute_url(),
                actor=activity.owner,
                details=details,
            )
        )
    return result
