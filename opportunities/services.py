"""Every write to pipelines and opportunities that matters.

Each service runs in one transaction, locks the opportunity row (`SELECT ... FOR UPDATE`), checks the
rules, writes the change and its `StageChange` row, and sends the signals of `opportunities.signals`
on commit only. Pages, the kanban board, the API, Django admin, Celery tasks and the contracts app all
move deals through these functions:

    opportunity_create, opportunity_update, opportunity_advance, opportunity_move_back,
    opportunity_win, opportunity_lose, opportunity_reopen, opportunity_checklist_tick,
    opportunity_record_activity, pipeline_create, pipeline_update, pipeline_delete, stage_create,
    stage_update, stage_reorder, stage_deactivate, stage_delete, pipeline_ensure_closed_stages,
    stalled_scan, priority_refresh.

A refused move raises `TransitionRefused` (code "transition_not_allowed", the translated message and
the `unmet` list); a move or edit based on a stale copy raises `ConflictError` (code "conflict").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import TransitionNotAllowed

from accounts.scope import is_manager_or_admin, managed_user_ids, sees_everything
from leads.models import Contact, Customer

from . import scoring, signals
from .defaults import seed_defaults
from .exceptions import ConflictError, TransitionRefused
from .models import (
    ChecklistTick,
    LossReason,
    Opportunity,
    Pipeline,
    PriorityWeights,
    Stage,
    StageChange,
    StageChecklistItem,
    StageKind,
    TransitionAction,
    Unmet,
)
from .rules import action_unmet

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

# The fields `opportunity_update` may change (the stage only moves through the transitions).
EDITABLE_FIELDS = (
    "title", "amount", "currency", "expected_close_date", "probability", "owner", "contact", "source",
    "competitors", "next_step", "next_step_date", "budget", "decision_maker", "pain_points",
)


# --- pipelines -------------------------------------------------------------------------------------
def pipeline_ensure_default() -> Pipeline:
    """The default pipeline, created with its stages (and the loss reasons) if missing."""
    pipeline = Pipeline.objects.filter(is_default=True).first()
    if pipeline is not None:
        return pipeline
    with transaction.atomic():
        seed_defaults(Pipeline, Stage, StageChecklistItem, LossReason)
        pipeline = Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.get(code="new_business")
    return pipeline


@transaction.atomic
def pipeline_ensure_closed_stages(*, pipeline: Pipeline) -> None:
    """Every pipeline has exactly one won and one lost stage (added when an admin creates a pipeline)."""
    kinds = set(pipeline.stages.exclude(kind=StageKind.OPEN).values_list("kind", flat=True))
    top = max(pipeline.stages.values_list("order", flat=True), default=0)
    if StageKind.WON not in kinds:
        Stage.objects.create(pipeline=pipeline, code="won", name_zh="赢单", name_en="Won", kind=StageKind.WON,
                             order=max(top + 1, 90), default_probability=100)
    if StageKind.LOST not in kinds:
        Stage.objects.create(pipeline=pipeline, code="lost", name_zh="输单", name_en="Lost", kind=StageKind.LOST,
                             order=max(top + 2, 91), default_probability=0)


@transaction.atomic
def stage_deactivate(*, stage: Stage, user: User | None, move_to: Stage | None = None) -> int:
    """Deactivate an open stage. The opportunities in it move to `move_to` (required when there are
    any), each with a StageChange row (action "reassign"). Returns how many moved.

    Locks the stage first (FOR UPDATE): a move into it waits until we commit and then finds it
    inactive (see `_stage_still_active`); a move that got there first is committed before we look."""
    locked = Stage.objects.select_for_update().get(pk=stage.pk)
    if not locked.is_open:
        raise ValidationError(_("The won and lost stages cannot be deactivated."))
    if move_to is not None:
        if move_to.pk == locked.pk or move_to.pipeline_id != locked.pipeline_id or not move_to.is_open:
            raise ValidationError(_("Choose another open stage of the same pipeline."))
    now = timezone.now()
    rows = list(
        Opportunity.objects.select_for_update().filter(stage_id=locked.pk).order_by("pk")
        .values_list("pk", "stage_entered_at")
    )
    if rows and move_to is None:
        raise ValidationError(
            _("This stage holds %(count)s opportunities: choose the stage they move to."),
            params={"count": len(rows)}, code="move_to_required",
        )
    locked.is_active = False
    locked.save(update_fields=["is_active"])
    if not rows:
        return 0
    if not _stage_still_active(move_to.pk):
        raise ConflictError(_("The stage you chose has just been deactivated: choose another."))
    target = Stage.objects.get(pk=move_to.pk)
    ids = [pk for pk, _entered in rows]
    for start in range(0, len(ids), 5000):
        Opportunity.objects.filter(pk__in=ids[start:start + 5000]).update(
            stage=target, stage_entered_at=now, stalled_since=None, probability=target.default_probability,
            version=F("version") + 1, updated_at=now,
        )
    note = _("Stage “%(stage)s” was deactivated.") % {"stage": locked.name}
    changes = StageChange.objects.bulk_create(
        [
            StageChange(
                opportunity_id=pk, action=TransitionAction.REASSIGN, from_stage=locked, to_stage=target,
                changed_by=user, changed_at=now, note=note,
                seconds_in_previous_stage=_seconds_between(entered, now),
            )
            for pk, entered in rows
        ],
        batch_size=2000,
    )
    change_ids = [change.pk for change in changes]
    transaction.on_commit(lambda: _send_reassigned(change_ids, user))
    return len(rows)


PIPELINE_FIELDS = ("code", "name_zh", "name_en", "is_default", "is_active", "order")
STAGE_FIELDS = (
    "code", "name_zh", "name_en", "order", "default_probability", "stall_days", "exit_fields", "playbook_zh",
    "playbook_en",
)


def _require_admin(user: User | None) -> None:
    """Pipelines and stages are configuration: administrators only (None: a management command)."""
    if user is not None and not sees_everything(user):
        raise PermissionDenied(_("Only administrators can change pipelines and stages."))


def _set_fields(obj: Any, fields: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(obj, name, value)


def _take_default(pipeline: Pipeline) -> None:
    """`pipeline` becomes the default one (there is exactly one: a partial unique constraint)."""
    Pipeline.objects.filter(is_default=True).exclude(pk=pipeline.pk).update(is_default=False)


@transaction.atomic
def pipeline_create(*, user: User | None, **fields: Any) -> Pipeline:
    """A new pipeline (as in Django admin), with its won and lost stages; open stages are added next."""
    _require_admin(user)
    pipeline = Pipeline()
    _set_fields(pipeline, fields, PIPELINE_FIELDS)
    if pipeline.is_default and not pipeline.is_active:
        raise ValidationError({"is_active": _("The default pipeline must stay active.")})
    pipeline.full_clean(validate_constraints=False)
    if pipeline.is_default:
        Pipeline.objects.select_for_update().filter(is_default=True).exists()
        _take_default(pipeline)
    pipeline.save()
    pipeline_ensure_closed_stages(pipeline=pipeline)
    return pipeline


@transaction.atomic
def pipeline_update(*, pipeline: Pipeline, user: User | None, **fields: Any) -> Pipeline:
    """Rename, reorder, (de)activate or make default. The default pipeline stays active and stays the
    default until another one is made default (there is always one)."""
    _require_admin(user)
    locked = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    was_default = locked.is_default
    _set_fields(locked, fields, PIPELINE_FIELDS)
    if was_default and not locked.is_default:
        raise ValidationError({"is_default": _("Make another pipeline the default instead.")})
    if locked.is_default and not locked.is_active:
        raise ValidationError({"is_active": _("The default pipeline must stay active.")})
    locked.full_clean(validate_constraints=False)
    if locked.is_default and not was_default:
        _take_default(locked)
    locked.save()
    return locked


@transaction.atomic
def pipeline_delete(*, pipeline: Pipeline, user: User | None) -> None:
    """Delete a pipeline that was never used (as Django admin allows): not the default one, and no
    opportunity in it; otherwise deactivate it."""
    _require_admin(user)
    locked = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    if locked.is_default:
        raise ValidationError(_("The default pipeline cannot be deleted."), code="default_pipeline")
    if Opportunity.objects.filter(pipeline_id=locked.pk).exists():
        raise ValidationError(_("This pipeline has opportunities: deactivate it instead."), code="pipeline_in_use")
    StageChecklistItem.objects.filter(stage__pipeline=locked).delete()
    Stage.objects.filter(pipeline=locked).delete()
    locked.delete()


def _next_open_order(pipeline: Pipeline) -> int:
    top = Stage.objects.filter(pipeline=pipeline, kind=StageKind.OPEN).order_by("-order").values_list(
        "order", flat=True
    ).first()
    return (top or 0) + 1


@transaction.atomic
def stage_create(*, pipeline: Pipeline, user: User | None, **fields: Any) -> Stage:
    """A new open stage (won and lost exist once per pipeline); by default after the last open one."""
    _require_admin(user)
    Pipeline.objects.select_for_update().filter(pk=pipeline.pk).exists()  # one creation at a time per pipeline
    stage = Stage(pipeline=pipeline, kind=StageKind.OPEN)
    _set_fields(stage, fields, STAGE_FIELDS)
    if "order" not in fields:
        stage.order = _next_open_order(pipeline)
    stage.full_clean()
    stage.save()
    return stage


@transaction.atomic
def stage_update(*, stage: Stage, user: User | None, is_active: bool | None = None, **fields: Any) -> Stage:
    """Edit a stage's names, code, order, probability, stall days, exit criteria and playbook; or
    reactivate it (`is_active=True`). Deactivation moves its deals: that is `stage_deactivate`."""
    _require_admin(user)
    locked = Stage.objects.select_for_update().get(pk=stage.pk)
    _set_fields(locked, fields, STAGE_FIELDS)
    if is_active:
        locked.is_active = True
    elif is_active is False and locked.is_active:
        raise ValidationError({"is_active": _("Deactivate the stage with stage_deactivate (it moves its deals).")})
    locked.full_clean()
    locked.save()
    return locked


@transaction.atomic
def stage_reorder(*, pipeline: Pipeline, user: User | None, stage_ids: list[int]) -> list[Stage]:
    """Put the pipeline's open stages in the given order (all of them, each once); won and lost stay last."""
    _require_admin(user)
    stages = {s.pk: s for s in Stage.objects.select_for_update().filter(pipeline=pipeline, kind=StageKind.OPEN)}
    if sorted(stage_ids) != sorted(stages) or len(set(stage_ids)) != len(stage_ids):
        raise ValidationError(
            {"stages": _("List every open stage of the pipeline exactly once.")}, code="stages_mismatch"
        )
    ordered = []
    for position, pk in enumerate(stage_ids, start=1):
        stage = stages[pk]
        if stage.order != position:
            stage.order = position
            stage.save(update_fields=["order"])
        ordered.append(stage)
    top = len(ordered)
    for closed in Stage.objects.select_for_update().filter(pipeline=pipeline).exclude(kind=StageKind.OPEN):
        if closed.order <= top:  # keep won and lost after the open stages
            closed.order = top + (1 if closed.kind == StageKind.WON else 2)
            closed.save(update_fields=["order"])
    return ordered


