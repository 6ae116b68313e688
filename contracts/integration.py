"""What contracts need from the opportunities app, in one place (imports point down: we may import it).

- fetch an opportunity through its scope;
- whether a contract may be drafted from it (it is in its last open stage) and the prefill;
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.scope import get_visible_or_404

if TYPE_CHECKING:
    from accounts.models import User


def opportunity_get_for_user(*, user: User, pk: int) -> Any:
    from opportunities.models import Opportunity

    return get_visible_or_404(Opportunity.objects.select_related("customer"), user, pk=pk)


def opportunity_in_last_open_stage(opportunity: Any) -> bool:
    raise NotImplementedError


def opportunity_can_draft(opportunity: Any) -> bool:
    return opportunity_in_last_open_stage(opportunity)


def draft_initial_from_opportunity(opportunity: Any) -> dict:
    """Prefill of a contract drafted from the opportunity: customer, contact, amount, currency."""
    if not opportunity_in_last_open_stage(opportunity):
        raise ValidationError(_("A contract can be drafted only from an opportunity in its last open stage."))
    raise NotImplementedError
