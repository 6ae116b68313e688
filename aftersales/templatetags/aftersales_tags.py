from django import template

from aftersales.models import SlaState, TicketStatus

register = template.Library()

STATUS_CLASSES = {
    TicketStatus.OPEN: "text-bg-primary",
    TicketStatus.IN_PROGRESS: "text-bg-info",
    TicketStatus.WAITING: "text-bg-secondary",
    TicketStatus.RESOLVED: "text-bg-success",
    TicketStatus.CLOSED: "text-bg-dark",
    TicketStatus.REOPENED: "text-bg-warning",
}
SLA_CLASSES = {
    SlaState.ON_TRACK: "text-bg-light border",
    SlaState.AT_RISK: "text-bg-warning",
    SlaState.BREACHED: "text-bg-danger",
    SlaState.PAUSED: "text-bg-secondary",
    SlaState.MET: "text-bg-success",
}
PRIORITY_CLASSES = {"urgent": "text-bg-danger", "high": "text-bg-warning", "normal": "text-bg-light border",
                    "low": "text-bg-light border"}


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(status, "text-bg-light")


@register.filter
def sla_class(state: str) -> str:
    return SLA_CLASSES.get(state, "text-bg-light")


@register.filter
def sla_label(state: str) -> str:
    try:
        return SlaState(state).label
    except ValueError:
        return ""


@register.filter
def priority_class(priority: str) -> str:
    return PRIORITY_CLASSES.get(priority, "text-bg-light")


@register.filter
def status_label(status: str) -> str:
    try:
        return TicketStatus(status).label
    except ValueError:
        return ""