@transaction.atomic
def stage_delete(*, stage: Stage, user: User | None) -> None:
    """Delete an open stage that no deal is in or ever was in (its history would lose its meaning);
    otherwise it can only be deactivated. The won and lost stages are never deleted."""
    _require_admin(user)
    locked = Stage.objects.select_for_update().get(pk=stage.pk)
    if not locked.is_open:
        raise ValidationError(_("The won and lost stages cannot be deleted."), code="closed_stage")
    used = (
        Opportunity.objects.filter(stage_id=locked.pk).exists()
        or Opportunity.objects.filter(lost_from_stage_id=locked.pk).exists()
        or StageChange.objects.filter(Q(from_stage_id=locked.pk) | Q(to_stage_id=locked.pk)).exists()
    )
    if used:
        raise ValidationError(
            _("Deals are or were in this stage: deactivate it instead of deleting it."), code="stage_in_use"
        )
    locked.delete()


def _send_reassigned(change_ids: list[int], user: User | None) -> None:
    for change in StageChange.objects.filter(pk__in=change_ids).select_related("opportunity").iterator():
        _send(signals.opportunity_stage_changed, opportunity=change.opportunity, stage_change=change,
              action=change.action, user=user)


# --- helpers ---------------------------------------------------------------------------------------
def _stage_still_active(stage_id: int) -> bool:
    """Re-read a stage we are moving deals into, under a shared row lock (PostgreSQL: FOR SHARE).

    A deactivation locks the stage FOR UPDATE before it moves the stage's deals out, so: either it
    committed before we got the lock (we read is_active = false and refuse), or it waits for our
    commit and then moves our deal along with the others. Foreign-key checks cannot do this for us:
    Django's constraints are deferred to COMMIT. Moves into one stage share the lock, so they do not
    wait for each other."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT is_active FROM opportunities_stage WHERE id = %s FOR SHARE", [stage_id])
            row = cursor.fetchone()
        return bool(row and row[0])
    return Stage.objects.filter(pk=stage_id, is_active=True).exists()


def _seconds_between(start: datetime | None, end: datetime) -> int | None:
    if start is None:
        return None
    return max(0, int((end - start).total_seconds()))


def _send(signal, **kwargs: Any) -> None:
    for receiver, response in signal.send_robust(sender=Opportunity, **kwargs):
        if isinstance(response, Exception):
            logger.error("%r receiver failed for opportunity %s", receiver, kwargs.get("opportunity"),
                         exc_info=response)


def _lock(opportunity: Opportunity) -> Opportunity:
    """Lock the row. No joins in the locking query: under READ COMMITTED PostgreSQL re-checks a row
    that a concurrent transaction changed against the *old* joined rows, and a moved deal would then
    vanish from the result instead of coming back with its new stage."""
    locked = Opportunity.objects.select_for_update().get(pk=opportunity.pk)
    locked.customer = Customer.objects.get(pk=locked.customer_id)
    return locked


def _set_history_user(opportunity: Opportunity, user: User | None) -> None:
    if user is not None and getattr(user, "pk", None):
        opportunity._history_user = user


def _check_owner(*, by: User, owner: User) -> None:
    """A rep owns their own deals; a manager may give a deal to anyone in their teams."""
    allowed = managed_user_ids(by)
    if allowed is not None and owner.pk not in allowed:
        raise ValidationError({"owner": _("You cannot assign opportunities to this user.")})
    if not owner.is_active:
        raise ValidationError({"owner": _("This user is inactive.")})


def _check_contact(customer_id: int, contact: Contact | None) -> None:
    if contact is not None and contact.customer_id != customer_id:
        raise ValidationError({"contact": _("The contact belongs to another customer.")})


def _refresh_priority(opportunity: Opportunity, weights: PriorityWeights | None = None, now: datetime | None = None):
    opportunity.priority_score = scoring.priority_score(opportunity, weights or PriorityWeights.load(), now=now)


# --- create and edit -------------------------------------------------------------------------------
@transaction.atomic
def opportunity_create(
    *,
    user: User,
    customer: Customer,
    title: str,
    amount: Decimal | str | int = Decimal("0"),
    pipeline: Pipeline | None = None,
    owner: User | None = None,
    probability: int | None = None,
    created_at: datetime | None = None,
    **fields: Any,
) -> Opportunity:
    """A new deal in the first active open stage of its pipeline (the default one unless given).

    The customer must be one `user` sees; the owner defaults to `user` (a manager may pick anyone in
    their teams); the probability defaults to the stage's."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown or read-only fields: %(fields)s"), params={"fields": ", ".join(sorted(unknown))})
    if not Customer.objects.visible_to(user).filter(pk=customer.pk).exists():
        raise ValidationError({"customer": _("You cannot see this customer.")})
    pipeline = pipeline or pipeline_ensure_default()
    if not pipeline.is_active:
        raise ValidationError({"pipeline": _("This pipeline is inactive.")})
    first = Stage.objects.filter(pipeline=pipeline, kind=StageKind.OPEN, is_active=True).order_by("order", "id").first()
    if first is None:
        raise ValidationError({"pipeline": _("This pipeline has no active open stage.")})
    if not _stage_still_active(first.pk):
        raise ConflictError(_("The stage “%(stage)s” has just been deactivated.") % {"stage": first.name})
    owner = owner or user
    _check_owner(by=user, owner=owner)
    _check_contact(customer.pk, fields.get("contact"))
    if not (title or "").strip():
        raise ValidationError({"title": _("Enter a title.")})
    now = created_at or timezone.now()
    opportunity = Opportunity(
        pipeline=pipeline, stage=first, customer=customer, title=title.strip(), amount=Decimal(str(amount)),
        owner=owner, created_by=user, created_at=now, stage_entered_at=now,
        probability=first.default_probability if probability is None else probability, **fields,
    )
    opportunity.full_clean(exclude=["stage"])
    _refresh_priority(opportunity)
    _set_history_user(opportunity, user)
    opportunity.save()
    change = StageChange.objects.create(
        opportunity=opportunity, action=TransitionAction.CREATE, from_stage=None, to_stage=first,
        changed_by=user, changed_at=now,
    )
    transaction.on_commit(lambda: _send(signals.opportunity_created, opportunity=opportunity, user=user))
    transaction.on_commit(lambda: _send(signals.opportunity_stage_changed, opportunity=opportunity,
                                        stage_change=change, action=TransitionAction.CREATE, user=user))
    return opportunity


