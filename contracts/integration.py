"""What contracts need from the opportunities app, in one place (imports point down: we may import it).

- fetch an opportunity through its scope;
- whether a contract may be drafted from it (it is in its last open stage) and the prefill.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.scope import get_visible_or_404

from .models import Currency

if TYPE_CHECKING:
    from accounts.models import User


def opportunity_get_for_user(*, user: User, pk: int) -> Any:
    """The opportunity, if `user` may see it (404 otherwise)."""
    from opportunities.models import Opportunity

    return get_visible_or_404(Opportunity.objects.select_related("customer", "contact", "owner"), user, pk=pk)


def opportunity_can_draft(opportunity: Any) -> bool:
    """A contract is drafted from a deal in its last open stage (still open, not won or lost)."""
    return not opportunity.is_closed and opportunity.is_in_last_open_stage()


def draft_initial_from_opportunity(opportunity: Any) -> dict:
    """The prefill of a contract drafted from the opportunity: customer, contact, currency, title, and
    one tax-free line (and no plan) for the deal's amount; the rep refines lines, tax and plan."""
    if not opportunity_can_draft(opportunity):
        raise ValidationError(_("A contract can be drafted only from an opportunity in its last open stage."))
    currency = opportunity.currency if opportunity.currency in Currency.values else Currency.CNY
    amount = opportunity.amount or Decimal("0")
    return {
        "customer": opportunity.customer,
        "contact": opportunity.contact_id,
        "currency": currency,
        "title": opportunity.title,
        "start_date": timezone.localdate(),
        "end_date": timezone.localdate() + timedelta(days=365),
        "lines": [{"name": opportunity.title, "quantity": Decimal("1"), "unit_price": amount,
                   "discount_percent": Decimal("0"), "tax_rate": Decimal("0")}] if amount else [],
    }
