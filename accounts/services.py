from __future__ import annotations

from django.db import transaction

from .models import Role, Team, User
from .scope import forget_scope


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str = Role.REP,
    team: Team | None = None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
) -> User:
    user = User(
        username=username,
        role=role,
        team=team,
        email=email,
        first_name=first_name,
        last_name=last_name,
        is_superuser=role == Role.ADMIN,
    )
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return user


@transaction.atomic
def team_set_manager(*, team: Team, manager: User) -> Team:
    """Make `manager` the team's manager (and a member of it, with the manager role)."""
    if manager.role == Role.REP:
        manager.role = Role.MANAGER
    manager.team = team
    manager.save()
    team.manager = manager
    team.save(update_fields=["manager"])
    forget_scope(manager)
    return team


def user_set_language(*, user: User, language: str) -> None:
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
