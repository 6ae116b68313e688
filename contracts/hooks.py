"""Our registrations with other apps' extension points (done in ContractsConfig.ready()).

- opportunities: the win condition "the opportunity has a signed contract";
(notifications finds our reminder source on ContractsConfig.reminder_sources by itself.)
"""

from __future__ import annotations


def connect() -> None:
    from opportunities import rules as opportunity_rules

    from . import selectors

    opportunity_rules.register_signed_contract_check(selectors.has_signed_contract)