@transaction.atomic
def opportunity_update(
    *, opportunity: Opportunity, user: User, expected_version: int | None = None, **changes: Any
) -> Opportunity:
    """Edit the deal's fields (never its stage). With `expected_version` (the version the user's form
    showed) a concurrent edit raises ConflictError instead of being overwritten."""
    if "stage" in changes or "stage_id" in changes:
        raise ValidationError({"stage": _("The stage changes only through the stage moves.")})
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(_("Unknown or read-only fields: %(fields)s"), params={"fields": ", ".join(sorted(unknown))})
    locked = _lock(opportunity)
    if expected_version is not None and int(expected_version) != locked.version:
        raise ConflictError(
            _("Someone else changed this opportunity after you opened it. Reload it and apply your changes again."),
            code="conflict",
        )
    if "owner" in changes and changes["owner"] is not None and changes["owner"].pk != locked.owner_id:
        _check_owner(by=user, owner=changes["owner"])
    if "contact" in changes:
        _check_contact(locked.customer_id, changes["contact"])
    changed = []
    for name, value in changes.items():
        if name == "title":
            value = (value or "").strip()
        if name == "amount" and value is not None:
            value = Decimal(str(value))
        if getattr(locked, name) != value:
            setattr(locked, name, value)
            changed.append(name)
    if not changed:
        return locked
    locked.full_clean(exclude=["stage"])
    locked.version += 1
    _refresh_priority(locked)
    _set_history_user(locked, user)
    locked.save()
    return locked


