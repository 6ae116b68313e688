"""Extension points of the pipeline rules, and what the pages ask of them.

The win condition "the opportunity has a signed contract" belongs to the contracts app, which sits above
us in the import map. It plugs its check in here from its AppConfig.ready():

    from opportunities import rules
    rules.register_signed_contract_check(selectors.has_signed_contract)   # f(opportunity_id) -> bool

`has_signed_contract(opportunity)` is true when any registered check says so; with no check registered
it is false, so no deal can be won until a contract app confirms a signature.

`available_actions(opportunity, user)` lists every transition with whether `user` may take it now and,
if not, why (the detail page shows enabled buttons and the reasons of the disabled ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _

from accounts.scope import is_manager_or_admin

if TYPE_CHECKING:
    from .models import Opportunity, Unmet

SignedContractCheck = Callable[[int], bool]

_signed_contract_checks: list[SignedContractCheck] = []


def register_signed_contract_check(check: SignedContractCheck) -> None:
    """Add a check `check(opportunity_id) -> bool` (idempotent: registering twice adds it once)."""
    if check not in _signed_contract_checks:
        _signed_contract_checks.append(check)


def unregister_signed_contract_check(check: SignedContractCheck) -> None:
    if check in _signed_contract_checks:
        _signed_contract_checks.remove(check)


def signed_contract_checks() -> list[SignedContractCheck]:
    return list(_signed_contract_checks)


def has_signed_contract(opportunity: Opportunity) -> bool:
    """True when a registered check confirms a signed contract for the opportunity."""
    if opportunity.pk is None:
        return False
    return any(check(opportunity.pk) for check in _signed_contract_checks)


# --- the buttons of the detail page -------------------------------------------------------------------
ACTIONS = ("advance", "move_back", "win", "lose", "reopen")
ACTION_LABELS = {
    "advance": _("Advance"),
    "move_back": _("Move back"),
    "win": _("Mark as won"),
    "lose": _("Mark as lost"),
    "reopen": _("Reopen"),
}


@dataclass
class ActionState:
    name: str
    label: Any
    allowed: bool
    unmet: list[Unmet] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [str(item.label) for item in self.unmet]


def action_unmet(opportunity: Opportunity, action: str, user: Any = None, **kwargs: Any) -> list[Unmet]:
    """Why `action` cannot be taken now (empty: it can). `user` matters for reopen only."""
    from .models import Unmet

    if action == "advance":
        return opportunity.advance_unmet()
    if action == "move_back":
        return opportunity.move_back_unmet(kwargs.get("to_stage"))
    if action == "win":
        return opportunity.win_unmet()
    if action == "lose":
        return opportunity.lose_unmet()
    if action == "reopen":
        unmet = opportunity.reopen_unmet()
        if not unmet and user is not None and not is_manager_or_admin(user):
            unmet = [Unmet("permission_denied", _("Only managers and administrators can reopen a lost deal."))]
        return unmet
    raise ValueError(f"unknown action {action!r}")


def available_actions(opportunity: Opportunity, user: Any) -> list[ActionState]:
    """Every transition, whether `user` may take it now, and why not. Closed deals list only the
    moves that make sense for them (a won deal: none; a lost one: reopen)."""
    stage = opportunity.current_stage()
    if stage.is_won:
        names: tuple[str, ...] = ()
    elif stage.is_lost:
        names = ("reopen",)
    else:
        names = ("advance", "move_back", "win", "lose")
    states = []
    for name in names:
        unmet = action_unmet(opportunity, name, user)
        states.append(ActionState(name=name, label=ACTION_LABELS[name], allowed=not unmet, unmet=unmet))
    return states
