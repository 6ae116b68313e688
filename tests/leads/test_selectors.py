"""Reads: duplicate detection, the filtered list, the customer's own timeline."""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads import selectors, services
from leads.models import Customer, Tag
from leads.selectors import CustomerFilters
from tests.factories import CustomerFactory
from tests.leads.factories import ContactFactory, channel, settings_row


def names(found):
    return [customer.name for customer, _reasons in found]


@pytest.mark.django_db
class TestDuplicateCandidates:
    @pytest.mark.parametrize("typed", ["13812345678", "138 1234 5678", "+86 138-1234-5678", "0086 13812345678", "8613812345678"])
    def test_same_phone_in_any_format(self, org, typed):
        CustomerFactory(owner=org.rep_a, name="Alpha", phone="138-1234-5678")
        found = selectors.duplicate_candidates(name="Something else", phone=typed)
        assert names(found) == ["Alpha"]
        assert "same phone" in found[0][1]

    def test_a_contacts_phone_or_email_counts_too(self, org):
        customer = CustomerFactory(owner=org.rep_a, name="Beta")
        ContactFactory(customer=customer, phone="13900001111", email="li@beta.cn")
        assert names(selectors.duplicate_candidates(phone="139 0000 1111")) == ["Beta"]
        found = selectors.duplicate_candidates(email="LI@beta.cn ")
        assert names(found) == ["Beta"] and found[0][1] == ["a contact has the same email"]

    def test_same_email_ignoring_case(self, org):
        CustomerFactory(owner=org.rep_a, name="Gamma", email="sales@gamma.cn")
        assert names(selectors.duplicate_candidates(email="Sales@Gamma.CN")) == ["Gamma"]

    @pytest.mark.parametrize(
        ("existing", "typed"),
        [
            ("上海云帆信息技术有限公司", "上海云帆信息技术"),
            ("上海云帆信息技术有限公司", "上海 云帆 信息技术 股份有限公司"),
            ("北京华信软件有限责任公司", "北京华信软件有限公司"),
            ("ACME Trading Co., Ltd.", "Acme Trading Ltd"),
            ("ACME Trading Co., Ltd.", "acme trading"),
        ],
    )
    def test_same_name_without_legal_suffix_and_spacing(self, org, existing, typed):
        CustomerFactory(owner=org.rep_a, name=existing)
        found = selectors.duplicate_candidates(name=typed)
        assert names(found) == [existing]
        assert "same name" in found[0][1]

    @pytest.mark.parametrize(
        ("existing", "typed"),
        [("上海云帆信息技术有限公司", "上海云帆信息科技有限公司"), ("Hengtong Precision Machinery Co., Ltd.", "Hengtong Precision Machine Ltd")],
    )
    def test_similar_name_by_trigrams(self, org, existing, typed):
        CustomerFactory(owner=org.rep_a, name=existing)
        found = selectors.duplicate_candidates(name=typed)
        assert names(found) == [existing]
        assert "similar name" in found[0][1]

    def test_unrelated_customers_are_not_flagged(self, org):
        CustomerFactory(owner=org.rep_a, name="上海云帆信息技术有限公司", phone="13812345678", email="a@yunfan.cn")
        assert selectors.duplicate_candidates(name="成都锦程物流有限公司", phone="13900000000", email="b@jincheng.cn") == []

    def test_the_customer_itself_is_excluded_on_edit(self, org):
        customer = CustomerFactory(owner=org.rep_a, name="Delta", phone="13812345678")
        assert selectors.duplicate_candidates(name="Delta", phone="13812345678", exclude_pk=customer.pk) == []

    def test_warnings_hide_the_details_of_customers_outside_the_scope(self, org):
        CustomerFactory(owner=org.rep_b, name="Epsilon", phone="13812345678")
        CustomerFactory(owner=org.rep_a, name="Epsilon 2", phone="13812345678")
        warnings = selectors.duplicate_warnings(user=org.rep_a, phone="13812345678")
        assert {(d.customer.name, d.visible) for d in warnings} == {("Epsilon", False), ("Epsilon 2", True)}


@pytest.mark.django_db
class TestCustomerFiltered:
    def test_search_over_name_phone_email_and_contact_names(self, org):
        a = CustomerFactory(owner=org.rep_a, name="云帆科技", phone="13812345678")
        b = CustomerFactory(owner=org.rep_a, name="Boyuan", email="hello@boyuan.cn")
        c = CustomerFactory(owner=org.rep_a, name="Changfeng")
        ContactFactory(customer=c, name="王建国")
        CustomerFactory(owner=org.rep_b, name="云帆 of team B")

        def found(q):
            return set(selectors.customer_filtered(user=org.rep_a, filters=CustomerFilters(q=q)))

        assert found("云帆") == {a}
        assert found("138 1234 5678") == {a} and found("12345678") == {a}
        assert found("HELLO@boyuan") == {b}
        assert found("建国") == {c}
        assert found("云帆 科技") == {a}

    def test_filters(self, org):
        now = timezone.now()
        settings_row(freshness_days=30)
        web = channel("website")
        overdue = CustomerFactory(owner=org.rep_a, tier="A", next_follow_up_at=now - timedelta(days=1),
                                  profile_reviewed_at=now, source=web)
        stale = CustomerFactory(owner=org.rep_a, tier="B", next_follow_up_at=now + timedelta(days=3),
                                profile_reviewed_at=now - timedelta(days=31))
        pool = CustomerFactory(owner=None, team=org.team_a, tier="C", profile_reviewed_at=now)
        pool.tags.add(Tag.objects.create(name="展会"))

        def found(**kwargs):
            return set(selectors.customer_filtered(user=org.rep_a, filters=CustomerFilters(**kwargs)))

        assert found(overdue=True) == {overdue}
        assert found(needs_update=True) == {stale}
        assert found(tier=["A", "B"]) == {overdue, stale}
        assert found(owner="pool") == {pool}
        assert found(owner="me") == {overdue, stale}
        assert found(tag=["展会"]) == {pool}
        assert found(source=[web.pk]) == {overdue}
        listed = list(selectors.customer_filtered(user=org.rep_a, filters=CustomerFilters(sort="follow_up")))
        assert listed == [overdue, stale, pool]
        flags = {c.pk: (c.is_overdue, c.needs_update) for c in listed}
        assert flags == {overdue.pk: (True, False), stale.pk: (False, True), pool.pk: (False, False)}


@pytest.mark.django_db
class TestOwnTimeline:
    def test_creation_edits_ownership_and_tier_changes(self, org):
        customer = services.customer_create(by=org.rep_a, owner=None, team=org.team_a, name="Zeta")
        services.customer_claim(customer_id=customer.pk, by=org.rep_a)
        services.customer_update(customer=customer, by=org.rep_a, data={"region": "华东", "phone": "13800001111"})
        services.tier_override(customer=customer, tier="A", reason="战略客户", by=org.manager_a)
        entries = selectors.customer_own_timeline(customer=Customer.objects.get(pk=customer.pk), user=org.rep_a)
        kinds = [e.kind for e in entries]
        assert kinds.count("created") == 1 and kinds.count("ownership") == 1
        edits = [set(e.details) for e in entries if e.kind == "edit"]
        verbose = {str(Customer._meta.get_field(f).verbose_name) for f in ("region", "phone")}
        assert verbose in edits
        assert any("战略客户" in e.title for e in entries)
