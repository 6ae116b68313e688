"""The API's shared behaviour: token auth, the caller's profile, error format, throttling."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def rep(db):
    return UserFactory(username="apirep", first_name="Ann")


@pytest.mark.django_db
class TestTokenApi:
    def test_obtain_use_and_revoke_a_token(self, api, rep):
        response = api.post("/api/v1/auth/token/", {"username": "apirep", "password": "crm-demo-2026"}, format="json")
        assert response.status_code == 200
        token = response.json()["token"]
        assert Token.objects.get(user=rep).key == token

        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert api.get("/api/v1/users/me/").json()["username"] == "apirep"

        assert api.delete("/api/v1/auth/token/").status_code == 204
        assert not Token.objects.filter(user=rep).exists()
        response = api.get("/api/v1/users/me/")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"

    def test_wrong_password_is_a_clear_400(self, api, rep):
        response = api.post(
            "/api/v1/auth/token/", {"username": "apirep", "password": "nope"}, format="json",
            HTTP_ACCEPT_LANGUAGE="en",
        )
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid"
        assert "Unable to log in" in body["errors"]["non_field_errors"][0]

    def test_anonymous_is_401_with_a_code(self, api, db):
        response = api.get("/api/v1/users/me/")
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
class TestMeApi:
    def test_patch_own_profile(self, api, rep):
        api.force_authenticate(rep)
        response = api.patch("/api/v1/users/me/", {"language": "en", "phone": "13800000000"}, format="json")
        assert response.status_code == 200
        rep.refresh_from_db()
        assert (rep.language, rep.phone) == ("en", "13800000000")

    def test_role_cannot_be_set_and_the_field_is_named(self, api, rep):
        api.force_authenticate(rep)
        response = api.patch("/api/v1/users/me/", {"role": "admin"}, format="json", HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 400
        assert response.json()["errors"] == {"role": ["This field cannot be set."]}
        rep.refresh_from_db()
        assert rep.role == "rep"

    def test_errors_follow_accept_language(self, api, rep):
        api.force_authenticate(rep)
        response = api.patch("/api/v1/users/me/", {"role": "admin"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert response.json()["errors"]["role"] == ["此字段不可设置。"]


@pytest.mark.django_db
class TestThrottling:
    def test_429_with_retry_after(self, api, rep):
        cache.clear()
        api.force_authenticate(rep)
        with override_settings(API_THROTTLE_RATES={"user": "3/minute", "token": "100/minute"}):
            codes = [api.get("/api/v1/users/me/").status_code for _ in range(4)]
            last = api.get("/api/v1/users/me/")
        assert codes == [200, 200, 200, 429]
        assert last.status_code == 429
        assert int(last["Retry-After"]) > 0
        assert last.json()["code"] == "throttled"

    def test_each_token_has_its_own_limit(self, api, rep):
        cache.clear()
        token = Token.objects.create(user=rep)
        api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        with override_settings(API_THROTTLE_RATES={"user": "100/minute", "token": "2/minute"}):
            codes = [api.get("/api/v1/users/me/").status_code for _ in range(3)]
        assert codes == [200, 200, 429]


@pytest.mark.django_db
def test_schema_and_docs_are_served_locally(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/users/me/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content and b"unpkg" not in docs.content


@pytest.mark.django_db
class TestErrorStatusesInTheSchema:
    """crm/schema.py: each operation documents exactly its error statuses, with the shared Error body."""

    def schema(self, client):
        import yaml

        return yaml.safe_load(client.get("/api/schema/").content)

    def test_per_operation_statuses(self, client):
        paths = self.schema(client)["paths"]

        def statuses(path, method):
            return {int(code) for code in paths[path][method]["responses"]}

        assert statuses("/api/v1/opportunities/{id}/transition/", "post") == {
            200, 400, 401, 403, 404, 409, 412, 415, 429}
        assert statuses("/api/v1/opportunities/{id}/", "get") == {200, 401, 403, 404, 429}
        assert statuses("/api/v1/contacts/{id}/", "delete") == {204, 401, 403, 404, 412, 429}
        assert statuses("/api/v1/stages/{id}/", "delete") == {204, 401, 403, 404, 409, 429}
        assert statuses("/api/v1/customers/", "get") == {200, 400, 401, 403, 404, 429}
        assert statuses("/api/v1/service/public/{token}/tickets/", "post") == {201, 400, 404, 415, 429}
        assert "delete" not in paths["/api/v1/tickets/{id}/"]  # not offered: 405

    def test_the_409_body_names_the_unmet_rules_and_writes_take_if_match(self, client):
        schema = self.schema(client)
        operation = schema["paths"]["/api/v1/contracts/{id}/transition/"]["post"]
        assert operation["responses"]["409"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
        error = schema["components"]["schemas"]["Error"]
        assert error["required"] == ["code", "detail"]
        assert error["properties"]["unmet"]["items"] == {"$ref": "#/components/schemas/Unmet"}
        assert set(schema["components"]["schemas"]["Unmet"]["properties"]) == {"code", "detail", "field"}
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert headers == {"If-Match"}
        create = schema["paths"]["/api/v1/activities/"]["post"]
        assert {p["name"] for p in create["parameters"] if p["in"] == "header"} == {"Idempotency-Key"}
        assert "Retry-After" in create["responses"]["429"]["headers"]


@pytest.mark.django_db
def test_an_unsupported_content_type_is_415_with_a_code(rep):
    client = APIClient()
    client.force_authenticate(rep)
    response = client.patch("/api/v1/users/me/", "phone=1", content_type="text/plain", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
