"""Customer pages: list (search, filters, bulk actions, export), detail, forms, pool, merge, import and
the public web-to-lead endpoint. Thin: parse, fetch through the scope, call a service, render."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.scope import is_manager_or_admin
from accounts.security_log import client_ip
from crm.exports import csv_response, xlsx_response

from . import importing, selectors, services, tiering
from .forms import (
    AssignForm,
    BulkForm,
    ContactForm,
    CustomerForm,
    FilterForm,
    ImportUploadForm,
    MergeForm,
    ReleaseForm,
    TierOverrideForm,
    WebLeadForm,
)
from .models import Contact, Customer, ImportStatus, SourceChannel
from .timeline import customer_panels, customer_timeline

PAGE_SIZE = 50


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- list, bulk actions, export -----------------------------------------------------------------
@login_required
def customer_list_view(request):
    form = FilterForm(request.GET or None, user=request.user)
    filters = form.filters()
    page = Paginator(selectors.customer_filtered(user=request.user, filters=filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page, "form": form, "query": query.urlencode(), "filters": filters,
        "bulk_form": BulkForm(user=request.user), "can_assign": is_manager_or_admin(request.user),
        "can_export": selectors.export_allowed(request.user), "now": timezone.now(),
    }
    if request.htmx and request.htmx.target == "customer-table":
        return render(request, "leads/partials/_customer_table.html", context)
    return render(request, "leads/customer_list.html", context)


@login_required
@require_POST
def customer_bulk_view(request):
    form = BulkForm(request.POST, user=request.user)
    back = _next_url(request, reverse("leads:customer_list"))
    if not form.is_valid():
        messages.error(request, " ".join(m for errors in form.errors.values() for m in errors))
        return redirect(back)
    data = form.cleaned_data
    try:
        if data["action"] == "assign":
            count = services.customer_bulk_assign(customer_ids=data["ids"], to=data["to"], by=request.user)
            messages.success(request, _("%(count)s customers assigned to %(user)s.") % {"count": count, "user": data["to"]})
        else:
            count = services.customer_bulk_tag(customer_ids=data["ids"], tag_name=data["tag"], by=request.user)
            messages.success(request, _("Tag “%(tag)s” added to %(count)s customers.") % {"count": count, "tag": data["tag"]})
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    return redirect(back)


@login_required
def customer_export_view(request):
    """The current filtered list as CSV or XLSX: only rows the user may see, formula-safe cells."""
    if not selectors.export_allowed(request.user):
        raise PermissionDenied(_("Only managers may export customers."))
    filters = FilterForm(request.GET or None, user=request.user).filters()
    rows = selectors.customer_filtered(user=request.user, filters=filters)
    header = [pgettext("customer", "Name"), _("Type"), _("Status"), _("Tier"), _("Industry"), _("Region"), _("Address"), _("Phone"),
              _("Email"), _("Website"), _("Source"), _("Tags"), _("Owner"), _("Team"), _("Last contacted"),
              _("Next follow-up"), _("Created")]

    def lines():
        for c in rows.iterator(chunk_size=2000):
            yield [c.name, c.get_customer_type_display(), c.get_status_display(), c.tier, c.get_industry_display(),
                   c.region, c.address, c.phone, c.email, c.website, c.source or "",
                   ", ".join(t.name for t in c.tags.all()), c.owner.display_name if c.owner else _("(lead pool)"),
                   c.team or "", c.last_contacted_at, c.next_follow_up_at, c.created_at]

    if request.GET.get("format") == "xlsx":
        return xlsx_response(lines(), header=header, filename=_("customers") + ".xlsx", sheet_title=_("Customers"))
    return csv_response(lines(), header=header, filename=_("customers") + ".csv")


# --- create, detail, edit -------------------------------------------------------------------------
def _duplicates_for(form, user, exclude_pk=None):
    data = form.data
    return selectors.duplicate_warnings(
        user=user, name=data.get("name", ""), phone=data.get("phone", ""), email=data.get("email", ""),
        exclude_pk=exclude_pk,
    )


@login_required
def customer_create_view(request):
    form = CustomerForm(request.POST or None, user=request.user)
    duplicates = []
    if request.method == "POST" and form.is_valid():
        duplicates = _duplicates_for(form, request.user)
        if duplicates and not form.cleaned_data.get("confirm_duplicates"):
            messages.warning(request, _("This customer may already exist. Check the list below."))
        else:
            owner, team = form.owner_and_team()
            data = form.profile_data()
            tags = data.pop("tags")
            try:
                customer = services.customer_create(by=request.user, owner=owner, team=team, tags=tags, **data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Customer created."))
                return redirect(customer)
    return render(request, "leads/customer_form.html", {"form": form, "duplicates": duplicates, "creating": True})


@login_required
def customer_duplicates_view(request):
    """HTMX, while typing in the form: likely duplicates of the name/phone/email entered so far."""
    exclude = request.GET.get("exclude")
    duplicates = selectors.duplicate_warnings(
        user=request.user, name=request.GET.get("name", ""), phone=request.GET.get("phone", ""),
        email=request.GET.get("email", ""), exclude_pk=int(exclude) if exclude and exclude.isdigit() else None,
    )
    return render(request, "leads/partials/_duplicates.html", {"duplicates": duplicates})


@login_required
def customer_detail_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    contacts = list(customer.contacts.all())
    return render(request, "leads/customer_detail.html", {
        "customer": customer,
        "contacts": contacts,
        "tags": list(customer.tags.all()),
        "timeline": customer_timeline(customer=customer, user=request.user),
        "panels": customer_panels(customer=customer),
        "why_tier": tiering.describe(customer.tier_explanation or []),
        "assign_form": AssignForm(user=request.user) if is_manager_or_admin(request.user) else None,
        "tier_form": TierOverrideForm(initial={"tier": customer.tier}),
        "can_release": customer.owner_id == request.user.pk or (customer.owner_id and is_manager_or_admin(request.user)),
        "can_merge": is_manager_or_admin(request.user),
        "now": timezone.now(),
    })


@login_required
def customer_edit_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = CustomerForm(request.POST or None, instance=customer, user=request.user)
    duplicates, conflict = [], None
    if request.method == "POST" and form.is_valid():
        duplicates = _duplicates_for(form, request.user, exclude_pk=customer.pk)
        if duplicates and not form.cleaned_data.get("confirm_duplicates"):
            messages.warning(request, _("This customer may already exist. Check the list below."))
        else:
            try:
                services.customer_update(
                    customer=customer, by=request.user, data=form.profile_data(),
                    expected_version=form.cleaned_data.get("version"),
                )
            except services.EditConflict as exc:
                conflict = [
                    {"field": Customer._meta.get_field(f).verbose_name if f != "tags" else _("Tags"),
                     "theirs": theirs, "yours": yours}
                    for f, (theirs, yours) in exc.changes.items()
                ]
                # the next save overwrites knowingly: the form now carries the current version
                data = request.POST.copy()
                data["version"] = exc.current.version
                form = CustomerForm(data, instance=exc.current, user=request.user)
                form.is_valid()
                messages.error(request, _("Someone else changed this customer while you were editing. "
                                          "Review their changes below; saving again keeps your version."))
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Customer saved."))
                return redirect(customer)
    return render(request, "leads/customer_form.html", {
        "form": form, "customer": customer, "duplicates": duplicates, "conflict": conflict, "creating": False,
    })


@login_required
@require_POST
def customer_reviewed_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    services.customer_mark_reviewed(customer=customer, by=request.user)
    messages.success(request, _("Profile marked as reviewed."))
    return redirect(customer)


# --- contacts -------------------------------------------------------------------------------------
@login_required
def contact_edit_view(request, pk: int, contact_pk: int | None = None):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    contact = get_object_or_404(Contact, pk=contact_pk, customer=customer) if contact_pk else None
    form = ContactForm(request.POST or None, instance=contact)
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_save(customer=customer, by=request.user, contact=contact, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Contact saved."))
            return redirect(customer)
    return render(request, "leads/contact_form.html", {"form": form, "customer": customer, "contact": contact})


@login_required
@require_POST
def contact_delete_view(request, pk: int, contact_pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    contact = get_object_or_404(Contact, pk=contact_pk, customer=customer)
    services.contact_delete(contact=contact, by=request.user)
    messages.success(request, _("Contact deleted."))
    return redirect(customer)


# --- ownership ------------------------------------------------------------------------------------
@login_required
def pool_view(request):
    page = Paginator(selectors.pool_list(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "leads/pool.html", {"page": page, "assign_form": AssignForm(user=request.user)
                                               if is_manager_or_admin(request.user) else None})


@login_required
@require_POST
def customer_claim_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    try:
        services.customer_claim(customer_id=customer.pk, by=request.user)
    except services.ClaimLost as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_next_url(request, reverse("leads:pool")))
    messages.success(request, _("You now own %(name)s.") % {"name": customer.name})
    return redirect(_next_url(request, customer.get_absolute_url()))


@login_required
@require_POST
def customer_assign_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    if not is_manager_or_admin(request.user):
        raise PermissionDenied
    form = AssignForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            services.customer_assign(customer=customer, to=form.cleaned_data["to"], by=request.user,
                                     reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("%(name)s assigned to %(user)s.") % {"name": customer.name, "user": form.cleaned_data["to"]})
    else:
        messages.error(request, _("Choose a user in your teams."))
    return redirect(_next_url(request, customer.get_absolute_url()))


@login_required
@require_POST
def customer_release_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = ReleaseForm(request.POST)
    form.is_valid()
    services.customer_release(customer=customer, by=request.user, reason=form.cleaned_data.get("reason", ""))
    messages.success(request, _("%(name)s is back in the lead pool.") % {"name": customer.name})
    return redirect(_next_url(request, reverse("leads:customer_list")))


# --- tiers ----------------------------------------------------------------------------------------
@login_required
@require_POST
def tier_override_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    form = TierOverrideForm(request.POST)
    if form.is_valid():
        services.tier_override(customer=customer, tier=form.cleaned_data["tier"], reason=form.cleaned_data["reason"],
                               by=request.user)
        messages.success(request, _("Tier set by hand."))
    else:
        messages.error(request, _("Choose a tier and say why."))
    return redirect(customer)


@login_required
@require_POST
def tier_reset_view(request, pk: int):
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    services.tier_override_clear(customer=customer, by=request.user)
    messages.success(request, _("The tier follows the rules again."))
    return redirect(customer)


# --- merge ----------------------------------------------------------------------------------------
@login_required
def customer_merge_view(request, pk: int):
    """Managers and admins: pick the other customer (search or a likely duplicate), compare, confirm."""
    if not is_manager_or_admin(request.user):
        raise PermissionDenied
    customer = selectors.customer_get_for_user(user=request.user, pk=pk)
    other = None
    other_pk = request.POST.get("other") or request.GET.get("other")
    if other_pk and str(other_pk).isdigit():
        other = selectors.customer_get_for_user(user=request.user, pk=int(other_pk))
        if other.pk == customer.pk:
            other = None
    if request.method == "POST" and other is not None:
        form = MergeForm(request.POST)
        if form.is_valid():
            survivor, merged = (customer, other) if form.cleaned_data["keep"] == "this" else (other, customer)
            try:
                services.customer_merge(survivor=survivor, merged=merged, by=request.user)
            except (ValidationError, PermissionDenied) as exc:
                messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
            else:
                messages.success(request, _("%(merged)s was merged into %(survivor)s.") % {"merged": merged.name, "survivor": survivor.name})
                return redirect(survivor)
    q = request.GET.get("q", "").strip()
    results = []
    if q:
        results = list(selectors.customer_list(user=request.user).filter(selectors.search_q(q)).exclude(pk=customer.pk)[:20])
    duplicates = [d for d in selectors.duplicate_warnings(user=request.user, name=customer.name, phone=customer.phone,
                                                          email=customer.email, exclude_pk=customer.pk) if d.visible]
    return render(request, "leads/merge.html", {
        "customer": customer, "other": other, "results": results, "q": q, "duplicates": duplicates,
        "form": MergeForm(initial={"other": other.pk if other else None, "keep": "this"}),
        "counts": services.merge_related_counts(customer),
        "other_counts": services.merge_related_counts(other) if other else {},
    })


# --- import ---------------------------------------------------------------------------------------
@login_required
def import_upload_view(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        owner, team = form.owner_and_team()
        try:
            imp = importing.import_preview(
                data=upload.read(), file_name=upload.name, by=request.user, owner=owner, team=team,
                duplicate_policy=form.cleaned_data["duplicate_policy"],
            )
        except ValidationError as exc:
            form.add_error("file", exc.messages)
        else:
            return redirect(imp)
    recent = importing.CustomerImport.objects.filter(created_by=request.user)[:10]
    return render(request, "leads/import_upload.html", {"form": form, "recent": recent})


@login_required
def import_template_view(request):
    """An empty file with the column names (in the user's language) and one example row."""
    example = ["上海示例科技有限公司", "company", "lead", "", "software", "华东 · 上海", "", "51-200",
               "https://example.cn", "138 0000 0000", "info@example.cn", "website", "SaaS, 重点",
               "", "", "", "EX-001", "王经理", "", "", "", ""]
    return csv_response([example], header=importing.IMPORT_TEMPLATE_HEADER, filename=_("customer-import") + ".csv")


@login_required
def import_detail_view(request, pk: int):
    imp = selectors.import_get_for_user(user=request.user, pk=pk)
    if request.method == "POST" and imp.status in (ImportStatus.PREVIEW, ImportStatus.FAILED, ImportStatus.RUNNING):
        importing.import_confirm(customer_import=imp, by=request.user,
                                 duplicate_policy=request.POST.get("duplicate_policy"))
        return redirect(imp)
    rows = []
    for index, row in enumerate(imp.rows[:1000]):
        key = str(index)
        rows.append({"row": row, "errors": imp.errors.get(key), "duplicate": imp.duplicates.get(key)})
    return render(request, "leads/import_detail.html", {
        "imp": imp, "rows": rows, "more_rows": max(0, len(imp.rows) - 1000),
        "error_count": len(imp.errors), "duplicate_count": sum(1 for d in imp.duplicates.values() if "similar" in d),
        "update_count": sum(1 for d in imp.duplicates.values() if "update" in d),
        "policies": importing.DuplicatePolicy.choices,
    })


@login_required
def import_progress_view(request, pk: int):
    """HTMX polling: the progress bar; answers 286 (htmx: stop polling) once the import is over."""
    imp = selectors.import_get_for_user(user=request.user, pk=pk)
    response = render(request, "leads/partials/_import_progress.html", {"imp": imp})
    if imp.status in (ImportStatus.DONE, ImportStatus.FAILED):
        response.status_code = 286
    return response


# --- web-to-lead (public) -------------------------------------------------------------------------
def _wants_json(request) -> bool:
    return (request.content_type or "").startswith("application/json") or "application/json" in request.headers.get("Accept", "")


@csrf_exempt
def web_to_lead_view(request, token: str):
    """The public endpoint of a source channel: GET shows the form; POST takes the form or JSON.

    JSON answers: 201 {"ok": true}, 400 {"ok": false, "errors": {field: [messages]}}, 404 unknown or
    disabled channel, 405 other methods, 429 too many submissions from this address (Retry-After)."""
    channel = SourceChannel.objects.filter(web_token=token, web_enabled=True, is_active=True).first()
    if channel is None:
        if _wants_json(request):
            return JsonResponse({"ok": False, "errors": {"__all__": [_("Unknown form.")]}}, status=404)
        raise Http404
    if request.method not in ("GET", "POST"):
        return JsonResponse({"ok": False, "errors": {"__all__": [_("Use GET or POST.")]}}, status=405)
    as_json = _wants_json(request)
    if request.method == "GET":
        return render(request, "leads/web_form.html", {"form": WebLeadForm(), "channel": channel})
    if as_json:
        try:
            payload = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return JsonResponse({"ok": False, "errors": {"__all__": [_("The body is not valid JSON.")]}}, status=400)
        if not isinstance(payload, dict):
            return JsonResponse({"ok": False, "errors": {"__all__": [_("Send a JSON object.")]}}, status=400)
        form = WebLeadForm({k: v for k, v in payload.items() if isinstance(v, str | int)})
    else:
        form = WebLeadForm(request.POST)
    if services.web_rate_limit_hit(ip=client_ip(request)):
        message = _("Too many submissions from your address. Please try again later.")
        if as_json:
            response = JsonResponse({"ok": False, "errors": {"__all__": [message]}}, status=429)
        else:
            response = render(request, "leads/web_form.html", {"form": form, "channel": channel, "limited": message}, status=429)
        response["Retry-After"] = "3600"
        return response
    if form.is_bot:
        # a honeypot hit: answer like a success, create nothing
        return JsonResponse({"ok": True}, status=201) if as_json else render(request, "leads/web_thanks.html", {"channel": channel})
    if not form.is_valid():
        if as_json:
            return JsonResponse({"ok": False, "errors": form.errors.get_json_data() and {
                k: [e["message"] for e in v] for k, v in form.errors.get_json_data().items()}}, status=400)
        return render(request, "leads/web_form.html", {"form": form, "channel": channel}, status=400)
    services.web_lead_submit(channel=channel, data=form.cleaned_data)
    if as_json:
        return JsonResponse({"ok": True}, status=201)
    return render(request, "leads/web_thanks.html", {"channel": channel})

