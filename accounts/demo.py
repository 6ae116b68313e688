"""Demo users and teams: admin, manager1/manager2, rep1-rep6 (password in settings.CRM_DEMO_PASSWORD)."""

from django.conf import settings

from .models import Role, Team, User

DEMO_TEAMS = [
    ("华东销售一组 East team 1", "manager1", ["rep1", "rep2", "rep3"]),
    ("华南销售二组 South team 2", "manager2", ["rep4", "rep5", "rep6"]),
]
DEMO_NAMES = {
    "admin": ("管理员", "Admin"),
    "manager1": ("王", "经理"),
    "manager2": ("李", "经理"),
    "rep1": ("张", "伟"),
    "rep2": ("陈", "静"),
    "rep3": ("赵", "磊"),
    "rep4": ("孙", "丽"),
    "rep5": ("周", "强"),
    "rep6": ("吴", "敏"),
}


def _user(username: str, role: str, team: Team | None) -> User:
    last, first = DEMO_NAMES[username]
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"role": role, "team": team, "first_name": first, "last_name": last,
                  "email": f"{username}@example.com", "is_superuser": role == Role.ADMIN},
    )
    if created:
        user.set_password(settings.CRM_DEMO_PASSWORD)
        user.save()
    return user


def seed(*, seed: int) -> str:
    _user("admin", Role.ADMIN, None)
    for team_name, manager_name, rep_names in DEMO_TEAMS:
        team, _created = Team.objects.get_or_create(name=team_name)
        manager = _user(manager_name, Role.MANAGER, team)
        if team.manager_id != manager.pk:
            team.manager = manager
            team.save(update_fields=["manager"])
        for rep_name in rep_names:
            _user(rep_name, Role.REP, team)
    return f"{User.objects.count()} users, {Team.objects.count()} teams"
