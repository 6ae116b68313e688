"""Contract pages: list, detail with the lifecycle buttons, create/edit with line items and payment
plan, signing, receipts, attachments (served only here, through the scope rule), the printable
contract, the review queue, and the HTMX panels the customer and opportunity pages include.

Views are thin: fetch-and-authorize through the selectors (404 outside the scope), call a service."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts.scope import is_manager_or_admin
from leads.selectors import customer_get_for_user

from . import rules, selectors, services
from .forms import (
    AttachmentForm,
    CommentForm,
    ContractFilterForm,
    ContractForm,
    InstalmentFormSet,
    LineFormSet,
    ReceiptForm,
    RejectForm,
    SignForm,
    TerminateForm,
    formset_rows,
)
from .models import RECEIVABLE_STATUSES, ContractStatus

# The lifecycle buttons: label and Bootstrap style, in the order rules.available_actions lists them.
ACTION_BUTTONS = {
    "edit": (gettext_lazy("Edit"), "outline-secondary"),
    "submit": (gettext_lazy("Submit for review"), "primary"),
    "approve": (gettext_lazy("Approve"), "success"),
    "reject": (gettext_lazy("Reject"), "outline-danger"),
    "sign": (gettext_lazy("Record signing"), "success"),
    "activate": (gettext_lazy("Start performance"), "primary"),
    "complete": (gettext_lazy("Mark completed"), "success"),
    "terminate": (gettext_lazy("Terminate"), "outline-danger"),
}
DONE_MESSAGES = {
    "submit": gettext_lazy("The contract was submitted for review."),
    "approve": gettext_lazy("Your approval was recorded."),
    "reject": gettext_lazy("The contract went back to its owner as a draft."),
    "activate": gettext_lazy("The contract is now active."),
    "complete": gettext_lazy("The contract is completed."),
    "terminate": gettext_lazy("The contract was terminated."),
}


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _add_errors(form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form: on the field it names, else on the form."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)
    else:
        form.add_error(None, exc)


# --- list and detail ------------------------------------------------------------------------------
@login_required
def contract_list(request):
    today = timezone.localdate()
    filters = ContractFilterForm(request.GET or None, user=request.user)
    cleaned = filters.cleaned_data if filters.is_valid() else {}
    owner = cleaned.get("owner")
    qs = selectors.contract_list(
        user=request.user,
        today=today,
        status=cleaned.get("status", ""),
        owner_id=owner.pk if owner else None,
        date_from=cleaned.get("date_from"),
        date_to=cleaned.get("date_to"),
        overdue_only=cleaned.get("overdue", False),
    )
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "contracts/contract_list.html", {
        "page": page,
        "filters": filters,
        "query": query.urlencode(),
        "is_reviewer": is_manager_or_admin(request.user),
    })


@login_required
def contract_detail(request, pk: int):
    contract = selectors.contract_get_for_user(user=request.user, pk=pk)
    today = timezone.localdate()
    actions = rules.available_actions(contract, request.user)
    context = {
        "contract": contract,
        **selectors.contract_detail_data(contract=contract, today=today),
        "today": today,
        "buttons": [(action, *ACTION_BUTTONS[action]) for action in actions],
        "actions": actions,
        "refusal": rules.review_refusal(contract, request.user) if contract.status == ContractStatus.IN_REVIEW else "",
        "rejection": selectors.contract_last_rejection(contract),
        "approve_form": CommentForm(prefix="approve"),
        "reject_form": RejectForm(prefix="reject"),
        "terminate_form": TerminateForm(prefix="terminate"),
        "receipt_form": ReceiptForm(contract=contract) if contract.status in RECEIVABLE_STATUSES else None,
        "attachment_form": AttachmentForm(),
        "can_attach": contract.status not in (ContractStatus.COMPLETED, ContractStatus.TERMINATED),
        "history": contract.history.select_related("history_user")[:20],
    }
    return render(request, "contracts/contract_detail.html", context)


@login_required
@require_POST
def contract_action(request, pk: int, action: str):
    """The lifecycle buttons other than signing (which has its own form)."""
    contract = selectors.contract_get_for_user(user=request.user, pk=pk)
    user = request.user
    try:
        if action == "submit":
            services.contract_submit(contract=contract, user=user)
        elif action == "approve":
            form = CommentForm(request.POST, prefix="approve")
            form.is_valid()
            services.contract_approve(contract=contract, user=user, comment=form.cleaned_data.get("comment", ""))
        elif action == "reject":
            form = RejectForm(request.POST, prefix="reject")
            comment = form.cleaned_data["comment"] if form.is_valid() else ""
            services.contract_reject(contract=contract, user=user, comment=comment)
        elif action == "activate":
            services.contract_activate(contract=contract, user=user)
        elif action == "complete":
            services.contract_complete(contract=contract, user=user)
        elif action == "terminate":
            form = TerminateForm(request.POST, prefix="terminate")
            reason = form.cleaned_data["reason"] if form.is_valid() else ""
            services.contract_terminate(contract=contract, user=user, reason=reason)
        else:
            raise Http404
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    except PermissionDenied as exc:
        raise Http404 from exc
    else:
        messages.success(request, DONE_MESSAGES[action])
    if action == "reject" and request.POST.get("next") == "queue":
        return redirect("contracts:review_queue")
    return redirect(contract)


@login_required
def contract_sign(request, pk: int):
    contract = selectors.contract_get_for_user(user=request.user, pk=pk)
    if contract.status != ContractStatus.APPROVED:
        messages.error(request, _("Only an approved contract can be signed."))
        return redirect(contract)
    form = SignForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.contract_sign(contract=contract, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The contract is signed."))
            return redirect(contract)
    return render(request, "contracts/contract_sign.html", {"contract": contract, "form": form})


# --- create and edit ------------------------------------------------------------------------------
def _opportunity_for_draft(request):
    """The opportunity to draft from (?opportunity=<pk>), fetched through its scope, or None."""
    raw = request.GET.get("opportunity") or request.POST.get("opportunity")
    if not raw:
        return None
    try:
        pk = int(raw)
    except ValueError as exc:
        raise Http404 from exc
    from . import integration

    return integration.opportunity_get_for_user(user=request.user, pk=pk)


@login_required
def contract_create(request):
    opportunity = _opportunity_for_draft(request)
    customer = None
    initial: dict = {}
    line_initial: list[dict] = []
    if opportunity is not None:
        from . import integration

        try:
            prefill = integration.draft_initial_from_opportunity(opportunity)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
            return redirect(opportunity.get_absolute_url())
        customer = prefill.pop("customer")
        line_initial = prefill.pop("lines")
        initial = prefill
    elif request.GET.get("customer") or request.POST.get("customer_locked"):
        try:
            customer = customer_get_for_user(
                user=request.user, pk=int(request.GET.get("customer") or request.POST["customer_locked"])
            )
        except ValueError as exc:
            raise Http404 from exc
    data = request.POST if request.method == "POST" else None
    form = ContractForm(data, user=request.user, customer=customer, initial=initial)
    lines = LineFormSet(data, prefix="lines", initial=line_initial or None)
    plan = InstalmentFormSet(data, prefix="plan")
    if request.method == "POST" and form.is_valid() and lines.is_valid() and plan.is_valid():
        fields = {k: v for k, v in form.cleaned_data.items() if k != "customer"}
        try:
            contract = services.contract_create(
                user=request.user,
                customer=customer or form.cleaned_data["customer"],
                opportunity=opportunity,
                lines=formset_rows(lines),
                instalments=formset_rows(plan),
                **fields,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Contract %(number)s was drafted.") % {"number": contract.number})
            return redirect(contract)
    return render(request, "contracts/contract_form.html", {
        "form": form, "lines": lines, "plan": plan, "customer": customer, "opportunity": opportunity,
        "contract": None,
    })


@login_required
def contract_edit(request, pk: int):
    contract = selectors.contract_get_for_user(user=request.user, pk=pk)
    if not contract.is_editable:
        messages.error(request, _("Only a draft can be edited."))
        return redirect(contract)
    data = request.POST if request.method == "POST" else None
    form = ContractForm(data, instance=contract, user=request.user)
    lines = LineFormSet(data, prefix="lines", initial=[
        {"id": row.pk, "name": row.name, "quantity": row.quantity, "unit_price": row.unit_price,
         "discount_percent": row.discount_percent, "tax_rate": row.tax_rate}
        for row in contract.lines.all()
    ])
    plan = InstalmentFormSet(data, prefix="plan", initial=[
        {"id": row.pk, "due_date": row.due_date, "amount": row.amount, "note": row.note}
        for row in contract.instalments.all()
    ])
    if request.method == "POST" and form.is_valid() and lines.is_valid() and plan.is_valid():
        try:
            services.contract_update(
                contract=contract, user=request.user, fields=form.cleaned_data,
                lines=formset_rows(lines), instalments=formset_rows(plan),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        except PermissionDenied as exc:
            raise Http404 from exc
        else:
            messages.success(request, _("The contract was saved."))
            return redirect(contract)
    return render(request, "contracts/contract_form.html", {
        "form": form, "lines": lines, "plan": plan, "customer": contract.customer, "opportunity": None,
        "contract": contract,
    })


# --- payments and attachments ---------------------------------------------------------------------
@login_required
@require_POST
def receipt_create(request, pk: int):
    contract = selectors.contract_get_for_user(user=request.user, pk=pk)
    form = ReceiptForm(request.POST, contract=contract)
    if form.is_valid():
        try:
            services.payment_receipt_record(contract=contract, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, _("The receipt was recorded."))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect(reverse("contracts:detail", args=[contract.pk]) + "#payments")


@login_required
@require_POST
def attachment_upload(request, pk: int):
    contract = selectors.contract_get_for_user(user=request.user, pk=pk)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.contract_attachment_add(contract=contract, user=request.user, file=form.cleaned_data["file"],
                                             kind=form.cleaned_data["kind"])
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, _("The file was attached."))
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect(reverse("contracts:detail", args=[contract.pk]) + "#attachments")


@never_cache
@login_required
def attachment_download(request, pk: int, attachment_pk: int):
    """Stream an attachment to a user who may see its contract (404 for anyone else)."""
    attachment = selectors.attachment_get_for_user(user=request.user, contract_pk=pk, pk=attachment_pk)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(handle, as_attachment=request.GET.get("inline") != "1",
                            filename=attachment.original_name, content_type=attachment.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def attachment_delete(request, pk: int, attachment_pk: int):
    attachment = selectors.attachment_get_for_user(user=request.user, contract_pk=pk, pk=attachment_pk)
    try:
        services.contract_attachment_delete(attachment=attachment, user=request.user)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, _("The attachment was removed."))
    return redirect(reverse("contracts:detail", args=[pk]) + "#attachments")


# --- print, review queue, panels ------------------------------------------------------------------
@login_required
def contract_print(request, pk: int):
    """A clean printable contract; ?lang=zh-hans or ?lang=en prints it in that language."""
    contract = selectors.contract_get_for_user(user=request.user, pk=pk)
    language = request.GET.get("lang")
    if language not in {"zh-hans", "en"}:
        language = translation.get_language()
    with translation.override(language):
        data = selectors.contract_detail_data(contract=contract, today=timezone.localdate())
        response = render(request, "contracts/contract_print.html", {
            "contract": contract, **data, "print_language": language,
        })
    return response


@login_required
def review_queue(request):
    if not is_manager_or_admin(request.user):
        raise PermissionDenied
    return render(request, "contracts/review_queue.html", {
        "contracts": selectors.review_queue(user=request.user),
        "approve_form": CommentForm(prefix="approve"),
        "reject_form": RejectForm(prefix="reject"),
    })


@login_required
def contracts_for_customer(request, customer_pk: int):
    """HTMX panel for the customer page: the customer's contracts the user may see."""
    customer = customer_get_for_user(user=request.user, pk=customer_pk)
    today = timezone.localdate()
    contracts = selectors.with_money(
        selectors.contracts_for_customer(user=request.user, customer_id=customer.pk), today=today
    )
    return render(request, "contracts/partials/_contracts_panel.html", {
        "contracts": contracts,
        "new_url": reverse("contracts:create") + f"?customer={customer.pk}",
        "money": selectors.money_for_customer(customer_id=customer.pk, today=today, user=request.user),
    })


@login_required
def contracts_for_opportunity(request, opportunity_pk: int):
    """HTMX panel for the opportunity page: its contracts, and "draft a contract" when it may."""
    from . import integration

    opportunity = integration.opportunity_get_for_user(user=request.user, pk=opportunity_pk)
    today = timezone.localdate()
    contracts = selectors.with_money(
        selectors.contracts_for_opportunity(user=request.user, opportunity_id=opportunity.pk), today=today
    )
    can_draft = integration.opportunity_can_draft(opportunity)
    return render(request, "contracts/partials/_contracts_panel.html", {
        "contracts": contracts,
        "new_url": reverse("contracts:create") + f"?opportunity={opportunity.pk}" if can_draft else "",
        "money": None,
    })
