"""The API schema's error answers, per operation (drf-spectacular's AutoSchema, extended).

Each operation documents exactly the error statuses it can answer, all with the shared `Error` body
(crm.api.ErrorSerializer: `{"code", "detail", "errors"?, "unmet"?}`):

- 400 invalid input (field errors under `errors`): operations with a request body, lists (filters);
- 401 / 403: operations behind authentication (no credentials; not allowed, e.g. a non-admin writing
  the pipeline configuration, or a session without its CSRF token);
- 404: operations on one record (out of the caller's scope or missing) and paginated lists (a page
  past the end);
- 409: the operations a view names in `conflict_actions` (refused transitions with `unmet`, concurrent
  edits, deletes the rules refuse);
- 412: writes to one record of a versioned resource, which take an `If-Match` header;
- 415: operations with a request body (another content type than JSON, form or multipart);
- 429: every operation (throttled, with `Retry-After`).

Methods a resource does not offer (e.g. DELETE on tickets) are not operations; the API answers them
with 405 and an `Allow` header, as the resource's description says.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

ERROR_DESCRIPTIONS = {
    400: "Invalid input: `code` is `invalid`, `errors` names each field (messages follow Accept-Language).",
    401: "Not signed in, or the token is unknown or revoked.",
    403: "Signed in but not allowed (role, or a session request without its CSRF token).",
    404: "No such record in your scope (records of other users' scope are 404 on every verb), or no such page.",
    409: "Refused by the rules: `transition_not_allowed` with `unmet` (each rule not met, by code), "
         "`conflict` (changed by someone else meanwhile) or `delete_not_allowed`.",
    412: "`precondition_failed`: If-Match does not match the record's current ETag; nothing was changed.",
    415: "Unsupported Content-Type: send JSON (application/json).",
    429: "`throttled`: too many requests for this user or token; retry after `Retry-After` seconds.",
}
BODY_METHODS = ("POST", "PUT", "PATCH")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class AutoSchema(SpectacularAutoSchema):
    def _action(self) -> str:
        return getattr(self.view, "action", None) or self.method.lower()

    def _on_one_record(self) -> bool:
        return "{" in self.path

    def _takes_if_match(self) -> bool:
        return (
            getattr(self.view, "supports_if_match", False) and self.method in WRITE_METHODS
            and self._on_one_record()
        )

    def _takes_idempotency_key(self) -> bool:
        return getattr(self.view, "supports_idempotency_key", False) and self._action() == "create"

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._takes_if_match():
            parameters.append(OpenApiParameter(
                "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                description='The ETag you read (`W/"<id>-<version>"`): if the record changed since, the answer '
                            "is 412 and nothing changes.",
            ))
        if self._takes_idempotency_key():
            parameters.append(OpenApiParameter(
                "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                description="Any unique string: a repeat with the same key returns the first answer "
                            "(header `Idempotent-Replayed: true`) and creates nothing new.",
            ))
        return parameters

    def error_statuses(self, operation: dict) -> set[int]:
        statuses = {429}
        if getattr(self.view, "authentication_classes", None) != []:
            statuses |= {401, 403}
        has_body = "requestBody" in operation
        is_list = self.method == "GET" and not self._on_one_record() and self._is_list_view()
        if has_body or is_list:
            statuses.add(400)
        if has_body:
            statuses.add(415)
        paginated = is_list and getattr(self.view, "pagination_class", None) is not None
        if self._on_one_record() or paginated:
            statuses.add(404)
        if self._action() in getattr(self.view, "conflict_actions", ()):
            statuses.add(409)
        if self._takes_if_match():
            statuses.add(412)
        return statuses

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        from .api import ErrorSerializer

        error = self.resolve_serializer(ErrorSerializer, "response").ref
        responses = operation.setdefault("responses", {})
        for status in sorted(self.error_statuses(operation)):
            entry = {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": error}}}
            if status == 429:
                entry["headers"] = {"Retry-After": {
                    "schema": {"type": "integer"}, "description": "Seconds to wait before the next request.",
                }}
            responses.setdefault(str(status), entry)
        if getattr(self.view, "supports_if_match", False) and self.method != "DELETE":
            for status in ("200", "201"):
                if status in responses and not (self.method == "GET" and not self._on_one_record()):
                    responses[status].setdefault("headers", {})["ETag"] = {
                        "schema": {"type": "string"}, "description": 'W/"<id>-<version>": send it back in If-Match.',
                    }
        return operation
