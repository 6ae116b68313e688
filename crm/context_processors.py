from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# (url name, label, icon): the main navigation. An entry whose page does not exist yet is hidden.
NAVIGATION = [
    ("home", _("My day"), "bi-sun"),
    ("leads:customer_list", _("Customers"), "bi-people"),
    ("leads:pool", _("Lead pool"), "bi-inboxes"),
    ("opportunities:board", _("Pipeline"), "bi-kanban"),
    ("activities:list", _("Activities"), "bi-calendar-check"),
    ("contracts:list", _("Contracts"), "bi-file-earmark-text"),
    ("aftersales:ticket_list", _("Service"), "bi-life-preserver"),
    ("dashboards:team", _("Dashboard"), "bi-graph-up"),
]


def _resolve_navigation():
    entries = []
    for name, label, icon in NAVIGATION:
        try:
            entries.append({"name": name, "url": reverse(name), "label": label, "icon": icon})
        except NoReverseMatch:
            continue
    return entries


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    entries = _resolve_navigation()
    path = request.path
    for entry in entries:
        entry["active"] = path == entry["url"] if entry["url"] == "/" else path.startswith(entry["url"])
    return {"nav_entries": entries}
