import pytest

from accounts.models import Role
from tests.factories import TeamFactory, UserFactory


class Org:
    """A small sales organisation: a director over two teams, each with a manager and reps.

    director (manager role) manages "Sales" which contains team_a and team_b;
    manager_a manages team_a (rep_a, rep_a2); manager_b manages team_b (rep_b); admin sees all.
    """

    def __init__(self):
        self.sales = TeamFactory(name="Sales")
        self.team_a = TeamFactory(name="Team A", parent=self.sales)
        self.team_b = TeamFactory(name="Team B", parent=self.sales)
        self.director = UserFactory(username="director", role=Role.MANAGER, team=self.sales)
        self.manager_a = UserFactory(username="manager_a", role=Role.MANAGER, team=self.team_a)
        self.manager_b = UserFactory(username="manager_b", role=Role.MANAGER, team=self.team_b)
        self.rep_a = UserFactory(username="rep_a", team=self.team_a)
        self.rep_a2 = UserFactory(username="rep_a2", team=self.team_a)
        self.rep_b = UserFactory(username="rep_b", team=self.team_b)
        self.admin = UserFactory(username="admin", role=Role.ADMIN, is_superuser=True)
        for team, manager in ((self.sales, self.director), (self.team_a, self.manager_a), (self.team_b, self.manager_b)):
            team.manager = manager
            team.save()


@pytest.fixture
def org(db):
    return Org()


@pytest.fixture
def client_for(client):
    """Log the test client in as the given user and return it."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def private_media(settings, tmp_path):
    """Private files (contract attachments, import uploads, export zips) go to a temporary folder,
    never to var/. Apps whose tests write such files turn it on for every test in their conftest."""
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT


@pytest.fixture
def english(client):
    """Messages are asserted in English (the source language), for the code and for the test client's
    pages; tests that want Chinese ask for it themselves."""
    from django.conf import settings as django_settings
    from django.utils import translation

    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    with translation.override("en"):
        yield
