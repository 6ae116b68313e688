"""The demo pipeline: a few hundred deals with a year of history; idempotent."""

import pytest

from accounts import demo as accounts_demo
from opportunities import demo
from opportunities.models import Opportunity, StageChange, StageKind


@pytest.mark.django_db
def test_seed_is_idempotent_and_has_history():
    accounts_demo.seed(seed=2026)
    summary = demo.seed(seed=2026)
    count = Opportunity.objects.count()
    assert count >= 200 and "opportunities" in summary
    kinds = set(Opportunity.objects.values_list("stage__kind", flat=True))
    assert kinds == {StageKind.OPEN, StageKind.WON, StageKind.LOST}
    assert StageChange.objects.filter(action="move_back").exists()
    # every deal's history starts with its creation and ends in its current stage
    for deal in Opportunity.objects.order_by("?")[:20]:
        history = list(deal.stage_changes.order_by("changed_at", "id"))
        assert history[0].action == "create" and history[-1].to_stage_id == deal.stage_id
        assert all(later.changed_at >= earlier.changed_at for earlier, later in zip(history, history[1:], strict=False))
    months = {d.month for d in StageChange.objects.values_list("changed_at", flat=True)}
    assert len(months) >= 10  # spread over the year
    demo.seed(seed=2026)
    assert Opportunity.objects.count() == count