@transaction.atomic
def opportunity_checklist_tick(
    *, opportunity: Opportunity, user: User, item: StageChecklistItem, ticked: bool = True
) -> Opportunity:
    """Tick (or untick) a checklist item of the deal's current stage."""
    locked = _lock(opportunity)
    if item.stage_id != locked.stage_id:
        raise ValidationError(_("This checklist item belongs to another stage."))
    if ticked:
        ChecklistTick.objects.get_or_create(opportunity=locked, item=item, defaults={"ticked_by": user})
    else:
        ChecklistTick.objects.filter(opportunity=locked, item=item).delete()
    Opportunity.objects.filter(pk=locked.pk).update(version=F("version") + 1, updated_at=timezone.now())
    locked.refresh_from_db(fields=["version", "updated_at"])
    locked.forget_rule_caches()
    return locked


def opportunity_record_activity(*, opportunity_id: int, at: datetime) -> bool:
    """An activity was done on the deal at `at` (the activities app calls this): moves the deal's
    last activity forward (never backwards) and refreshes its priority. True if it changed."""
    with transaction.atomic():
        locked = (
            Opportunity.objects.select_for_update().filter(pk=opportunity_id).first()
        )
        if locked is None or (locked.last_activity_at is not None and locked.last_activity_at >= at):
            return False
        locked.last_activity_at = at
        _refresh_priority(locked)
        Opportunity.objects.filter(pk=locked.pk).update(
            last_activity_at=at, priority_score=locked.priority_score, updated_at=timezone.now()
        )
    return True


