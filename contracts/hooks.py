"""Our registrations with other apps' extension points (done in ContractsConfig.ready()).

- opportunities: the win condition "the opportunity has a signed contract";
- notifications: overdue instalments as a reminder source (see contracts.reminders).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def connect() -> None:
    from opportunities import rules as opportunity_rules

    from . import selectors
    from .models import Contract

    if any(f.name == "opportunity" for f in Contract._meta.get_fields()):
        opportunity_rules.register_signed_contract_check(selectors.has_signed_contract)
