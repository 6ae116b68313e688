"""Who may do what to a contract: the review rules and the permission checks of the lifecycle buttons.

Read-only; `contracts.services` enforces them and the pages use them to show only the allowed buttons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from accounts.models import Role, Team
from accounts.scope import is_manager_or_admin

from .models import ApprovalLevel, Contract, ContractStatus

if TYPE_CHECKING:
    from accounts.models import User


def is_admin(user: User) -> bool:
    return bool(user and user.is_authenticated and user.is_active and (user.is_superuser or user.role == Role.ADMIN))


def team_rows() -> dict[int, tuple[int | None, int | None]]:
    """{team id: (parent id, manager id)} of every team (the team table is small)."""
    return {team_id: (parent_id, manager_id) for team_id, parent_id, manager_id in
            Team.objects.values_list("id", "parent_id", "manager_id")}


def owner_manager_ids(owner: User, *, team_rows_: dict | None = None) -> set[int]:
    """Managers of the owner's team and of every team above it (one query over the small team table)."""
    if owner.team_id is None:
        return set()
    rows = team_rows() if team_rows_ is None else team_rows_
    found: set[int] = set()
    team_id: int | None = owner.team_id
    seen: set[int] = set()
    while team_id is not None and team_id not in seen:
        seen.add(team_id)
        parent_id, manager_id = rows.get(team_id, (None, None))
        if manager_id is not None:
            found.add(manager_id)
        team_id = parent_id
    found.discard(owner.pk)
    return found


def pending_level(contract: Contract) -> str | None:
    """The approval the contract waits for, or None when it is not in review."""
    if contract.status != ContractStatus.IN_REVIEW:
        return None
    if contract.manager_approved_by_id is None:
        return ApprovalLevel.MANAGER
    if contract.needs_admin_approval and contract.admin_approved_by_id is None:
        return ApprovalLevel.ADMIN
    return None


def review_refusal(contract: Contract, user: User, *, team_rows: dict | None = None) -> str | None:
    """Why `user` may not approve or reject the contract now (translated), or None if they may.

    - the owner never reviews their own contract;
    - the first approval is a manager of the owner's team or of a team above it (or an administrator);
    - above the threshold a second approval by an administrator other than the first approver follows.
    """
    level = pending_level(contract)
    if level is None:
        return _("The contract is not waiting for a review.")
    if not user.is_authenticated or not user.is_active:
        return _("You cannot review contracts.")
    if user.pk == contract.owner_id:
        return _("You cannot approve your own contract.")
    if level == ApprovalLevel.MANAGER:
        if is_admin(user) or user.pk in owner_manager_ids(contract.owner, team_rows_=team_rows):
            return None
        return _("Only a manager of the owner's team or an administrator can review this contract.")
    if not is_admin(user):
        return _("This contract is above the approval threshold: an administrator must give the second approval.")
    if user.pk == contract.manager_approved_by_id:
        return _("The second approval must come from someone other than the first approver.")
    return None


def can_review(contract: Contract, user: User, *, team_rows: dict | None = None) -> bool:
    return review_refusal(contract, user, team_rows=team_rows) is None


def can_terminate(contract: Contract, user: User) -> bool:
    """Terminating a running contract is a manager's or administrator's decision."""
    return is_manager_or_admin(user)


def available_actions(contract: Contract, user: User, *, team_rows: dict | None = None) -> list[str]:
    """The lifecycle actions `user` may take now (the page shows a button for each, nothing else).

    The user already sees the contract (the page fetched it through the scope rule)."""
    status = contract.status
    actions: list[str] = []
    if status == ContractStatus.DRAFT:
        actions += ["edit", "submit"]
    elif status == ContractStatus.IN_REVIEW:
        if can_review(contract, user, team_rows=team_rows):
            actions += ["approve", "reject"]
    elif status == ContractStatus.APPROVED:
        actions.append("sign")
    elif status == ContractStatus.SIGNED:
        actions.append("activate")
    elif status == ContractStatus.ACTIVE:
        actions.append("complete")
    if status in (ContractStatus.SIGNED, ContractStatus.ACTIVE) and can_terminate(contract, user):
        actions.append("terminate")
    return actions