# --- the moves -------------------------------------------------------------------------------------
def _refuse(action: str, unmet: list[Unmet]) -> TransitionRefused:
    messages = {
        "advance": _("The deal cannot advance yet"),
        "move_back": _("The deal cannot move back"),
        "win": _("The deal cannot be won yet"),
        "lose": _("The deal cannot be marked as lost"),
        "reopen": _("The deal cannot be reopened"),
    }
    missing = [item for item in unmet if item.code.startswith(("field:", "checklist:"))]
    if missing and len(missing) == len(unmet):
        # a list of names: "budget, decision maker" / "预算、决策人"
        labels = _(", ").join(str(item.label) for item in unmet)
        message = _("%(base)s: still missing %(missing)s.") % {"base": messages[action], "missing": labels}
    else:
        labels = " ".join(str(item.label) for item in unmet)
        message = _("%(base)s: %(reasons)s") % {"base": messages[action], "reasons": labels}
    return TransitionRefused(message, unmet=unmet, action=action)


def _move(
    *,
    opportunity: Opportunity,
    user: User | None,
    action: str,
    note: str = "",
    expected_stage_id: int | None = None,
    perform: Callable[[Opportunity], Any],
    check: Callable[[Opportunity], list[Unmet]],
    at: datetime | None = None,
) -> Opportunity:
    expected = opportunity.stage_id if expected_stage_id is None else int(expected_stage_id)
    with transaction.atomic():
        locked = _lock(opportunity)
        if locked.stage_id != expected:
            raise ConflictError(
                _("This opportunity has just been moved by someone else (it is now in “%(stage)s”). "
                  "Reload the page to see its current stage.") % {"stage": locked.stage.name},
                action=action,
            )
        unmet = check(locked)
        if unmet:
            raise _refuse(action, unmet)
        from_stage = locked.current_stage()
        entered = locked.stage_entered_at
        try:
            perform(locked)
        except TransitionNotAllowed as exc:  # the FSM's own guard: same rules, re-checked
            raise _refuse(action, check(locked) or [Unmet("transition_not_allowed", str(exc))]) from exc
        to_stage = locked.current_stage()
        if not _stage_still_active(to_stage.pk):
            raise ConflictError(_("The stage “%(stage)s” has just been deactivated.") % {"stage": to_stage.name},
                                action=action)
        now = at or timezone.now()
        locked.stage_entered_at = now
        locked.stalled_since = None
        locked.probability = to_stage.default_probability
        locked.closed_at = None if to_stage.is_open else now
        locked.version += 1
        _refresh_priority(locked, now=now)
        _set_history_user(locked, user)
        locked.save()
        change = StageChange.objects.create(
            opportunity=locked, action=action, from_stage=from_stage, to_stage=to_stage, changed_by=user,
            changed_at=now, note=note, seconds_in_previous_stage=_seconds_between(entered, now),
        )

        def send() -> None:
            _send(signals.opportunity_stage_changed, opportunity=locked, stage_change=change, action=action,
                  user=user)
            if to_stage.is_won:
                _send(signals.opportunity_won, opportunity=locked, user=user)
            elif to_stage.is_lost:
                _send(signals.opportunity_lost, opportunity=locked, user=user, loss_reason=locked.loss_reason)

        transaction.on_commit(send)
    return locked


