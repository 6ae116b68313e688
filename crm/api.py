"""Shared REST API building blocks: error format, scoping, ETag/If-Match, Idempotency-Key, throttles.

Every resource is a ViewSet in its app's api.py, mostly built on `ScopedModelViewSet`; it reads through
the scope rule (out of scope: 404 on every verb) and writes through the app's services, so the API
obeys exactly the rules of the pages. `VersionedMixin` gives a resource with a `version` its ETag and
If-Match (412); `IdempotentCreateMixin` the Idempotency-Key on create; a viewset's `conflict_actions`
name the actions that can answer 409 (crm/schema.py documents each operation's statuses from these).
Apps expose `routes = [(prefix, viewset, basename), ...]` in api.py; crm/api_urls.py registers them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.scope import log_scope_denial

from .models import IdempotencyKey

IDEMPOTENCY_HEADER = "HTTP_IDEMPOTENCY_KEY"


# --- errors ------------------------------------------------------------------------------------
def unmet_entry(code: str, detail: Any, field: str | None = None) -> dict[str, Any]:
    """One reason a move was refused: a stable `code` (e.g. "field:budget", "checklist:12",
    "no_signed_contract", "reopen_window_passed"), the translated `detail`, and the `field` it names."""
    return {"code": str(code), "detail": str(detail), "field": field}


def _as_unmet(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return unmet_entry(item.get("code", "unmet"), item.get("detail", item.get("label", "")), item.get("field"))
    if hasattr(item, "code") and hasattr(item, "label"):  # opportunities.models.Unmet
        return unmet_entry(item.code, item.label, getattr(item, "field", None))
    return unmet_entry("unmet", item)


class TransitionNotAllowed(exceptions.APIException):
    """409: the state machine refused the move. `unmet` names each rule not met (e.g. an exit
    criterion) as `{"code", "detail", "field"}`; the top-level code is always `transition_not_allowed`."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "transition_not_allowed"
    default_detail = _("This move is not allowed.")

    def __init__(self, detail: str | None = None, unmet: Iterable[Any] | None = None):
        super().__init__(detail=detail)
        self.unmet = [_as_unmet(item) for item in (unmet or [])]


class DeleteRefused(exceptions.APIException):
    """409: the record exists and you may change it, but the rules keep it (e.g. a stage deals were in);
    `code` names the rule (stage_in_use, not_deletable, ...)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "delete_not_allowed"
    default_detail = _("This record cannot be deleted.")


class EditConflict(exceptions.APIException):
    """409: someone else changed the record (or moved it) at the same moment."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = _("The record was changed by someone else. Reload it and try again.")


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = _("The record has changed since you read it (If-Match does not match its ETag).")


def _first_code(codes: Any, fallback: str) -> str:
    while isinstance(codes, dict | list):
        if not codes:
            return fallback
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return str(codes) if codes else fallback


