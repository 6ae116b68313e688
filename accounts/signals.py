"""Security logging: every failed login is logged with who, when and from where."""

import logging

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

security_log = logging.getLogger("crm.security")


def client_ip(request) -> str:
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR", "-")


@receiver(user_login_failed)
def log_login_failure(sender, credentials, request=None, **kwargs):
    security_log.warning(
        "login_failed username=%s ip=%s path=%s",
        credentials.get("username", "-"),
        client_ip(request),
        getattr(request, "path", "-"),
    )
