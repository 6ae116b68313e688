from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from . import audit
from .forms import AuditFilterForm, ProfileForm
from .scope import sees_everything
from .services import user_set_language


@require_POST
def set_language(request):
    """The header switcher: set the language cookie and remember the choice on the profile."""
    response = django_set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in {"zh-hans", "en"}:
        user_set_language(user=request.user, language=language)
    return response


@login_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Your profile was saved."))
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


def locked_out(request, original_response=None, credentials=None):
    """django-axes lockout page: a clear message in the user's language, with the cool-off time."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(request, "registration/locked_out.html", {"cooloff_minutes": minutes}, status=429)


AUDIT_PAGE_SIZE = 50


@login_required
def audit_log(request):
    """Who changed what (the simple-history tables), filtered and paginated. Admins only: others 404."""
    if not sees_everything(request.user):
        raise Http404
    audited = audit.audited_models()
    form = AuditFilterForm(request.GET or None, audited_models=audited)
    filters = {}
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = {
            "user_id": data["user"].pk if data["user"] else None,
            "model_key": data["model"] or None,
            "object_id": data["object_id"].strip() or None,
            "date_from": data["date_from"],
            "date_to": data["date_to"],
            "kind": data["kind"] or None,
        }
    rows = audit.audit_entry_rows(**filters) if not form.is_bound or form.is_valid() else None
    page = Paginator(rows if rows is not None else [], AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    entries = audit.audit_entries_for_rows(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "accounts/audit_log.html",
        {"form": form, "page": page, "entries": entries, "query": query.urlencode(), "audited": audited},
    )
