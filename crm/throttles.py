"""API throttles (kept apart from crm.api: DRF imports them while it builds its views)."""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class _SettingsRateMixin:
    """Rates come from settings.API_THROTTLE_RATES at request time (so they stay configurable)."""

    def get_rate(self):
        return settings.API_THROTTLE_RATES.get(self.scope)


class PerUserThrottle(_SettingsRateMixin, UserRateThrottle):
    scope = "user"


class PerTokenThrottle(_SettingsRateMixin, SimpleRateThrottle):
    """Limits each API token separately (a script with a leaked token cannot use the user's whole quota)."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        key = getattr(token, "key", None)
        if not key:
            return None
        return self.cache_format % {"scope": self.scope, "ident": key[:12]}
