"""If-Match under a real race (PostgreSQL, two threads): the version is compared under the row lock in
the write's transaction, so of two writes made with the same ETag exactly one wins and the other is a
412 that changes nothing, even when both read the record before either wrote."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from leads import services
from leads.models import Contact
from tests.factories import CustomerFactory, UserFactory


@pytest.mark.django_db(transaction=True)
def test_two_patches_with_the_same_etag_one_wins_one_is_412(monkeypatch):
    owner = UserFactory(username="racer")
    contact = Contact.objects.create(customer=CustomerFactory(owner=owner), name="Li")
    etag = f'W/"{contact.pk}-1"'

    # Both requests have read and checked the record before the first one writes: the service waits a
    # moment before saving (without the lock, both checks would pass and both writes would land).
    real_save = services.contact_save

    def slow_save(**kwargs):
        time.sleep(0.4)
        return real_save(**kwargs)

    monkeypatch.setattr(services, "contact_save", slow_save)
    start = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def patch(title: str) -> None:
        try:
            client = APIClient()
            client.force_authenticate(owner)
            start.wait()
            response = client.patch(f"/api/v1/contacts/{contact.pk}/", {"title": title}, format="json",
                                    HTTP_IF_MATCH=etag)
            statuses[title] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=patch, args=(title,)) for title in ("CTO", "CEO")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses.values()) == [200, 412], statuses
    winner = next(title for title, status in statuses.items() if status == 200)
    contact.refresh_from_db()
    assert (contact.title, contact.version) == (winner, 2)
