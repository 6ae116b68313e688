"""Concurrent moves of one opportunity, for real: threads, PostgreSQL, committed transactions."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection

from opportunities import services
from opportunities.exceptions import ConflictError, TransitionRefused
from opportunities.models import Opportunity, StageChange
from tests.opportunities.factories import default_pipeline, loss_reason, make_opportunity, open_stages


def _race(calls):
    """Run each callable in its own thread, all released at once; return results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    close_old_connections()
    return results


@pytest.mark.django_db(transaction=True)
class TestConcurrentMoves:
    def test_two_advances_one_wins(self, org):
        """Two users drag the same card at once: exactly one move, one StageChange; the other gets a
        ConflictError (not a second advance from the new stage)."""
        default_pipeline()
        opportunity = make_opportunity(org.rep_a, complete=True)
        copies = [Opportunity.objects.get(pk=opportunity.pk) for _ in range(2)]
        results = _race([
            lambda: services.opportunity_advance(opportunity=copies[0], user=org.rep_a),
            lambda: services.opportunity_advance(opportunity=copies[1], user=org.manager_a),
        ])
        successes = [r for r in results if isinstance(r, Opportunity)]
        conflicts = [r for r in results if isinstance(r, ConflictError)]
        assert len(successes) == 1 and len(conflicts) == 1, results
        assert conflicts[0].code == "conflict"
        assert Opportunity.objects.get(pk=opportunity.pk).stage_id == open_stages()[1].pk
        assert StageChange.objects.filter(opportunity=opportunity, action="advance").count() == 1

    def test_advance_against_lose(self, org):
        """Advance and lose at the same moment: one of them happens, the other is refused."""
        default_pipeline()
        opportunity = make_opportunity(org.rep_a, complete=True)
        reason = loss_reason()
        copies = [Opportunity.objects.get(pk=opportunity.pk) for _ in range(2)]
        results = _race([
            lambda: services.opportunity_advance(opportunity=copies[0], user=org.rep_a),
            lambda: services.opportunity_lose(opportunity=copies[1], user=org.rep_a, loss_reason=reason),
        ])
        assert sum(isinstance(r, Opportunity) for r in results) == 1, results
        assert sum(isinstance(r, TransitionRefused) for r in results) == 1, results
        assert StageChange.objects.filter(opportunity=opportunity).exclude(action="create").count() == 1

    def test_move_into_a_stage_being_deactivated(self, org):
        """An advance into a stage while an admin deactivates it: the deal never ends up in an inactive
        stage (either it moved first and was reassigned, or the move is refused)."""
        default_pipeline()
        stages = open_stages()
        opportunity = make_opportunity(org.rep_a, complete=True)
        results = _race([
            lambda: services.opportunity_advance(opportunity=Opportunity.objects.get(pk=opportunity.pk), user=org.rep_a),
            lambda: services.stage_deactivate(stage=stages[1], user=org.admin, move_to=stages[2]),
        ])
        final = Opportunity.objects.select_related("stage").get(pk=opportunity.pk)
        assert final.stage.is_active, results
        assert final.stage_id in (stages[0].pk, stages[2].pk)

    def test_deactivation_waits_for_a_move_in_flight(self, org):
        """A move into a stage is past its checks but not committed when an admin deactivates that stage:
        the deactivation waits for the move's commit and then takes the deal along (never left behind
        in an inactive stage; foreign-key checks alone would not catch it: they are deferred)."""
        from django.db.models.signals import post_save

        default_pipeline()
        stages = open_stages()
        opportunity = make_opportunity(org.rep_a, complete=True)
        paused, release = threading.Event(), threading.Event()

        def hold(sender, instance, created, **kwargs):
            if threading.current_thread().name == "mover" and instance.action == "advance":
                paused.set()
                release.wait(timeout=10)

        post_save.connect(hold, sender=StageChange, weak=False)
        outcome: dict = {}

        def move():
            try:
                outcome["move"] = services.opportunity_advance(
                    opportunity=Opportunity.objects.get(pk=opportunity.pk), user=org.rep_a)
            except Exception as exc:  # noqa: BLE001
                outcome["move"] = exc
            finally:
                connection.close()

        def deactivate():
            try:
                outcome["deactivate"] = services.stage_deactivate(stage=stages[1], user=org.admin, move_to=stages[2])
            except Exception as exc:  # noqa: BLE001
                outcome["deactivate"] = exc
            finally:
                connection.close()

        try:
            mover = threading.Thread(target=move, name="mover")
            mover.start()
            assert paused.wait(timeout=10)
            admin = threading.Thread(target=deactivate, name="admin")
            admin.start()
            admin.join(timeout=1)
            assert admin.is_alive(), "the deactivation must wait for the move in flight"
            release.set()
            mover.join(timeout=15)
            admin.join(timeout=15)
        finally:
            release.set()
            post_save.disconnect(hold, sender=StageChange)
            close_old_connections()
        assert isinstance(outcome["move"], Opportunity), outcome
        assert outcome["deactivate"] == 1, outcome
        final = Opportunity.objects.get(pk=opportunity.pk)
        assert final.stage_id == stages[2].pk
        assert list(final.stage_changes.values_list("action", flat=True)) == ["create", "advance", "reassign"]
