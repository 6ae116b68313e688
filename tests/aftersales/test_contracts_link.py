"""After-sales and contracts: service plans start when a contract is signed; repeat purchase."""

from datetime import date

import pytest

from aftersales import selectors
from aftersales.models import PlanOwnerSource, ServicePlan, ServicePlanItem, ServicePlanTemplate
from contracts.models import Contract
from contracts.signals import contract_signed
from leads.models import Customer
from tests.factories import CustomerFactory

from .factories import kind

_numbers = iter(range(1, 10_000))


def signed(customer, on: date | None, owner=None) -> Contract:
    """A contract as the contracts app leaves it after signing (None: still a draft)."""
    n = next(_numbers)
    return Contract.objects.create(
        number=f"HT-TEST-{n:05d}", title=f"Contract {n}", customer=customer, owner=owner or customer.owner,
        status="signed" if on else "draft", signed_on=on,
    )


@pytest.mark.django_db
class TestContractSigned:
    def template(self):
        ServicePlanTemplate.objects.update(is_active=False)
        template = ServicePlanTemplate.objects.create(name="Standard", owner_source=PlanOwnerSource.CONTRACT_OWNER)
        template.items.create(title="Onboarding call", kind=kind("consultation"), offset_days=3)
        template.items.create(title="Training", kind=kind("training"), offset_days=14)
        return template

    def test_signing_applies_the_active_templates_once(self, org):
        """The contracts app sends contract_signed after the signing commits: the customer gets the
        plan, owned by the contract owner, dated from the signing; a repeated signal adds nothing."""
        self.template()
        customer = CustomerFactory(owner=org.rep_a)
        contract = signed(customer, date(2026, 3, 2), owner=org.rep_a2)
        contract_signed.send(sender=Contract, contract=contract)
        contract_signed.send(sender=Contract, contract=contract)
        plan = ServicePlan.objects.get(customer=customer)
        assert plan.contract == contract and contract.number in plan.name
        assert sorted((i.title, i.due_date, i.owner) for i in plan.items.all()) == [
            ("Onboarding call", date(2026, 3, 5), org.rep_a2),
            ("Training", date(2026, 3, 16), org.rep_a2),
        ]

    def test_inactive_templates_are_skipped(self, org):
        self.template()
        ServicePlanTemplate.objects.update(is_active=False)
        contract = signed(CustomerFactory(owner=org.rep_a), date(2026, 3, 2))
        contract_signed.send(sender=Contract, contract=contract)
        assert not ServicePlanItem.objects.exists()


@pytest.mark.django_db
class TestRepeatPurchase:
    def test_rate_and_time_between_purchases(self, org):
        """Four buyers, two of them came back: rate 50 %. Gaps: A 30 d then 60 d, B 90 d."""
        a, b, c, d = (CustomerFactory(owner=org.rep_a) for _ in range(4))
        signed(a, date(2026, 1, 1))
        signed(a, date(2026, 1, 31))
        signed(a, date(2026, 4, 1))
        signed(b, date(2026, 1, 1))
        signed(b, date(2026, 4, 1))
        signed(c, date(2026, 2, 1))
        signed(d, date(2026, 2, 1))
        signed(d, None)  # a draft is no purchase
        CustomerFactory(owner=org.rep_a)  # never bought
        stats = selectors.repeat_purchase_stats()
        assert stats["customers_purchasing"] == 4
        assert stats["customers_repurchasing"] == 2
        assert stats["repurchase_rate"] == 0.5
        assert stats["avg_days_between_purchases"] == pytest.approx((30 + 60 + 90) / 3, abs=0.1)
        assert stats["avg_days_to_second_purchase"] == pytest.approx((30 + 90) / 2, abs=0.1)
        assert [(x.pk, x.purchases) for x in selectors.repeat_customers()] == [(a.pk, 3), (b.pk, 2)]

    def test_scoped_and_until(self, org):
        mine, theirs = CustomerFactory(owner=org.rep_a), CustomerFactory(owner=org.rep_b)
        for customer in (mine, theirs):
            signed(customer, date(2026, 1, 1))
            signed(customer, date(2026, 3, 1))
        scoped = selectors.repeat_purchase_stats(customers=Customer.objects.visible_to(org.rep_a))
        assert (scoped["customers_purchasing"], scoped["customers_repurchasing"]) == (1, 1)
        early = selectors.repeat_purchase_stats(until=date(2026, 2, 1))
        assert (early["customers_repurchasing"], early["repurchase_rate"]) == (0, 0.0)

    def test_no_purchases(self, db):
        assert selectors.repeat_purchase_stats() == {
            "customers_purchasing": 0, "customers_repurchasing": 0, "repurchase_rate": None,
            "avg_days_between_purchases": None, "avg_days_to_second_purchase": None,
        }
