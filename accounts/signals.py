"""Security logging: every failed login is logged with who (the username tried), when and from where."""

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from .security_log import client_ip, security_event, security_log  # noqa: F401 (re-exported)


@receiver(user_login_failed)
def log_login_failure(sender, credentials, request=None, **kwargs):
    security_event("login_failed", request=request, username=credentials.get("username", "-"))
