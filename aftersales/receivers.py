"""Reactions to other apps' events, connected in AftersalesConfig.ready() (the senders never import us)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


def on_contract_signed(sender, contract=None, **kwargs) -> None:
    """A signed contract starts the customer's after-sales: every active service plan template is
    applied, its steps owned by the contract owner (or left in the service team's queue)."""
    from . import services

    if contract is None:
        return
    signed_on = contract.signed_on or timezone.localdate()
    with transaction.atomic():
        services.contract_signed_apply_plans(
            customer=contract.customer, owner=contract.owner, signed_on=signed_on, label=contract.number,
            contract=contract,
        )


def connect() -> None:
    try:
        from contracts.signals import contract_signed
    except ImportError:  # the contracts app does not send it (yet)
        logger.debug("contracts.signals.contract_signed not available: service plans are applied by hand")
        return
    contract_signed.connect(on_contract_signed, dispatch_uid="aftersales.on_contract_signed")
