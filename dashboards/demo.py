"""Demo targets: every rep of the demo teams gets targets for the last three months and this one
(idempotent: existing targets are left as they are)."""

from __future__ import annotations

import random
from decimal import Decimal

from django.utils import timezone

from accounts.models import Role, User

from .models import Target
from .selectors import add_months, month_start


def seed(*, seed: int) -> str:
    rng = random.Random(seed)
    this_month = month_start(timezone.localdate())
    months = [add_months(this_month, -i) for i in range(3, -1, -1)]
    reps = list(User.objects.filter(role=Role.REP, is_active=True).order_by("pk"))
    existing = set(Target.objects.filter(month__in=months).values_list("user_id", "month"))
    new = [
        Target(
            user=rep, month=month,
            signed_revenue=Decimal(rng.choice([200_000, 300_000, 500_000, 800_000])),
            collected=Decimal(rng.choice([150_000, 250_000, 400_000])),
            new_customers=rng.randint(5, 20), won_deals=rng.randint(2, 8),
            calls=rng.randint(60, 150), visits=rng.randint(8, 30),
        )
        for rep in reps for month in months if (rep.pk, month) not in existing
    ]
    Target.objects.bulk_create(new)
    return f"{len(new)} targets"
