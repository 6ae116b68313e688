"""Property-based check of the whole API against its own OpenAPI schema (schemathesis): for generated
requests to every operation, as a signed-in rep with a few records, the API never answers 5xx and
answers only a status code that the operation itself documents (schemathesis' status_code_conformance:
crm/schema.py documents each operation's error statuses, so there is no global allow-list)."""

from collections import Counter

import pytest
import schemathesis
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
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
def token(db):
    user = UserFactory(username="schemathesis")
    CustomerFactory(owner=user)
    return Token.objects.create(user=user).key


@override_settings(API_THROTTLE_RATES={"user": "100000/hour", "token": "100000/hour"})
def test_no_server_errors_and_no_undocumented_status(api_schema, token):
    """Every operation, a few generated requests each (derandomized: the same requests every run)."""
    headers = {"Authorization": f"Token {token}"}
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 40  # the schema really lists the resources

    for operation in operations:
        if operation.path.startswith("/api/v1/auth/token/") and operation.method.upper() == "DELETE":
            continue  # revoking the token would sign the run out

        @given(case=operation.as_strategy())
        @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            response = case.call_and_validate(headers=headers, checks=[not_a_server_error, status_code_conformance])
            statuses[response.status_code] += 1

        check()
    # the run really reached the views: reads succeeded and generated input was refused as invalid
    assert statuses[200] > 20 and statuses[400] > 0, statuses
