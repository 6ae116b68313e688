"""Helpers of the opportunities tests (and of other apps' tests that need deals): deals are created
and moved through the services, so they obey the rules."""

from __future__ import annotations

from decimal import Decimal

from opportunities import services
from opportunities.models import LossReason, Opportunity, Pipeline, Stage, StageKind
from tests.factories import CustomerFactory

# Values that satisfy every exit-criterion field of the default pipeline.
COMPLETE_FIELDS = {
    "source": "referral",
    "budget": Decimal("200000.00"),
    "decision_maker": "王总 CFO Wang",
    "pain_points": "手工对账耗时 Manual reconciliation is slow",
    "expected_close_date": None,  # filled in by make_opportunity (a date)
}


def default_pipeline() -> Pipeline:
    return services.pipeline_ensure_default()


def open_stages(pipeline: Pipeline | None = None) -> list[Stage]:
    pipeline = pipeline or default_pipeline()
    return list(pipeline.stages.filter(kind=StageKind.OPEN, is_active=True).order_by("order", "id"))


def stage(kind: str, pipeline: Pipeline | None = None) -> Stage:
    pipeline = pipeline or default_pipeline()
    return pipeline.stages.get(kind=kind)


def loss_reason() -> LossReason:
    default_pipeline()
    return LossReason.objects.filter(is_active=True).order_by("order").first()


def make_opportunity(owner, *, customer=None, user=None, amount="100000.00", complete=False, **fields) -> Opportunity:
    """A deal in the first stage of the default pipeline. `complete=True` fills every exit-criterion
    field (a contact is created) and ticks every checklist item, so it can advance freely."""
    from datetime import timedelta

    from django.utils import timezone

    from leads.models import Contact

    customer = customer or CustomerFactory(owner=owner)
    if complete:
        fields = {**COMPLETE_FIELDS, **fields}
        fields["expected_close_date"] = fields["expected_close_date"] or timezone.localdate() + timedelta(days=60)
        fields.setdefault("contact", Contact.objects.create(customer=customer, name="王总 Wang"))
    opportunity = services.opportunity_create(
        user=user or owner, customer=customer, title=fields.pop("title", "ERP 升级 ERP upgrade"),
        amount=Decimal(amount), owner=owner, **fields,
    )
    if complete:
        tick_all(opportunity)
    return opportunity


def tick_all(opportunity: Opportunity) -> None:
    """Tick every checklist item of every stage of the deal's pipeline (ticks of later stages count
    once the deal gets there)."""
    from opportunities.models import ChecklistTick, StageChecklistItem

    for item in StageChecklistItem.objects.filter(stage__pipeline_id=opportunity.pipeline_id):
        ChecklistTick.objects.get_or_create(opportunity=opportunity, item=item)


def advance_to(opportunity: Opportunity, target: Stage, user=None) -> Opportunity:
    """Advance an opportunity (with its criteria met) until it reaches the open stage `target`."""
    user = user or opportunity.owner
    while opportunity.stage_id != target.pk:
        opportunity = services.opportunity_advance(opportunity=opportunity, user=user)
    return opportunity
