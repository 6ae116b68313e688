from __future__ import annotations

from django.db.models import QuerySet

from .models import Team, User
from .scope import managed_user_ids, user_team_ids


def user_list_visible_to(user: User) -> QuerySet[User]:
    """Active users whose records `user` sees (admins: everyone), e.g. for owner pickers."""
    qs = User.objects.filter(is_active=True).select_related("team")
    ids = managed_user_ids(user)
    return qs if ids is None else qs.filter(id__in=ids)


def assignable_owners(user: User) -> QuerySet[User]:
    """Users `user` may assign a record to: admins anyone, managers their subtree, reps themselves."""
    return user_list_visible_to(user)


def team_list_visible_to(user: User) -> QuerySet[Team]:
    ids = user_team_ids(user)
    qs = Team.objects.select_related("manager", "parent")
    return qs if ids is None else qs.filter(id__in=ids)
