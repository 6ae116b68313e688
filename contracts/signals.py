"""Signals other apps listen to (connected in their AppConfig.ready(); we never import them).

contract_signed(sender=Contract, contract=<Contract>): sent once the signing has committed. After-sales
starts the customer's service plans on it.
"""

from django.dispatch import Signal

contract_signed = Signal()
