"""Property-based check of the whole API against its own OpenAPI schema (schemathesis): for generated
requests to every operation, as a signed-in rep with a few records, the API never answers 5xx and
answers only a status code that the operation itself documents (schemathesis' status_code_conformance:
crm/schema.py documents each operation's error statuses, so there is no global allow-list)."""

from collections import Counter

import pytest
import schemathesis
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error, status_code_conformance

from tests.factories import CustomerFactory, UserFactory


@pytest.fixture
def api_schema(db):
    """The live schema, served by the WSGI app itself. As Django's test client does, keep the test's
    database connection open across requests (the app closes it at the end of every request)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from crm.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def records(db):
    """A rep with one record of each resource, so that generated requests also reach real objects."""
    from datetime import timedelta

    from django.utils import timezone

    from activities import services as activity_services
    from activities.defaults import ensure_defaults
    from leads.models import Contact
    from notifications.models import Notification
    from tests.activities.factories import kind
    from tests.aftersales.factories import ensure_default_rules, make_ticket
    from tests.contracts.factories import make_contract
    from tests.opportunities.factories import default_pipeline, make_opportunity, open_stages

    ensure_defaults()  # the seeded kinds and rules, in case a transactional test flushed them
    ensure_default_rules()
    user = UserFactory(username="schemathesis")
    customer = CustomerFactory(owner=user)
    pipeline = default_pipeline()
    activity, _created = activity_services.activity_plan(
        by=user, customer=customer, kind=kind("visit"), subject="Visit", planned_at=timezone.now() + timedelta(days=1),
    )
    ids = {
        "customers": customer.pk,
        "contacts": Contact.objects.create(customer=customer, name="Li").pk,
        "pipelines": pipeline.pk,
        "stages": open_stages(pipeline)[0].pk,
        "opportunities": make_opportunity(user, customer=customer).pk,
        "activities": activity.pk,
        "contracts": make_contract(user, customer=customer).pk,
        "tickets": make_ticket(owner=user, customer=customer).pk,
        "notifications": Notification.objects.create(user=user, title="Hello").pk,
    }
    return Token.objects.create(user=user).key, ids


@override_settings(API_THROTTLE_RATES={"user": "100000/hour", "token": "100000/hour"})
def test_no_server_errors_and_no_undocumented_status(api_schema, records):
    """Every operation, a few generated requests each (derandomized: the same requests every run); the
    `{id}` of a request is either generated or the id of the rep's own record of that resource."""
    token, ids = records
    headers = {"Authorization": f"Token {token}"}
    statuses: Counter[int] = Counter()

    @api_schema.hook
    def flatmap_path_parameters(context, path_parameters):
        resource = context.operation.path.split("/")[3]
        if path_parameters and "id" in path_parameters and resource in ids:
            return st.sampled_from([{**path_parameters, "id": ids[resource]}, path_parameters])
        return st.just(path_parameters)

    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40  # the schema really lists the resources

    for operation in operations:
        if operation.path.startswith("/api/v1/auth/token/") and operation.method.upper() == "DELETE":
            continue  # revoking the token would sign the run out

        @given(case=operation.as_strategy())
        @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            response = case.call_and_validate(headers=headers, checks=[not_a_server_error, status_code_conformance])
            statuses[response.status_code] += 1

        check()
    # the run really reached the views: reads succeeded, generated input was refused as invalid, and
    # requests reached the rep's own records (refused moves: 409; generated If-Match headers: 412)
    assert statuses[200] > 30 and statuses[400] > 0 and statuses[404] > 0, statuses
    assert statuses[409] > 0 and statuses[412] > 0, statuses
