from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from accounts.scope import get_visible_or_404

from .models import Customer


def customer_list(*, user: User) -> QuerySet[Customer]:
    """Customers `user` may see (owned by the data-scope rule, or in their team's pool)."""
    return Customer.objects.visible_to(user).select_related("owner", "team")


def customer_get_for_user(*, user: User, pk: int) -> Customer:
    return get_visible_or_404(Customer.objects.select_related("owner", "team"), user, pk=pk)