def opportunity_advance(
    *, opportunity: Opportunity, user: User | None, note: str = "", expected_stage_id: int | None = None
) -> Opportunity:
    """Next active open stage; refused unless the current stage's exit criteria are all met (the
    error lists each missing one) and refused from the last open stage (a deal is won by a contract)."""
    return _move(
        opportunity=opportunity, user=user, action=TransitionAction.ADVANCE, note=note,
        expected_stage_id=expected_stage_id, check=lambda o: o.advance_unmet(), perform=lambda o: o.advance(),
    )


def opportunity_move_back(
    *,
    opportunity: Opportunity,
    user: User | None,
    reason: str,
    to_stage: Stage | None = None,
    expected_stage_id: int | None = None,
) -> Opportunity:
    """Back to an earlier active open stage (the previous one unless `to_stage`); a reason is required."""
    reason = (reason or "").strip()

    def check(locked: Opportunity) -> list[Unmet]:
        unmet = locked.move_back_unmet(to_stage)
        if not unmet and not reason:
            unmet = [Unmet("reason_required", _("Give a reason for moving the deal back."), field="reason")]
        return unmet

    def perform(locked: Opportunity) -> None:
        target = to_stage or locked.earlier_open_stages()[-1]
        target = next(s for s in locked.pipeline_stages() if s.pk == target.pk)
        locked.move_back(target)

    return _move(
        opportunity=opportunity, user=user, action=TransitionAction.MOVE_BACK, note=reason,
        expected_stage_id=expected_stage_id, check=check, perform=perform,
    )


