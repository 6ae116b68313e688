"""The security log (logger `crm.security`): denied access and failed logins, with who, what, when, IP.

One call, `security_event(...)`, writes a line such as

    access_denied user=rep_a ip=10.0.0.7 method=GET path=/customers/12/ reason=out_of_scope model=leads.customer

and passes the same fields as `extra=` so that LOG_FORMAT=json writes them as keys (`event`, `user`,
`user_id`, `ip`, `method`, `path`, ...); "when" is the record's timestamp.

Where it is called:
- `accounts.scope.get_visible_or_404` (and the API's `ScopedModelViewSet.get_object`): a record that
  exists but is out of the user's scope (`reason=out_of_scope`) or does not exist (`reason=not_found`);
- `RequestContextMiddleware`: every 401/403 response (permission denied, CSRF failure, API refusal);
- `accounts.signals`: every failed login (`login_failed`, with the username tried).

Code that needs neither a request nor a user at hand (selectors, services) can still log: the middleware
keeps the current request in a context variable.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

security_log = logging.getLogger("crm.security")

_current_request: ContextVar[Any] = ContextVar("crm_current_request", default=None)
_LOGGED_ATTR = "_crm_access_denied_logged"


def current_request():
    """The request being handled by this thread/task, or None (management commands, Celery)."""
    return _current_request.get()


def request_client_ip(request) -> str | None:
    """The client's address (django-axes calls this too, AXES_CLIENT_IP_CALLABLE).

    Without trusted proxies (AXES_PROXY_COUNT=0) it is REMOTE_ADDR and X-Forwarded-For is ignored:
    anyone can send that header. Behind N trusted proxies, each appending the address it received
    from, the client is the N-th entry from the right of X-Forwarded-For; entries further left were
    written by the client and are not trusted.
    """
    from django.conf import settings

    remote = request.META.get("REMOTE_ADDR") or None
    count = getattr(settings, "CRM_TRUSTED_PROXY_COUNT", 0)
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    return forwarded[-count] if len(forwarded) >= count else forwarded[0]


def client_ip(request) -> str:
    """The client's address as django-axes sees it (so the log and the lockout agree)."""
    if request is None:
        return "-"
    try:
        from axes.helpers import get_client_ip_address

        return get_client_ip_address(request) or request.META.get("REMOTE_ADDR") or "-"
    except Exception:  # noqa: BLE001 - logging must never break the request
        return request.META.get("REMOTE_ADDR") or "-"


def _who(user, request) -> tuple[str, int | None]:
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous", None
    return user.get_username(), user.pk


def security_event(event: str, *, user=None, request=None, level: int = logging.WARNING, **fields: Any) -> None:
    """Log one security event; `request` defaults to the current one, `user` to the request's user."""
    request = request if request is not None else current_request()
    username, user_id = _who(user, request)
    data: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    data.update(
        user=username,
        ip=client_ip(request),
        method=getattr(request, "method", None) or "-",
        path=getattr(request, "path", None) or "-",
    )
    message = event + "".join(f" {key}={value}" for key, value in data.items())
    security_log.log(level, message, extra={"event": event, "user_id": user_id, **data})


def access_denied(*, reason: str, user=None, request=None, **fields: Any) -> None:
    """A refused access; marks the request so the middleware does not log its response a second time."""
    request = request if request is not None else current_request()
    if request is not None:
        setattr(request, _LOGGED_ATTR, True)
    security_event("access_denied", user=user, request=request, reason=reason, **fields)


class RequestContextMiddleware:
    """Keeps the current request reachable by the security log; logs every 401/403 response.

    Place it right after AuthenticationMiddleware. 404s are logged where they are decided (the scope
    rule), not here: a 404 for a mistyped URL is not a denied access.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _current_request.reset(token)
        if response.status_code in (401, 403) and not getattr(request, _LOGGED_ATTR, False):
            access_denied(
                reason="unauthenticated" if response.status_code == 401 else "forbidden",
                request=request,
                status=response.status_code,
            )
        return response
