"""Signals other apps listen to (connected in their AppConfig.ready(); we never import them).

All are sent with `sender=Opportunity`, once the change has committed (never for a rolled-back move):

opportunity_created(opportunity, user)
opportunity_stage_changed(opportunity, stage_change, action, user)
    every move: advance, move_back, win, lose, reopen, and an administrator's reassignment when a
    stage is deactivated (action "reassign"); `stage_change` is the StageChange row.
opportunity_won(opportunity, user)            after opportunity_stage_changed, for a win
opportunity_lost(opportunity, user, loss_reason)
opportunity_stalled(opportunity, stalled_since)
    the stall scan found the deal past its stage's time limit (sent once per stay in a stage).
"""

from django.dispatch import Signal

opportunity_created = Signal()
opportunity_stage_changed = Signal()
opportunity_won = Signal()
opportunity_lost = Signal()
opportunity_stalled = Signal()