def opportunity_win(
    *, opportunity: Opportunity, user: User | None, note: str = "", expected_stage_id: int | None = None
) -> Opportunity:
    """Won: only from the last open stage and only with a signed contract (the check the contracts app
    registers in `opportunities.rules`). Signing a contract calls this in the signing transaction."""
    return _move(
        opportunity=opportunity, user=user, action=TransitionAction.WIN, note=note,
        expected_stage_id=expected_stage_id, check=lambda o: o.win_unmet(), perform=lambda o: o.win(),
    )


def opportunity_lose(
    *,
    opportunity: Opportunity,
    user: User | None,
    loss_reason: LossReason | None,
    note: str = "",
    expected_stage_id: int | None = None,
) -> Opportunity:
    """Lost, from any open stage; a loss reason (from the admin's list) is required."""

    def check(locked: Opportunity) -> list[Unmet]:
        unmet = locked.lose_unmet()
        if not unmet and (loss_reason is None or not loss_reason.is_active):
            unmet = [Unmet("loss_reason_required", _("Choose why the deal was lost."), field="loss_reason")]
        return unmet

    note = (note or "").strip()
    return _move(
        opportunity=opportunity, user=user, action=TransitionAction.LOSE, note=note,
        expected_stage_id=expected_stage_id, check=check, perform=lambda o: o.lose(loss_reason, note),
    )


def opportunity_reopen(
    *, opportunity: Opportunity, user: User, note: str = "", expected_stage_id: int | None = None
) -> Opportunity:
    """Lost → the stage it was lost from. Managers and administrators only (PermissionDenied)."""
    if not is_manager_or_admin(user):
        raise PermissionDenied(_("Only managers and administrators can reopen a lost deal."))
    return _move(
        opportunity=opportunity, user=user, action=TransitionAction.REOPEN, note=note,
        expected_stage_id=expected_stage_id, check=lambda o: action_unmet(o, "reopen", user),
        perform=lambda o: o.reopen(),
    )


# --- periodic work ---------------------------------------------------------------------------------
def stalled_scan(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Flag open deals that stayed in their stage longer than its time limit (`stalled_since` = the
    moment they crossed it) and send `opportunity_stalled` once per deal and stay. Rows are claimed
    with SKIP LOCKED, so overlapping scans never flag (or notify) a deal twice."""
    now = now or timezone.now()
    flagged = 0
    stages = Stage.objects.filter(kind=StageKind.OPEN, is_active=True, stall_days__isnull=False)
    for stage in stages:
        cutoff = now - timedelta(days=stage.stall_days)
        while True:
            with transaction.atomic():
                batch = list(
                    Opportunity.objects.select_for_update(skip_locked=True)
                    .filter(stage_id=stage.pk, stalled_since__isnull=True, stage_entered_at__lt=cutoff)
                    .order_by("stage_entered_at")[:batch_size]
                )
                for opportunity in batch:
                    opportunity.stalled_since = opportunity.stage_entered_at + timedelta(days=stage.stall_days)
                Opportunity.objects.bulk_update(batch, ["stalled_since"])
                ids = [opportunity.pk for opportunity in batch]
                transaction.on_commit(lambda ids=ids: _send_stalled(ids))
            flagged += len(batch)
            if len(batch) < batch_size:
                break
    return flagged


def _send_stalled(ids: Iterable[int]) -> None:
    for opportunity in Opportunity.objects.filter(pk__in=list(ids)).select_related("owner", "customer", "stage"):
        _send(signals.opportunity_stalled, opportunity=opportunity, stalled_since=opportunity.stalled_since)


def priority_refresh(*, now: datetime | None = None, batch_size: int = 1000, open_only: bool = True) -> int:
    """Recompute the stored priority score (nightly: the recent-activity part changes with time, and
    customers change tier). Returns how many scores changed."""
    now = now or timezone.now()
    weights = PriorityWeights.load()
    qs = Opportunity.objects.select_related("customer").order_by("pk")
    if open_only:
        qs = qs.filter(stage__kind=StageKind.OPEN)
    changed = 0
    last_pk = 0
    while True:
        batch = list(qs.filter(pk__gt=last_pk)[:batch_size])
        if not batch:
            break
        last_pk = batch[-1].pk
        dirty = []
        for opportunity in batch:
            score = scoring.priority_score(opportunity, weights, now=now)
            if score != opportunity.priority_score:
                opportunity.priority_score = score
                dirty.append(opportunity)
        if dirty:
            Opportunity.objects.bulk_update(dirty, ["priority_score"])
            changed += len(dirty)
    return changed
