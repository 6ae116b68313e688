"""The services of opportunities/services.py: create, edit with version check, exit criteria, the
signals (on commit only), stage deactivation, the stall scan and the priority score."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from leads.models import Contact
from opportunities import scoring, services, signals
from opportunities.exceptions import ConflictError, TransitionRefused
from opportunities.models import (
    ChecklistTick,
    Opportunity,
    PriorityWeights,
    Stage,
    StageChange,
    StageChecklistItem,
    StageKind,
)
from tests.factories import CustomerFactory
from tests.opportunities.factories import advance_to, loss_reason, make_opportunity, open_stages

pytestmark = pytest.mark.django_db


@pytest.fixture
def caught():
    """Records every opportunities signal sent: {signal name: [kwargs, ...]}."""
    seen: dict[str, list[dict]] = {}
    names = ["opportunity_created", "opportunity_stage_changed", "opportunity_won", "opportunity_lost",
             "opportunity_stalled"]
    receivers = []
    for name in names:
        def receiver(sender, _name=name, **kwargs):
            seen.setdefault(_name, []).append(kwargs)
        getattr(signals, name).connect(receiver, weak=False)
        receivers.append((name, receiver))
    yield seen
    for name, receiver in receivers:
        getattr(signals, name).disconnect(receiver)


class TestOpportunityCreate:
    def test_defaults(self, org, pipeline, caught, django_capture_on_commit_callbacks):
        """Default pipeline, its first open stage, the stage's probability, owner = caller, CNY, a
        StageChange "create" row and the created signal on commit."""
        customer = CustomerFactory(owner=org.rep_a)
        with django_capture_on_commit_callbacks(execute=True):
            opportunity = services.opportunity_create(user=org.rep_a, customer=customer, title="CRM 项目",
                                                      amount="12000.00")
        first = open_stages()[0]
        assert opportunity.pipeline == pipeline and opportunity.stage == first
        assert opportunity.probability == first.default_probability == 10
        assert opportunity.owner == org.rep_a and opportunity.currency == "CNY"
        assert opportunity.version == 1 and opportunity.priority_score > 0
        change = StageChange.objects.get(opportunity=opportunity)
        assert (change.action, change.from_stage, change.to_stage, change.imported) == ("create", None, first, False)
        assert [kw["opportunity"].pk for kw in caught["opportunity_created"]] == [opportunity.pk]

    def test_customer_must_be_visible(self, org, pipeline):
        other = CustomerFactory(owner=org.rep_b)
        with pytest.raises(ValidationError):
            services.opportunity_create(user=org.rep_a, customer=other, title="x")
        assert not Opportunity.objects.exists()

    def test_owner_must_be_in_scope(self, org, pipeline):
        """A rep cannot give a deal to a colleague; a manager can give it to their team only."""
        customer = CustomerFactory(owner=org.rep_a)
        with pytest.raises(ValidationError):
            services.opportunity_create(user=org.rep_a, customer=customer, title="x", owner=org.rep_a2)
        with pytest.raises(ValidationError):
            services.opportunity_create(user=org.manager_a, customer=customer, title="x", owner=org.rep_b)
        made = services.opportunity_create(user=org.manager_a, customer=customer, title="x", owner=org.rep_a2)
        assert made.owner == org.rep_a2

    def test_contact_of_another_customer_is_refused(self, org, pipeline):
        customer = CustomerFactory(owner=org.rep_a)
        stranger = Contact.objects.create(customer=CustomerFactory(owner=org.rep_a), name="李四")
        with pytest.raises(ValidationError):
            services.opportunity_create(user=org.rep_a, customer=customer, title="x", contact=stranger)


class TestOpportunityUpdate:
    def test_version_check(self, org, pipeline):
        """An edit based on the current version applies and bumps it; one based on an old version is a
        ConflictError that changes nothing."""
        opportunity = make_opportunity(org.rep_a)
        updated = services.opportunity_update(opportunity=opportunity, user=org.rep_a, expected_version=1,
                                              amount=Decimal("50000"), next_step="报价")
        assert updated.version == 2 and updated.amount == Decimal("50000")
        with pytest.raises(ConflictError) as conflict:
            services.opportunity_update(opportunity=opportunity, user=org.rep_a, expected_version=1, title="旧")
        assert conflict.value.code == "conflict"
        assert Opportunity.objects.get(pk=opportunity.pk).title != "旧"

    def test_stage_is_not_editable(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a)
        with pytest.raises(ValidationError):
            services.opportunity_update(opportunity=opportunity, user=org.rep_a, stage=open_stages()[3])
        assert Opportunity.objects.get(pk=opportunity.pk).stage_id == open_stages()[0].pk

    def test_history_is_kept(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a)
        services.opportunity_update(opportunity=opportunity, user=org.rep_a, amount=Decimal("1"))
        record = opportunity.history.latest()
        assert record.amount == Decimal("1") and record.history_user == org.rep_a


class TestExitCriteria:
    def test_missing_list_names_each_criterion(self, org, pipeline):
        """Blocked advance lists exactly the empty required fields and unticked checklist items."""
        opportunity = make_opportunity(org.rep_a)  # no contact, no source, nothing ticked
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        item = StageChecklistItem.objects.get(stage=open_stages()[0])
        assert [u.code for u in refused.value.unmet] == ["field:contact", "field:source", f"checklist:{item.pk}"]
        body = refused.value.as_dict()
        assert body["code"] == "transition_not_allowed"
        assert [u["field"] for u in body["unmet"]] == ["contact", "source", None]
        assert "联系人" in body["detail"]  # translated (zh-hans by default)

    def test_filling_them_in_unblocks(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a)
        contact = Contact.objects.create(customer=opportunity.customer, name="王总")
        opportunity = services.opportunity_update(opportunity=opportunity, user=org.rep_a, contact=contact,
                                                  source="website")
        item = StageChecklistItem.objects.get(stage=open_stages()[0])
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        assert [u.code for u in refused.value.unmet] == [f"checklist:{item.pk}"]
        opportunity = services.opportunity_checklist_tick(opportunity=opportunity, user=org.rep_a, item=item)
        moved = services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        assert moved.stage_id == open_stages()[1].pk

    def test_needs_analysis_requires_budget_decision_maker_pain_points(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a, complete=True, budget=None, decision_maker="", pain_points="")
        opportunity = services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        assert [u.field for u in refused.value.unmet] == ["budget", "decision_maker", "pain_points"]

    def test_amount_zero_is_missing(self, org, pipeline):
        opportunity = advance_to(make_opportunity(org.rep_a, complete=True, amount="0"), open_stages()[2])
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        assert [u.field for u in refused.value.unmet] == ["amount"]

    def test_tick_of_another_stage_is_refused(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a)
        item = StageChecklistItem.objects.get(stage=open_stages()[1])
        with pytest.raises(ValidationError):
            services.opportunity_checklist_tick(opportunity=opportunity, user=org.rep_a, item=item)
        assert not ChecklistTick.objects.exists()


class TestMoves:
    def test_stage_change_row(self, org, pipeline):
        """Each move records who, when, the note and the seconds spent in the previous stage."""
        opportunity = make_opportunity(org.rep_a, complete=True)
        Opportunity.objects.filter(pk=opportunity.pk).update(stage_entered_at=timezone.now() - timedelta(hours=5))
        opportunity.refresh_from_db()
        services.opportunity_advance(opportunity=opportunity, user=org.rep_a, note="客户确认")
        change = StageChange.objects.filter(opportunity=opportunity, action="advance").get()
        assert change.changed_by == org.rep_a and change.note == "客户确认"
        assert 5 * 3600 - 5 <= change.seconds_in_previous_stage <= 5 * 3600 + 60

    def test_signals_only_on_commit(self, org, pipeline, caught, signed_contract, django_capture_on_commit_callbacks):
        """stage_changed/won/lost are sent after the commit, never for a rolled-back move."""
        opportunity = make_opportunity(org.rep_a, complete=True)
        caught.clear()
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError), transaction.atomic():
                services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
                raise RuntimeError("rolled back")
        assert callbacks == [] and caught == {}
        with django_capture_on_commit_callbacks(execute=True):
            moved = services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        assert [kw["action"] for kw in caught["opportunity_stage_changed"]] == ["advance"]
        moved = advance_to(moved, open_stages()[-1])
        signed_contract.add(moved.pk)
        with django_capture_on_commit_callbacks(execute=True):
            services.opportunity_win(opportunity=moved, user=org.rep_a)
        assert [kw["opportunity"].pk for kw in caught["opportunity_won"]] == [moved.pk]
        other = make_opportunity(org.rep_a)
        with django_capture_on_commit_callbacks(execute=True):
            services.opportunity_lose(opportunity=other, user=org.rep_a, loss_reason=loss_reason())
        assert caught["opportunity_lost"][0]["loss_reason"] == loss_reason()

    def test_stale_copy_is_a_conflict(self, org, pipeline):
        """A move based on a copy whose stage is no longer current is refused as a conflict."""
        opportunity = make_opportunity(org.rep_a, complete=True)
        stale = Opportunity.objects.get(pk=opportunity.pk)
        services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        with pytest.raises(ConflictError):
            services.opportunity_advance(opportunity=stale, user=org.rep_a2)
        with pytest.raises(ConflictError):
            services.opportunity_lose(opportunity=opportunity, user=org.rep_a, loss_reason=loss_reason(),
                                      expected_stage_id=open_stages()[0].pk)
        assert StageChange.objects.filter(opportunity=opportunity).count() == 2


class TestStageDeactivate:
    def test_requires_a_target_when_it_holds_deals(self, org, pipeline):
        held = make_opportunity(org.rep_a)
        first = open_stages()[0]
        with pytest.raises(ValidationError):
            services.stage_deactivate(stage=first, user=org.admin)
        assert Stage.objects.get(pk=first.pk).is_active
        assert Opportunity.objects.get(pk=held.pk).stage_id == first.pk

    def test_moves_deals_and_records_it(self, org, pipeline):
        stages = open_stages()
        deals = [make_opportunity(org.rep_a) for _ in range(3)]
        moved = services.stage_deactivate(stage=stages[0], user=org.admin, move_to=stages[1])
        assert moved == 3
        assert not Stage.objects.get(pk=stages[0].pk).is_active
        for deal in deals:
            deal.refresh_from_db()
            assert deal.stage_id == stages[1].pk and deal.probability == stages[1].default_probability
            change = deal.stage_changes.latest("id")
            assert (change.action, change.from_stage_id, change.changed_by) == ("reassign", stages[0].pk, org.admin)
        # the next new deal starts in the first stage still active
        assert make_opportunity(org.rep_a).stage_id == stages[1].pk

    def test_closed_stages_cannot_be_deactivated(self, org, pipeline):
        won = pipeline.stages.get(kind=StageKind.WON)
        with pytest.raises(ValidationError):
            services.stage_deactivate(stage=won, user=org.admin)

    def test_advance_skips_an_inactive_stage(self, org, pipeline):
        stages = open_stages()
        services.stage_deactivate(stage=stages[1], user=org.admin)
        opportunity = make_opportunity(org.rep_a, complete=True)
        assert services.opportunity_advance(opportunity=opportunity, user=org.rep_a).stage_id == stages[2].pk


class TestStalledScan:
    def test_flags_once_and_signals(self, org, pipeline, caught, django_capture_on_commit_callbacks):
        """A deal past its stage's limit is flagged with the moment it crossed, signalled once; a fresh
        one is not; moving it clears the flag."""
        first = open_stages()[0]  # 14 days
        old = make_opportunity(org.rep_a, complete=True)
        fresh = make_opportunity(org.rep_a)
        entered = timezone.now() - timedelta(days=20)
        Opportunity.objects.filter(pk=old.pk).update(stage_entered_at=entered)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.stalled_scan() == 1
        with django_capture_on_commit_callbacks(execute=True):
            assert services.stalled_scan() == 0
        old.refresh_from_db()
        assert old.stalled_since == entered + timedelta(days=first.stall_days)
        assert [kw["opportunity"].pk for kw in caught["opportunity_stalled"]] == [old.pk]
        assert Opportunity.objects.get(pk=fresh.pk).stalled_since is None
        moved = services.opportunity_advance(opportunity=old, user=org.rep_a)
        assert moved.stalled_since is None

    def test_celery_task(self, org, pipeline, settings):
        from opportunities.tasks import stalled_scan

        old = make_opportunity(org.rep_a)
        Opportunity.objects.filter(pk=old.pk).update(stage_entered_at=timezone.now() - timedelta(days=30))
        assert stalled_scan.apply().get() == 1


class TestPriority:
    def test_formula(self, org, pipeline):
        """score = 100 × Σ(weight × part) / Σ(weight), parts from amount, tier, probability, recency."""
        weights = PriorityWeights(weight_amount=1, weight_tier=1, weight_probability=1, weight_recency=1,
                                  amount_full_marks=Decimal("100000"), tier_a_marks=100, tier_b_marks=60,
                                  tier_c_marks=30, recency_days=10)
        now = timezone.now()
        customer = CustomerFactory(owner=org.rep_a, tier="B")
        opportunity = Opportunity(customer=customer, amount=Decimal("50000"), probability=40,
                                  created_at=now - timedelta(days=5), last_activity_at=now - timedelta(days=5))
        parts = {p.key: p.value for p in scoring.priority_parts(opportunity, weights, now=now)}
        assert parts == {"amount": 0.5, "tier": 0.6, "probability": 0.4, "recency": 0.5}
        assert scoring.priority_score(opportunity, weights, now=now) == 50

    def test_admin_weights_change_the_score(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a, amount="1000000")
        only_amount = PriorityWeights.load()
        only_amount.weight_tier = only_amount.weight_probability = only_amount.weight_recency = 0
        only_amount.save()
        assert services.priority_refresh() >= 1
        assert Opportunity.objects.get(pk=opportunity.pk).priority_score == 100

    def test_activity_raises_recency(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a)
        Opportunity.objects.filter(pk=opportunity.pk).update(created_at=timezone.now() - timedelta(days=60))
        services.priority_refresh()
        before = Opportunity.objects.get(pk=opportunity.pk).priority_score
        assert services.opportunity_record_activity(opportunity_id=opportunity.pk, at=timezone.now())
        assert not services.opportunity_record_activity(opportunity_id=opportunity.pk,
                                                        at=timezone.now() - timedelta(days=3))
        assert Opportunity.objects.get(pk=opportunity.pk).priority_score > before
