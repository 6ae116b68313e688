"""The data-scope rule: who sees which records. One rule, used by every path.

- an admin sees everything;
- a manager sees records owned by anyone in the teams they manage and every team below them;
- a rep sees the records they own;
- an anonymous or inactive user sees nothing.

Models opt in with `ScopedQuerySet` (an owner field + `visible_to(user)`); pages, API, exports,
search and the admin all fetch through it, and `get_visible_or_404` turns "not yours" into a 404 that
does not confirm the record exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import Q
from django.http import Http404

if TYPE_CHECKING:
    from .models import User

_CACHE_ATTR = "_crm_scope_cache"


def _teams_parent_map() -> dict[int, int | None]:
    from .models import Team

    return dict(Team.objects.values_list("id", "parent_id"))


def team_subtree_ids(root_ids: set[int], parents: dict[int, int | None] | None = None) -> set[int]:
    """The given teams and every team nested below them (one query over the small team table)."""
    if not root_ids:
        return set()
    parents = _teams_parent_map() if parents is None else parents
    children: dict[int | None, list[int]] = {}
    for team_id, parent_id in parents.items():
        children.setdefault(parent_id, []).append(team_id)
    found, stack = set(), list(root_ids)
    while stack:
        team_id = stack.pop()
        if team_id in found:
            continue
        found.add(team_id)
        stack.extend(children.get(team_id, []))
    return found


def _scope(user: User) -> dict[str, Any]:
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    from .models import Role, Team

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        scope: dict[str, Any] = {"all": False, "team_ids": set(), "manages": False}
    elif user.is_superuser or user.role == Role.ADMIN:
        scope = {"all": True, "team_ids": None, "manages": True}
    elif user.role == Role.MANAGER:
        managed = set(Team.objects.filter(manager=user).values_list("id", flat=True))
        if user.team_id:
            managed.add(user.team_id)
        scope = {"all": False, "team_ids": team_subtree_ids(managed), "manages": True}
    else:
        scope = {"all": False, "team_ids": {user.team_id} if user.team_id else set(), "manages": False}
    setattr(user, _CACHE_ATTR, scope)
    return scope


def forget_scope(user: User) -> None:
    """Drop the per-instance cache (after the user's role or teams changed)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def sees_everything(user: User) -> bool:
    return _scope(user)["all"]


def is_manager_or_admin(user: User) -> bool:
    return _scope(user)["manages"]


def user_team_ids(user: User) -> set[int] | None:
    """Teams whose shared records (e.g. the lead pool) the user sees; None means all teams."""
    scope = _scope(user)
    return None if scope["all"] else set(scope["team_ids"])


def managed_user_ids(user: User) -> set[int] | None:
    """Ids of the users whose records `user` sees; None means everyone (admins)."""
    from .models import User as UserModel

    scope = _scope(user)
    if scope["all"]:
        return None
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if not scope["manages"]:
        return {user.pk}
    ids = set(UserModel.objects.filter(team_id__in=scope["team_ids"]).values_list("id", flat=True))
    ids.add(user.pk)
    return ids


def owner_scope_q(user: User, owner_field: str = "owner") -> Q:
    """A Q object selecting the rows owned by someone whose records `user` may see."""
    ids = managed_user_ids(user)
    if ids is None:
        return Q()
    if not ids:
        return Q(pk__in=[])
    if len(ids) == 1:
        return Q(**{f"{owner_field}_id": next(iter(ids))})
    return Q(**{f"{owner_field}_id__in": sorted(ids)})


class ScopedQuerySet(models.QuerySet):
    """QuerySet with `visible_to(user)`. Set `owner_field` on a subclass if it is not `owner`.

    Models whose visibility has more to it (the lead pool, records reached through a parent) override
    `scope_q(user)`; everything else calls `visible_to`.
    """

    owner_field = "owner"

    def scope_q(self, user: User) -> Q:
        return owner_scope_q(user, self.owner_field)

    def visible_to(self, user: User) -> ScopedQuerySet:
        return self.filter(self.scope_q(user))


def get_visible_or_404(queryset: models.QuerySet, user: User, **lookup: Any) -> Any:
    """Fetch-and-authorize in one call: a record outside the user's scope is a 404."""
    try:
        return queryset.visible_to(user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        log_scope_denial(queryset, user, **lookup)
        raise Http404(str(queryset.model._meta.verbose_name)) from exc


def log_scope_denial(queryset: models.QuerySet, user: User, **lookup: Any) -> None:
    """Security-log a 404 of the scope rule: `out_of_scope` if the record exists, else `not_found`.

    The extra existence query runs only on this failure path; the user still gets the same 404.
    """
    from .security_log import access_denied

    try:
        exists = queryset.model._default_manager.filter(**lookup).exists()
    except (ValueError, TypeError):
        exists = False
    access_denied(
        reason="out_of_scope" if exists else "not_found",
        user=user,
        model=queryset.model._meta.label_lower,
        lookup=",".join(f"{key}={value}" for key, value in sorted(lookup.items())),
    )
