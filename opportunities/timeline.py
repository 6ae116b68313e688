"""The customer page's timeline: the stage moves of the customer's deals (those the viewer sees).

Named on OpportunitiesConfig as `customer_timeline_provider`; the leads app calls it (see
leads/timeline.py). Two queries whatever the number of deals."""

from __future__ import annotations

from django.utils.translation import gettext as _

from .models import Opportunity, StageChange, TransitionAction

ICONS = {
    TransitionAction.CREATE: "bi-plus-circle",
    TransitionAction.WIN: "bi-trophy",
    TransitionAction.LOSE: "bi-x-circle",
    TransitionAction.MOVE_BACK: "bi-arrow-left-circle",
    TransitionAction.REOPEN: "bi-arrow-counterclockwise",
}


def entries(*, customer, user, limit: int):
    from leads.timeline import TimelineEntry

    visible = Opportunity.objects.visible_to(user).filter(customer_id=customer.pk).values("pk")
    changes = (
        StageChange.objects.filter(opportunity_id__in=visible)
        .select_related("opportunity", "from_stage", "to_stage", "changed_by")
        .order_by("-changed_at", "-id")[:limit]
    )
    result = []
    for change in changes:
        if change.action == TransitionAction.CREATE:
            title = _("Opportunity “%(title)s” created") % {"title": change.opportunity.title}
        else:
            title = _("Opportunity “%(title)s”: %(from)s → %(to)s") % {
                "title": change.opportunity.title, "from": change.from_stage.name if change.from_stage else "",
                "to": change.to_stage.name,
            }
        result.append(TimelineEntry(
            when=change.changed_at, title=title, kind="opportunity", icon=ICONS.get(change.action, "bi-kanban"),
            body=change.note, url=change.opportunity.get_absolute_url(), actor=change.changed_by,
            details=[change.get_action_display()],
        ))
    return result
