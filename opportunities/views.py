"""Pages: the kanban board, the list (filters, sorting, CSV export), the detail page, create/edit, and
the HTMX endpoints of the board (drag to move, load more, fill the missing criteria in place).

Views are thin: fetch-and-authorize through the selectors (404 outside the scope), parse a form, call
a service, render. Every move goes through opportunities.services."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from crm.exports import csv_response
from leads.selectors import customer_get_for_user

from . import rules, scoring, selectors, services
from .exceptions import ConflictError, TransitionRefused
from .forms import CriteriaForm, FilterForm, LoseForm, MoveBackForm, NoteForm, OpportunityForm
from .models import EXIT_FIELDS, PriorityWeights, Stage, StageChecklistItem, TransitionAction, Unmet

# HTMX panels of other apps shown on the detail page, when those apps provide them
# (url name taking the opportunity's pk, title). Apps above us in the import map own these URLs.
DETAIL_PANELS = [
    ("activities:for_opportunity", gettext_lazy("Activities")),
    ("contracts:for_opportunity", gettext_lazy("Contracts")),
]


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _owner_filter(request) -> int | None:
    """?owner=<id> when it is someone whose deals the user sees (else ignored)."""
    owner_id = _int(request.GET.get("owner") or request.POST.get("owner"))
    if owner_id is None:
        return None
    return owner_id if owner_id in {u.pk for u in selectors.board_owner_choices(request.user)} else None


# --- the board ---------------------------------------------------------------------------------------
@login_required
def board_view(request, pipeline_pk: int | None = None):
    pipeline = selectors.pipeline_get(pipeline_pk)
    owner_id = _owner_filter(request)
    now = timezone.now()
    columns = selectors.board(user=request.user, pipeline=pipeline, owner_id=owner_id, now=now)
    owners = selectors.board_owner_choices(request.user)
    return render(request, "opportunities/board.html", {
        "pipeline": pipeline,
        "pipelines": list(selectors.pipeline_list()),
        "columns": columns,
        "owners": owners if len(owners) > 1 else [],
        "owner_id": owner_id,
        "now": now,
        "closed_days": selectors.CLOSED_COLUMN_DAYS,
    })


@login_required
def column_more(request, stage_pk: int):
    """HTMX: the next cards of a column (after the cursor "priority:id")."""
    stage = get_object_or_404(Stage.objects.select_related("pipeline"), pk=stage_pk)
    after = None
    raw = request.GET.get("after", "")
    if ":" in raw:
        priority, pk = (_int(part) for part in raw.split(":", 1))
        if priority is not None and pk is not None:
            after = (priority, pk)
    owner_id = _owner_filter(request)
    now = timezone.now()
    cards, has_more = selectors.column_cards(user=request.user, stage=stage, after=after, owner_id=owner_id, now=now)
    return render(request, "opportunities/partials/_cards.html", {
        "cards": cards, "has_more": has_more, "stage": stage, "owner_id": owner_id, "now": now,
    })


def _board_action(opportunity, target: Stage) -> str:
    current = opportunity.current_stage()
    if target.is_won:
        return "win"
    if target.is_lost:
        return "lose"
    if current.is_lost:
        return "reopen"
    if (target.order, target.pk) > (current.order, current.pk):
        return "advance"
    return "move_back"


def _feedback(request, opportunity, *, error: TransitionRefused | None = None, action: str = "", target=None,
              form=None) -> HttpResponse:
    """The board's answer to a move it could not make: the card snaps back (the JS listens to the
    `opportunity-move-refused` event) and the reason, with a form to fix it, shows above the board.
    Status 200: htmx swaps only successful responses; the event tells the page it was refused."""
    criteria_form = None
    if error is not None and any(u.field in EXIT_FIELDS or u.code.startswith("checklist:") for u in error.unmet):
        criteria_form = CriteriaForm(opportunity=opportunity)
    if form is None and action == "move_back" and error is None:
        form = MoveBackForm(opportunity=opportunity, initial={"to_stage": getattr(target, "pk", None)})
    if form is None and action == "lose" and error is None:
        form = LoseForm()
    html = render_to_string("opportunities/partials/_move_feedback.html", {
        "opportunity": opportunity, "error": error, "action": action, "target": target,
        "criteria_form": criteria_form, "form": form, "conflict": isinstance(error, ConflictError),
    }, request=request)
    response = HttpResponse(html)
    response["HX-Retarget"] = "#board-feedback"
    response["HX-Reswap"] = "innerHTML"
    response["HX-Trigger"] = "opportunity-move-refused"
    return response


def _moved(request, opportunity, owner_id) -> HttpResponse:
    """The moved card, plus every column header (out-of-band) with fresh totals."""
    now = timezone.now()
    stages = selectors.pipeline_stages(opportunity.pipeline)
    totals = selectors.board_totals(user=request.user, stages=stages, owner_id=owner_id, now=now)
    html = render_to_string("opportunities/partials/_moved.html", {
        "card": opportunity, "now": now,
        "heads": [(stage, *totals.get(stage.pk, (0, Decimal(0), Decimal(0)))) for stage in stages],
    }, request=request)
    response = HttpResponse(html)
    response["HX-Trigger"] = "opportunity-moved"
    return response


@login_required
@require_POST
def board_move(request, pk: int):
    """HTMX from the board: a card dropped on another column. Advance / win / reopen happen at once;
    moving back or losing needs a reason, so the card snaps back and the form shows."""
    opportunity = selectors.opportunity_get_for_user(user=request.user, pk=pk)
    target = next((s for s in opportunity.pipeline_stages() if s.pk == _int(request.POST.get("to_stage"))), None)
    if target is None:
        return HttpResponseBadRequest(_("Unknown stage."))
    expected = _int(request.POST.get("from_stage"), opportunity.stage_id)
    if expected != opportunity.stage_id:
        error = ConflictError(_("This opportunity has just been moved by someone else. Reload the board."))
        return _feedback(request, opportunity, error=error)
    action = _board_action(opportunity, target)
    if target.pk == opportunity.stage_id:
        return _moved(request, opportunity, _owner_filter(request))
    if action in ("move_back", "lose"):
        unmet = rules.action_unmet(opportunity, action, request.user,
                                   **({"to_stage": target} if action == "move_back" else {}))
        if unmet:
            return _feedback(request, opportunity, action=action, target=target,
                             error=services._refuse(action, unmet))
        return _feedback(request, opportunity, action=action, target=target)
    if action == "reopen" and not rules.action_unmet(opportunity, "reopen", request.user):
        back_to = opportunity.reopen_target()
        if back_to is not None and target.pk != back_to.pk:
            refusal = TransitionRefused(
                _("A lost deal reopens in the stage it was lost from: “%(stage)s”.") % {"stage": back_to.name},
                unmet=[Unmet("reopen_target", _("Drop it on “%(stage)s”.") % {"stage": back_to.name})],
            )
            return _feedback(request, opportunity, error=refusal, action=action, target=target)
    if action == "advance" and opportunity.next_open_stage() and target.pk != opportunity.next_open_stage().pk:
        # a refused skip also says what the next stage still needs (with the form to fill it in place)
        detail = _("Deals move one stage at a time: the next stage is “%(stage)s”.") % {
            "stage": opportunity.next_open_stage().name}
        missing = opportunity.exit_criteria_unmet()
        if missing:
            detail = f"{detail} {services._refuse('advance', missing).detail}"
        refusal = TransitionRefused(detail, unmet=[Unmet("no_skipping", _("No skipping stages.")), *missing])
        return _feedback(request, opportunity, error=refusal, action=action, target=target)
    try:
        moved = _call_move(action, opportunity, request.user, expected_stage_id=expected)
    except TransitionRefused as exc:
        return _feedback(request, opportunity, error=exc, action=action, target=target)
    except PermissionDenied as exc:
        return _feedback(request, opportunity, action=action, target=target,
                         error=TransitionRefused(str(exc), code="permission_denied"))
    return _moved(request, moved, _owner_filter(request))


def _call_move(action: str, opportunity, user, *, expected_stage_id=None, **kwargs):
    service = {
        "advance": services.opportunity_advance,
        "move_back": services.opportunity_move_back,
        "win": services.opportunity_win,
        "lose": services.opportunity_lose,
        "reopen": services.opportunity_reopen,
    }[action]
    return service(opportunity=opportunity, user=user, expected_stage_id=expected_stage_id, **kwargs)


# --- moves from forms (detail page and the board's feedback forms) ------------------------------------
def _done(request, opportunity, message: str) -> HttpResponse:
    messages.success(request, message)
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return redirect(opportunity.get_absolute_url())


def _refused(request, opportunity, exc: TransitionRefused, action: str = "") -> HttpResponse:
    if request.htmx:
        return _feedback(request, opportunity, error=exc, action=action)
    messages.error(request, exc.detail)
    return redirect(opportunity.get_absolute_url())


@login_required
@require_POST
def transition_view(request, pk: int, action: str):
    """POST a move: advance, move_back (to_stage, reason), win, lose (loss_reason, note), reopen."""
    if action not in rules.ACTIONS:
        return HttpResponseBadRequest(_("Unknown action."))
    opportunity = selectors.opportunity_get_for_user(user=request.user, pk=pk)
    expected = _int(request.POST.get("from_stage"), opportunity.stage_id)
    kwargs: dict = {}
    if action == "move_back":
        form = MoveBackForm(request.POST, opportunity=opportunity)
        if not form.is_valid():
            return _invalid(request, opportunity, action, form)
        kwargs = {"to_stage": form.stages[form.cleaned_data["to_stage"]], "reason": form.cleaned_data["reason"]}
    elif action == "lose":
        form = LoseForm(request.POST)
        if not form.is_valid():
            return _invalid(request, opportunity, action, form)
        kwargs = {"loss_reason": form.cleaned_data["loss_reason"], "note": form.cleaned_data["note"]}
    elif action in ("advance", "win", "reopen"):
        note_form = NoteForm(request.POST)
        kwargs = {"note": note_form.cleaned_data["note"]} if note_form.is_valid() else {}
    try:
        moved = _call_move(action, opportunity, request.user, expected_stage_id=expected, **kwargs)
    except TransitionRefused as exc:
        return _refused(request, opportunity, exc, action)
    return _done(request, moved, _("“%(title)s” is now in “%(stage)s”.") % {"title": moved.title, "stage": moved.stage.name})


def _invalid(request, opportunity, action, form) -> HttpResponse:
    if request.htmx:
        return _feedback(request, opportunity, action=action, form=form)
    messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
    return redirect(opportunity.get_absolute_url())


@login_required
@require_POST
def criteria_view(request, pk: int):
    """Fill the missing exit criteria (fields and checklist), then, if asked, advance."""
    opportunity = selectors.opportunity_get_for_user(user=request.user, pk=pk)
    form = CriteriaForm(request.POST, opportunity=opportunity)
    if not form.is_valid():
        if request.htmx:
            return _feedback(request, opportunity, error=TransitionRefused(
                _("Fill in the missing criteria."), unmet=opportunity.exit_criteria_unmet()), action="advance")
        messages.error(request, _("Fill in the missing criteria."))
        return redirect(opportunity.get_absolute_url())
    try:
        if form.field_changes():
            opportunity = services.opportunity_update(opportunity=opportunity, user=request.user, **form.field_changes())
        for item in form.ticked_items():
            opportunity = services.opportunity_checklist_tick(opportunity=opportunity, user=request.user, item=item)
        if request.POST.get("advance"):
            moved = services.opportunity_advance(opportunity=opportunity, user=request.user,
                                                 expected_stage_id=_int(request.POST.get("from_stage")))
            return _done(request, moved, _("“%(title)s” is now in “%(stage)s”.") % {"title": moved.title, "stage": moved.stage.name})
    except TransitionRefused as exc:
        return _refused(request, opportunity, exc, "advance")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(opportunity.get_absolute_url())
    return _done(request, opportunity, _("Saved."))


@login_required
@require_POST
def checklist_tick_view(request, pk: int, item_pk: int):
    opportunity = selectors.opportunity_get_for_user(user=request.user, pk=pk)
    item = get_object_or_404(StageChecklistItem, pk=item_pk, stage_id=opportunity.stage_id)
    opportunity = services.opportunity_checklist_tick(
        opportunity=opportunity, user=request.user, item=item, ticked=request.POST.get("ticked") == "1"
    )
    if request.htmx:
        return render(request, "opportunities/partials/_checklist.html", {"opportunity": opportunity,
                                                                          "criteria": _criteria(opportunity)})
    return redirect(opportunity.get_absolute_url())


# --- detail, create, edit -------------------------------------------------------------------------------
def _criteria(opportunity) -> dict:
    stage = opportunity.current_stage()
    fields = [{"name": name, "label": EXIT_FIELDS[name], "met": opportunity.field_is_filled(name)}
              for name in stage.exit_fields if name in EXIT_FIELDS]
    return {"fields": fields, "items": opportunity.checklist_items()}


def _panels(pk: int) -> list[tuple[str, str]]:
    panels = []
    for url_name, title in DETAIL_PANELS:
        try:
            panels.append((reverse(url_name, args=[pk]), title))
        except NoReverseMatch:
            continue
    return panels


@login_required
def detail_view(request, pk: int):
    opportunity = selectors.opportunity_get_for_user(user=request.user, pk=pk)
    now = timezone.now()
    history = selectors.opportunity_history(opportunity)
    actions = rules.available_actions(opportunity, request.user)
    allowed = {a.name for a in actions if a.allowed}
    weights = PriorityWeights.load()
    parts = scoring.priority_parts(opportunity, weights, now=now)
    path = selectors.pipeline_stages(opportunity.pipeline)
    open_path = [s for s in path if s.is_open]
    current = opportunity.current_stage()
    passed = {s.pk for s in open_path if current.is_open and (s.order, s.pk) < (current.order, current.pk)}
    if not current.is_open:
        passed = {s.pk for s in open_path}
    return render(request, "opportunities/detail.html", {
        "opportunity": opportunity,
        "stage": current,
        "now": now,
        "history": history,
        "actions": actions,
        "criteria": _criteria(opportunity) if current.is_open else None,
        "criteria_form": CriteriaForm(opportunity=opportunity) if current.is_open and opportunity.exit_criteria_unmet() else None,
        "move_back_form": MoveBackForm(opportunity=opportunity) if "move_back" in allowed else None,
        "lose_form": LoseForm() if "lose" in allowed else None,
        "parts": parts,
        "total_weight": sum(p.weight for p in parts),
        "open_path": open_path,
        "closed_path": [s for s in path if not s.is_open],
        "passed": passed,
        "panels": _panels(opportunity.pk),
        "labels": dict(TransitionAction.choices),
    })


@login_required
def create_view(request):
    customer = None
    customer_pk = _int(request.GET.get("customer") or request.POST.get("customer"))
    if request.GET.get("customer"):
        customer = customer_get_for_user(user=request.user, pk=customer_pk)
    form = OpportunityForm(request.POST or None, user=request.user, customer=customer)
    if request.method == "POST" and form.is_valid():
        try:
            opportunity = services.opportunity_create(
                user=request.user, customer=form.cleaned_data["customer"], **form.service_kwargs()
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Opportunity created."))
            return redirect(opportunity.get_absolute_url())
    return render(request, "opportunities/form.html", {"form": form, "customer": customer, "opportunity": None})


@login_required
def edit_view(request, pk: int):
    opportunity = selectors.opportunity_get_for_user(user=request.user, pk=pk)
    form = OpportunityForm(request.POST or None, instance=opportunity, user=request.user)
    if request.method == "POST":
        # the form wrote into the instance: the service locks and applies the changes itself
        fresh = selectors.opportunity_get_for_user(user=request.user, pk=pk)
        if form.is_valid():
            try:
                services.opportunity_update(
                    opportunity=fresh, user=request.user, expected_version=form.cleaned_data.get("version"),
                    **form.service_kwargs(),
                )
            except ConflictError as exc:
                form.add_error(None, exc.detail)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect(fresh.get_absolute_url())
        opportunity = fresh
    return render(request, "opportunities/form.html", {"form": form, "opportunity": opportunity,
                                                       "customer": opportunity.customer})


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- list and export ------------------------------------------------------------------------------------
def _list_query(request):
    pipeline = selectors.pipeline_get(_int(request.GET.get("pipeline")))
    stages = selectors.pipeline_stages(pipeline)
    form = FilterForm(request.GET or None, user=request.user, stages=stages)
    filters, sort = form.filters(pipeline)
    return pipeline, form, selectors.opportunity_list(user=request.user, filters=filters, sort=sort), sort


@login_required
def list_view(request):
    pipeline, form, qs, sort = _list_query(request)
    page = max(1, _int(request.GET.get("page"), 1))
    rows, has_next = selectors.page_of(qs, page=page, per_page=50)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "opportunities/list.html", {
        "pipeline": pipeline, "pipelines": list(selectors.pipeline_list()), "form": form, "rows": rows,
        "page": page, "has_next": has_next, "query": query.urlencode(), "now": timezone.now(), "sort": sort,
    })


@login_required
def export_view(request):
    """CSV of the filtered list (the same scope and filters; cells that start a formula are neutralised)."""
    _pipeline, _form, qs, _sort = _list_query(request)
    now = timezone.now()

    def rows():
        for o in qs.iterator(chunk_size=2000):
            yield [
                o.pk, o.title, o.customer.name, o.stage.name, o.amount, o.currency, o.probability,
                o.weighted_amount.quantize(Decimal("0.01")), o.priority_score, o.expected_close_date,
                o.owner.display_name, o.get_source_display(), o.competitors, o.next_step, o.next_step_date,
                _("yes") if o.is_stalled(now) else "", o.days_in_stage(now), o.created_at,
            ]

    return csv_response(rows(), filename="opportunities.csv", header=[
        _("ID"), _("Title"), _("Customer"), _("Stage"), _("Amount"), _("Currency"), _("Probability (%)"),
        _("Weighted amount"), _("Priority"), _("Expected close date"), _("Owner"), _("Source"), _("Competitors"),
        _("Next step"), _("Next step date"), _("Stalled"), _("Days in stage"), _("Created at"),
    ])


# --- the customer page's panel ----------------------------------------------------------------------------
@login_required
def customer_panel(request, customer_pk: int):
    """HTMX panel for the customer page: the customer's deals the user sees, and "new opportunity"."""
    customer = customer_get_for_user(user=request.user, pk=customer_pk)
    deals = list(selectors.customer_opportunities(user=request.user, customer_id=customer.pk)[:50])
    return render(request, "opportunities/partials/_customer_panel.html", {
        "customer": customer, "deals": deals, "now": timezone.now(),
    })
