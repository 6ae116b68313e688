"""The stage field and the transition rules of `Opportunity` (django-fsm)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from opportunities import services
from opportunities.exceptions import TransitionRefused
from opportunities.models import Opportunity, StageChange, StageKind
from tests.opportunities.factories import advance_to, loss_reason, make_opportunity, open_stages, stage

pytestmark = pytest.mark.django_db


class TestProtectedStage:
    def test_assigning_the_stage_raises(self, org, pipeline):
        """`opportunity.stage = ...` and `opportunity.stage_id = ...` raise: only transitions move it."""
        opportunity = make_opportunity(org.rep_a)
        later = open_stages()[2]
        with pytest.raises(AttributeError):
            opportunity.stage = later
        with pytest.raises(AttributeError):
            opportunity.stage_id = later.pk
        loaded = Opportunity.objects.get(pk=opportunity.pk)
        with pytest.raises(AttributeError):
            loaded.stage = later
        with pytest.raises(AttributeError):
            loaded.stage_id = later.pk
        loaded.refresh_from_db()
        assert loaded.stage_id == open_stages()[0].pk

    def test_stage_is_the_stage_row(self, org, pipeline):
        """`opportunity.stage` is the Stage (not django-fsm's raw id), kept in step after a move."""
        opportunity = make_opportunity(org.rep_a, complete=True)
        assert opportunity.stage == open_stages()[0]
        moved = services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        assert moved.stage == open_stages()[1]
        assert moved.stage_id == open_stages()[1].pk

    def test_transition_method_moves_it(self, org, pipeline):
        """The @transition methods are the one way to move it in memory (the services persist it)."""
        opportunity = make_opportunity(org.rep_a, complete=True)
        opportunity.advance()
        assert opportunity.stage_id == open_stages()[1].pk


# Each case: (where the deal is, action) -> allowed?  Where: index of the open stage (0..3), "won", "lost".
ALLOWED = {
    "advance": {0, 1, 2},
    "move_back": {1, 2, 3},
    "win": {3},
    "lose": {0, 1, 2, 3},
    "reopen": {"lost"},
}
POSITIONS = [0, 1, 2, 3, "won", "lost"]
ACTIONS = ["advance", "move_back", "win", "lose", "reopen"]


def _deal_at(position, org, signed_contract):
    opportunity = make_opportunity(org.rep_a, complete=True)
    signed_contract.add(opportunity.pk)
    stages = open_stages()
    if position == "won":
        opportunity = advance_to(opportunity, stages[-1])
        return services.opportunity_win(opportunity=opportunity, user=org.rep_a)
    if position == "lost":
        opportunity = advance_to(opportunity, stages[1])
        return services.opportunity_lose(opportunity=opportunity, user=org.rep_a, loss_reason=loss_reason())
    return advance_to(opportunity, stages[position])


def _do(action, opportunity, org):
    user = org.manager_a
    if action == "advance":
        return services.opportunity_advance(opportunity=opportunity, user=user)
    if action == "move_back":
        return services.opportunity_move_back(opportunity=opportunity, user=user, reason="客户预算重审 Budget review")
    if action == "win":
        return services.opportunity_win(opportunity=opportunity, user=user)
    if action == "lose":
        return services.opportunity_lose(opportunity=opportunity, user=user, loss_reason=loss_reason())
    return services.opportunity_reopen(opportunity=opportunity, user=user)


def _expected_stage(position, action):
    stages = open_stages()
    if action == "advance":
        return stages[position + 1]
    if action == "move_back":
        return stages[position - 1]
    if action == "win":
        return stage(StageKind.WON)
    if action == "lose":
        return stage(StageKind.LOST)
    return stages[1]  # reopen: back to where it was lost (needs analysis)


class TestTransitionMatrix:
    @pytest.mark.parametrize("position", POSITIONS)
    @pytest.mark.parametrize("action", ACTIONS)
    def test_every_move(self, org, pipeline, signed_contract, position, action):
        """Allowed moves land in the expected stage with one StageChange row; every other move is
        refused with TransitionRefused, changes nothing and writes no row."""
        opportunity = _deal_at(position, org, signed_contract)
        before_stage = opportunity.stage_id
        before_changes = StageChange.objects.filter(opportunity=opportunity).count()
        if position in ALLOWED[action]:
            moved = _do(action, opportunity, org)
            expected = _expected_stage(position, action)
            assert moved.stage_id == expected.pk
            assert Opportunity.objects.get(pk=opportunity.pk).stage_id == expected.pk
            change = StageChange.objects.filter(opportunity=opportunity).latest("id")
            assert (change.action, change.from_stage_id, change.to_stage_id) == (action, before_stage, expected.pk)
            assert StageChange.objects.filter(opportunity=opportunity).count() == before_changes + 1
        else:
            with pytest.raises(TransitionRefused) as refused:
                _do(action, opportunity, org)
            assert refused.value.code == "transition_not_allowed"
            assert refused.value.unmet
            assert Opportunity.objects.get(pk=opportunity.pk).stage_id == before_stage
            assert StageChange.objects.filter(opportunity=opportunity).count() == before_changes


class TestRuleDetails:
    def test_no_skipping(self, org, pipeline):
        """advance goes to the next stage only; move_back cannot jump forward or stay."""
        stages = open_stages()
        opportunity = make_opportunity(org.rep_a, complete=True)
        opportunity = services.opportunity_advance(opportunity=opportunity, user=org.rep_a)
        assert opportunity.stage_id == stages[1].pk
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_move_back(opportunity=opportunity, user=org.rep_a, reason="x", to_stage=stages[3])
        assert [u.code for u in refused.value.unmet] == ["not_an_earlier_stage"]

    def test_move_back_needs_a_reason(self, org, pipeline):
        opportunity = advance_to(make_opportunity(org.rep_a, complete=True), open_stages()[2])
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_move_back(opportunity=opportunity, user=org.rep_a, reason="  ")
        assert [u.code for u in refused.value.unmet] == ["reason_required"]
        moved = services.opportunity_move_back(
            opportunity=opportunity, user=org.rep_a, reason="需求变更 Scope changed", to_stage=open_stages()[0]
        )
        assert moved.stage_id == open_stages()[0].pk
        assert StageChange.objects.filter(opportunity=opportunity).latest("id").note == "需求变更 Scope changed"

    def test_lose_needs_a_reason(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a)
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_lose(opportunity=opportunity, user=org.rep_a, loss_reason=None)
        assert [u.code for u in refused.value.unmet] == ["loss_reason_required"]

    def test_win_needs_the_last_stage_and_a_signed_contract(self, org, pipeline, signed_contract):
        """Without a registered check saying "signed", the deal cannot be won, even in the last stage."""
        opportunity = advance_to(make_opportunity(org.rep_a, complete=True), open_stages()[-1])
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_win(opportunity=opportunity, user=org.rep_a)
        assert [u.code for u in refused.value.unmet] == ["no_signed_contract"]
        signed_contract.add(opportunity.pk)
        won = services.opportunity_win(opportunity=opportunity, user=org.rep_a)
        assert won.stage.kind == StageKind.WON
        assert won.probability == 100 and won.closed_at is not None

    def test_win_from_an_earlier_stage_lists_both_reasons(self, org, pipeline):
        opportunity = make_opportunity(org.rep_a, complete=True)
        with pytest.raises(TransitionRefused) as refused:
            services.opportunity_win(opportunity=opportunity, user=org.rep_a)
        assert [u.code for u in refused.value.unmet] == ["not_last_open_stage", "no_signed_contract"]

    def test_reopen_is_for_managers_and_returns_to_the_lost_from_stage(self, org, pipeline):
        opportunity = advance_to(make_opportunity(org.rep_a, complete=True), open_stages()[2])
        lost = services.opportunity_lose(opportunity=opportunity, user=org.rep_a, loss_reason=loss_reason(),
                                         note="预算冻结")
        assert lost.lost_from_stage_id == open_stages()[2].pk and lost.loss_reason is not None
        with pytest.raises(PermissionDenied):
            services.opportunity_reopen(opportunity=lost, user=org.rep_a)
        reopened = services.opportunity_reopen(opportunity=lost, user=org.manager_a)
        assert reopened.stage_id == open_stages()[2].pk
        assert reopened.loss_reason is None and reopened.closed_at is None
        assert reopened.probability == open_stages()[2].default_probability