def exception_handler(exc, context):
    """Errors as JSON with a stable `code` and a translated `detail`; field errors under `errors`."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "code": "invalid",
            "detail": str(_("The request has invalid fields.")),
            "errors": errors,
        }
    else:
        body = {"code": _first_code(exc.get_codes(), "error"), "detail": str(exc.detail)}
        if isinstance(exc, TransitionNotAllowed):
            body["unmet"] = exc.unmet
        response.data = body
    return response


# --- serializers -------------------------------------------------------------------------------
class StrictFieldsMixin:
    """Reject, with a 400 naming the field, input that sets a read-only or unknown field.

    DRF silently ignores such fields; for an integration that is worse than an error, because a
    client that tries to set `owner`, `stage` or `version` must learn that it cannot.
    """

    def to_internal_value(self, data):
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            refused = {
                key: [_("This field cannot be set.")] for key in data.keys() if key not in writable
            }
            if refused:
                raise exceptions.ValidationError(refused, code="read_only")
        return super().to_internal_value(data)


# --- the error body, for the schema -------------------------------------------------------------
class UnmetSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable code of the rule not met, e.g. field:budget, checklist:12, "
                                           "no_signed_contract, no_lines, reopen_window_passed.")
    detail = serializers.CharField(help_text="The rule, in the request's language (Accept-Language).")
    field = serializers.CharField(allow_null=True, help_text="The field the rule is about, if any.")


class ErrorSerializer(serializers.Serializer):
    """Every error answer: a stable `code`, a translated `detail`; `errors` (field name -> messages) on a
    400; `unmet` on a 409 transition_not_allowed."""

    code = serializers.CharField(help_text="Stable: invalid, not_authenticated, authentication_failed, "
                                           "permission_denied, not_found, transition_not_allowed, conflict, "
                                           "precondition_failed, unsupported_media_type, throttled; a refused "
                                           "DELETE: default_pipeline, pipeline_in_use, stage_in_use, "
                                           "closed_stage, not_deletable, ...")
    detail = serializers.CharField()
    errors = serializers.DictField(required=False, help_text="400 only: field name -> list of messages.")
    unmet = UnmetSerializer(many=True, required=False, help_text="409 transition_not_allowed only.")


# --- viewset base -------------------------------------------------------------------------------
WRITE_METHODS = ("PATCH", "PUT", "DELETE", "POST")


def etag_for(instance) -> str | None:
    version = getattr(instance, "version", None)
    return None if version is None else f'W/"{instance.pk}-{version}"'


def _if_match_tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


class VersionedMixin:
    """`version` as ETag, and If-Match honoured on every write to one record.

    A write with If-Match runs in one transaction: the record's row is locked (FOR UPDATE) while its
    version is compared, so nobody can change it between the check and the service's write; a stale
    If-Match is a 412 and nothing changes. Any error answer rolls the whole request back."""

    supports_if_match = True

    def dispatch(self, request, *args, **kwargs):
        if request.method in WRITE_METHODS and kwargs and request.headers.get("If-Match"):
            with transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)
                if response.status_code >= 400:
                    transaction.set_rollback(True)
                return response
        return super().dispatch(request, *args, **kwargs)

    def check_if_match(self, instance) -> None:
        expected = self.request.headers.get("If-Match")
        if not expected or self.request.method not in WRITE_METHODS or getattr(instance, "version", None) is None:
            return
        current = instance.version
        if transaction.get_connection().in_atomic_block:
            current = (
                type(instance)._base_manager.select_for_update().filter(pk=instance.pk)
                .values_list("version", flat=True).first()
            )
        tags = _if_match_tags(expected)
        if "*" not in tags and f'"{instance.pk}-{current}"' not in tags:
            raise PreconditionFailed()

    def get_object(self):
        instance = super().get_object()
        self.check_if_match(instance)
        return instance

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        data = getattr(response, "data", None)
        if isinstance(data, dict) and "version" in data and "id" in data and response.status_code < 300:
            response["ETag"] = f'W/"{data["id"]}-{data["version"]}"'
        return response


class IdempotentCreateMixin:
    """POST (create) with an `Idempotency-Key` header: a repeat returns the first answer."""

    supports_idempotency_key = True

    def create(self, request, *args, **kwargs):
        key = request.META.get(IDEMPOTENCY_HEADER)
        if not key:
            return super().create(request, *args, **kwargs)
        return idempotent(request, key, lambda: super(IdempotentCreateMixin, self).create(request, *args, **kwargs))


class ScopedModelViewSet(VersionedMixin, IdempotentCreateMixin, viewsets.ModelViewSet):
    """A resource read through the scope rule, with ETag/If-Match and Idempotency-Key support.

    Subclasses set `queryset` (a ScopedQuerySet) and implement `perform_create` / `perform_update` /
    `perform_destroy` by calling their app's services.
    """

    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # the actions that can answer 409 (documented in the schema; see crm/schema.py)
    conflict_actions: tuple[str, ...] = ()

    def get_queryset(self):
        return super().get_queryset().visible_to(self.request.user)

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
            log_scope_denial(
                self.get_queryset(), self.request.user, **{self.lookup_field: self.kwargs.get(lookup_url_kwarg)}
            )
            raise


def idempotent(request, key: str, produce) -> Response:
    """Run `produce()` once per (user, Idempotency-Key); a repeat returns the first response."""
    key = key.strip()[:200]
    if not key:
        raise exceptions.ValidationError({"Idempotency-Key": [_("The Idempotency-Key header is empty.")]})
    existing = IdempotencyKey.objects.filter(user=request.user, key=key).first()
    if existing is None:
        try:
            with transaction.atomic():
                record = IdempotencyKey.objects.create(
                    user=request.user, key=key, method=request.method, path=request.path[:500]
                )
                response = produce()
                if response.status_code >= 400:
                    # a failed attempt is not remembered: the client may retry with the same key
                    transaction.set_rollback(True)
                    return response
                record.status_code = response.status_code
                record.response_body = response.data
                record.save(update_fields=["status_code", "response_body"])
                return response
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(user=request.user, key=key).first()
            if existing is None:
                raise
    if existing.path != request.path[:500] or existing.method != request.method:
        raise exceptions.ValidationError(
            {"Idempotency-Key": [_("This Idempotency-Key was already used for another request.")]}
        )
    replay = Response(existing.response_body, status=existing.status_code)
    replay["Idempotent-Replayed"] = "true"
    return replay
