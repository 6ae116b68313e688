"""Demo data, periodic tasks, health endpoint."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from accounts.models import Role, Team, User


@pytest.mark.django_db
class TestSeedDemo:
    def test_seed_demo_is_idempotent_and_creates_the_documented_logins(self):
        call_command("seed_demo", verbosity=0)
        counts = (User.objects.count(), Team.objects.count())
        call_command("seed_demo", verbosity=0)
        assert (User.objects.count(), Team.objects.count()) == counts
        for name in ["admin", "manager1", "manager2", *[f"rep{i}" for i in range(1, 7)]]:
            assert User.objects.get(username=name).check_password("crm-demo-2026")
        assert User.objects.get(username="admin").is_staff
        m1 = User.objects.get(username="manager1")
        assert m1.role == Role.MANAGER
        assert set(User.objects.filter(team=m1.team, role=Role.REP).values_list("username", flat=True)) == {
            "rep1", "rep2", "rep3"}
        m2 = User.objects.get(username="manager2")
        assert set(User.objects.filter(team=m2.team, role=Role.REP).values_list("username", flat=True)) == {
            "rep4", "rep5", "rep6"}


@pytest.mark.django_db
def test_setup_periodic_tasks_is_idempotent():
    call_command("setup_periodic_tasks", verbosity=0)
    call_command("setup_periodic_tasks", verbosity=0)
    heartbeat = PeriodicTask.objects.get(name="celery-heartbeat")
    assert heartbeat.task == "crm.ping"
    assert heartbeat.interval.every == 60
    assert PeriodicTask.objects.filter(name="celery-heartbeat").count() == 1


@pytest.mark.django_db
def test_health_endpoint_reports_database_and_redis(client):
    response = client.get("/healthz/")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"] == "ok"


@pytest.mark.django_db
def test_admin_users_are_staff_and_others_are_not():
    from tests.factories import UserFactory

    assert UserFactory(username="boss", role=Role.ADMIN).is_staff
    assert not UserFactory(username="seller", role=Role.REP).is_staff
    assert not UserFactory(username="lead", role=Role.MANAGER).is_staff
