"""The activity state machine: every allowed and every forbidden move."""

import pytest
from django_fsm import TransitionNotAllowed

from activities.models import Activity, ActivityStatus

MOVES = {
    "complete": {ActivityStatus.PLANNED: ActivityStatus.DONE},
    "cancel": {ActivityStatus.PLANNED: ActivityStatus.CANCELLED},
    "reopen": {ActivityStatus.CANCELLED: ActivityStatus.PLANNED},
}


@pytest.mark.parametrize("action", sorted(MOVES))
@pytest.mark.parametrize("status", list(ActivityStatus.values))
def test_transition_matrix(action, status):
    """Each transition is allowed from exactly its source status and lands on its target."""
    activity = Activity(status=status)
    target = MOVES[action].get(status)
    if target is None:
        with pytest.raises(TransitionNotAllowed):
            getattr(activity, action)()
        assert activity.status == status
    else:
        getattr(activity, action)()
        assert activity.status == target
