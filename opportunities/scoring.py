"""The priority score (商机评估): which deals deserve attention first, from 0 to 100.

score = 100 × Σ(weight × part) / Σ(weight), with four parts between 0 and 1 and the weights an
administrator sets (`PriorityWeights` in Django admin):

- amount:       amount / "amount for full marks", at most 1;
- tier:         the customer's tier marks (A/B/C) / 100;
- probability:  the deal's win probability / 100;
- recency:      1 − days since the last activity / "activity fades after (days)", at least 0. The last
                activity is the latest of the deal's own last activity and the customer's last contact;
                a deal without either counts from its creation.

The score is stored on the opportunity (lists sort and filter by it) and refreshed by every service
that changes an input, and nightly for open deals (recency changes with time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from .models import Opportunity, PriorityWeights


@dataclass(frozen=True)
class ScorePart:
    key: str
    label: Any
    weight: int
    value: float  # 0..1
    explanation: str

    @property
    def percent(self) -> int:
        return round(self.value * 100)


def last_activity_at(opportunity: Opportunity) -> datetime:
    customer_contact = getattr(opportunity.customer, "last_contacted_at", None)
    candidates = [d for d in (opportunity.last_activity_at, customer_contact) if d is not None]
    return max(candidates) if candidates else opportunity.created_at


def priority_parts(opportunity: Opportunity, weights: PriorityWeights, *, now: datetime | None = None) -> list[ScorePart]:
    now = now or timezone.now()
    full = weights.amount_full_marks or Decimal(1)
    amount = opportunity.amount or Decimal(0)
    amount_part = float(min(amount / full, Decimal(1))) if full > 0 else 0.0
    tier = getattr(opportunity.customer, "tier", "C") or "C"
    tier_marks = {"A": weights.tier_a_marks, "B": weights.tier_b_marks, "C": weights.tier_c_marks}.get(tier, 0)
    days = max(0, (now - last_activity_at(opportunity)).days)
    recency_part = max(0.0, 1 - days / max(1, weights.recency_days))
    return [
        ScorePart(
            "amount", _("Amount"), weights.weight_amount, amount_part,
            str(_("%(amount)s of %(full)s for full marks") % {"amount": f"{amount:,.0f}", "full": f"{full:,.0f}"}),
        ),
        ScorePart(
            "tier", _("Customer tier"), weights.weight_tier, tier_marks / 100,
            str(_("tier %(tier)s: %(marks)s marks") % {"tier": tier, "marks": tier_marks}),
        ),
        ScorePart(
            "probability", _("Probability"), weights.weight_probability, opportunity.probability / 100,
            f"{opportunity.probability}%",
        ),
        ScorePart(
            "recency", _("Recent activity"), weights.weight_recency, recency_part,
            str(_("%(days)s days since the last activity (fades over %(window)s days)")
                % {"days": days, "window": weights.recency_days}),
        ),
    ]


def score_from_parts(parts: list[ScorePart]) -> int:
    total_weight = sum(part.weight for part in parts)
    if total_weight <= 0:
        return 0
    return max(0, min(100, round(100 * sum(part.weight * part.value for part in parts) / total_weight)))


def priority_score(opportunity: Opportunity, weights: PriorityWeights, *, now: datetime | None = None) -> int:
    return score_from_parts(priority_parts(opportunity, weights, now=now))
