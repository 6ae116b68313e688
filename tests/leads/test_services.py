"""The customers app's services: create/edit with the conflict check, the lead pool (claims, assignment,
release, automatic return), tiers, cadence and merge."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from leads import services, tiering
from leads.models import (
    Customer,
    CustomerMerge,
    CustomerStatus,
    OwnershipChange,
    OwnershipKind,
    Tag,
    TierRule,
    TierSource,
)
from tests.factories import CustomerFactory
from tests.leads.factories import ContactFactory, cadence, rule, settings_row


@pytest.fixture
def revenue(db):
    """A tier metric standing in for the opportunities app's won revenue: {customer id: value}."""
    TierRule.objects.all().delete()  # the migration's seeded rules: each test states its own
    values: dict[int, Decimal] = {}
    calls: list[list[int]] = []

    def won(ids):
        calls.append(list(ids))
        return {pk: values[pk] for pk in ids if pk in values}

    previous = tiering.registered_metrics().get("won_revenue_12m")
    tiering.register_metric("won_revenue_12m", "Won revenue", won)
    yield values, calls
    tiering.unregister_metric("won_revenue_12m")
    if previous is not None:  # the opportunities app's real metric
        tiering.register_metric(previous.key, previous.label, previous.func, unit=previous.unit)


@pytest.mark.django_db
class TestCustomerTouch:
    def test_next_follow_up_uses_the_admin_cadence_of_the_tier(self, org):
        """The admin changed tier B's cadence to 10 days: a logged call sets the next follow-up 10 days on."""
        cadence("B", 10)
        customer = CustomerFactory(owner=org.rep_a, tier="B")
        when = timezone.now()
        services.customer_touch(customer=customer, contacted_at=when)
        customer.refresh_from_db()
        assert customer.last_contacted_at == when
        assert customer.next_follow_up_at == when + timedelta(days=10)

    def test_default_cadence_without_rows(self, org):
        customer = CustomerFactory(owner=org.rep_a, tier="A")
        when = timezone.now()
        services.customer_touch(customer=customer, contacted_at=when)
        customer.refresh_from_db()
        assert customer.next_follow_up_at == when + timedelta(days=7)

    def test_an_older_contact_does_not_move_dates_back(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        now = timezone.now()
        services.customer_touch(customer=customer, contacted_at=now)
        services.customer_touch(customer=customer, contacted_at=now - timedelta(days=3))
        customer.refresh_from_db()
        assert customer.last_contacted_at == now


@pytest.mark.django_db
class TestCustomerCreate:
    def test_owned_by_the_given_user_with_history_and_normalised_fields(self, org):
        customer = services.customer_create(
            by=org.rep_a, owner=org.rep_a, name=" 上海云帆信息技术有限公司 ", phone="138 1234 5678",
            email="Info@YunFan.cn", tags=["VIP", "重点客户", "VIP"],
            contacts=[{"name": "王伟", "phone": "13900000000"}],
        )
        assert customer.owner == org.rep_a and customer.team == org.team_a
        assert customer.phone == "+8613812345678" and customer.email == "info@yunfan.cn"
        assert sorted(customer.tags.values_list("name", flat=True)) == ["VIP", "重点客户"]
        assert customer.history.count() == 1 and customer.history.first().history_user == org.rep_a
        assert "王伟" in customer.search_text and "13900000000" in customer.search_text
        assert customer.profile_reviewed_at is not None
        assert OwnershipChange.objects.filter(customer=customer, kind=OwnershipKind.CREATED).exists()

    def test_into_a_team_pool(self, org):
        customer = services.customer_create(by=org.rep_a, owner=None, team=org.team_a, name="Pool Co")
        assert customer.owner is None and customer.team == org.team_a
        assert customer in Customer.objects.visible_to(org.rep_a2)

    def test_a_rep_cannot_give_a_customer_to_someone_else(self, org):
        with pytest.raises(ValidationError):
            services.customer_create(by=org.rep_a, owner=org.rep_a2, name="X")

    def test_a_rep_cannot_fill_another_teams_pool(self, org):
        with pytest.raises(ValidationError):
            services.customer_create(by=org.rep_a, owner=None, team=org.team_b, name="X")

    def test_tier_is_computed_from_the_rules(self, org, revenue):
        rule("A", "won_revenue_12m", 100)
        customer = services.customer_create(by=org.rep_a, owner=org.rep_a, name="Big")
        assert customer.tier == "C"
        assert customer.tier_explanation and customer.tier_explanation[0]["met"] is False


@pytest.mark.django_db
class TestCustomerUpdate:
    def test_saving_an_old_version_shows_the_conflict_instead_of_overwriting(self, org):
        """Two people open the form at version 1; the second save finds version 2 and is refused,
        with the field that changed under it."""
        customer = CustomerFactory(owner=org.rep_a, name="Old name", region="华东")
        services.customer_update(customer=customer, by=org.manager_a, data={"region": "华南"}, expected_version=1)
        with pytest.raises(services.EditConflict) as caught:
            services.customer_update(customer=customer, by=org.rep_a, data={"region": "西南", "name": "Old name"},
                                     expected_version=1)
        assert caught.value.changes == {"region": ("华南", "西南")}
        customer.refresh_from_db()
        assert customer.region == "华南" and customer.version == 2

    def test_a_save_at_the_current_version_bumps_it_and_records_who(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        updated = services.customer_update(customer=customer, by=org.rep_a, data={"needs": "更快的交付", "tags": ["VIP"]},
                                           expected_version=1)
        assert updated.version == 2 and updated.needs == "更快的交付"
        assert list(updated.tags.values_list("name", flat=True)) == ["VIP"]
        last = updated.history.first()
        assert last.history_user == org.rep_a and last.needs == "更快的交付"

    def test_editing_marks_the_profile_reviewed(self, org):
        customer = CustomerFactory(owner=org.rep_a, profile_reviewed_at=timezone.now() - timedelta(days=400))
        updated = services.customer_update(customer=customer, by=org.rep_a, data={"region": "华北"})
        assert updated.profile_reviewed_at > timezone.now() - timedelta(minutes=1)

    def test_contacts_feed_the_search_text(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        contact = services.contact_save(customer=customer, by=org.rep_a, name="李娜", phone="13711112222")
        customer.refresh_from_db()
        assert "李娜" in customer.search_text and "13711112222" in customer.search_text
        services.contact_delete(contact=contact, by=org.rep_a)
        customer.refresh_from_db()
        assert "李娜" not in customer.search_text


@pytest.mark.django_db
class TestClaim:
    def test_a_rep_claims_a_lead_of_their_teams_pool(self, org):
        lead = CustomerFactory(owner=None, team=org.team_a)
        claimed = services.customer_claim(customer_id=lead.pk, by=org.rep_a)
        assert claimed.owner == org.rep_a and claimed.assigned_at is not None
        change = OwnershipChange.objects.get(customer=lead, kind=OwnershipKind.CLAIMED)
        assert change.to_owner == org.rep_a and change.by == org.rep_a
        assert claimed.history.first().history_change_reason

    def test_another_teams_lead_cannot_be_claimed(self, org):
        lead = CustomerFactory(owner=None, team=org.team_b)
        with pytest.raises(services.ClaimLost):
            services.customer_claim(customer_id=lead.pk, by=org.rep_a)

    def test_an_owned_customer_cannot_be_claimed(self, org):
        lead = CustomerFactory(owner=org.rep_a2)
        with pytest.raises(services.ClaimLost):
            services.customer_claim(customer_id=lead.pk, by=org.rep_a)
        lead.refresh_from_db()
        assert lead.owner == org.rep_a2


@pytest.mark.django_db(transaction=True)
class TestClaimRace:
    def test_two_simultaneous_claims_exactly_one_wins(self, org):
        """Two reps press "claim" at the same moment, on real PostgreSQL connections: one owns the
        lead, the other is told it was taken; one claim is recorded."""
        for attempt in range(5):
            lead = CustomerFactory(owner=None, team=org.team_a, name=f"Race {attempt}")
            barrier = threading.Barrier(2)
            results: dict[str, str] = {}

            def claim(user, lead_pk=lead.pk, barrier=barrier, results=results):
                try:
                    barrier.wait(timeout=10)
                    services.customer_claim(customer_id=lead_pk, by=user)
                    results[user.username] = "won"
                except services.ClaimLost:
                    results[user.username] = "lost"
                finally:
                    connection.close()

            threads = [threading.Thread(target=claim, args=(u,)) for u in (org.rep_a, org.rep_a2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert sorted(results.values()) == ["lost", "won"], results
            winner = next(name for name, result in results.items() if result == "won")
            lead.refresh_from_db()
            assert lead.owner.username == winner
            assert OwnershipChange.objects.filter(customer=lead, kind=OwnershipKind.CLAIMED).count() == 1


@pytest.mark.django_db
class TestAssign:
    def test_a_manager_assigns_and_reassigns_within_the_team(self, org):
        lead = CustomerFactory(owner=None, team=org.team_a)
        services.customer_assign(customer=lead, to=org.rep_a, by=org.manager_a)
        services.customer_assign(customer=lead, to=org.rep_a2, by=org.manager_a, reason="workload")
        lead.refresh_from_db()
        assert lead.owner == org.rep_a2
        kinds = list(OwnershipChange.objects.filter(customer=lead).order_by("at", "id").values_list("kind", "reason"))
        assert kinds == [("assigned", ""), ("assigned", "workload")]

    def test_not_to_someone_of_another_team(self, org):
        lead = CustomerFactory(owner=org.rep_a)
        with pytest.raises(ValidationError):
            services.customer_assign(customer=lead, to=org.rep_b, by=org.manager_a)

    def test_reps_cannot_assign(self, org):
        lead = CustomerFactory(owner=org.rep_a)
        with pytest.raises(PermissionDenied):
            services.customer_assign(customer=lead, to=org.rep_a2, by=org.rep_a)

    def test_bulk_assign_only_touches_customers_in_scope(self, org):
        mine = CustomerFactory(owner=org.rep_a)
        pool = CustomerFactory(owner=None, team=org.team_a)
        foreign = CustomerFactory(owner=org.rep_b)
        count = services.customer_bulk_assign(customer_ids=[mine.pk, pool.pk, foreign.pk], to=org.rep_a2, by=org.manager_a)
        assert count == 2
        foreign.refresh_from_db()
        assert foreign.owner == org.rep_b
        assert set(Customer.objects.filter(owner=org.rep_a2).values_list("pk", flat=True)) == {mine.pk, pool.pk}

    def test_bulk_tag_only_in_scope(self, org):
        mine = CustomerFactory(owner=org.rep_a)
        foreign = CustomerFactory(owner=org.rep_b)
        assert services.customer_bulk_tag(customer_ids=[mine.pk, foreign.pk], tag_name="展会", by=org.rep_a) == 1
        assert services.customer_bulk_tag(customer_ids=[mine.pk], tag_name="展会", by=org.rep_a) == 0
        assert list(Tag.objects.get(name="展会").customers.all()) == [mine]


@pytest.mark.django_db
class TestRelease:
    def test_the_owner_puts_a_customer_back_into_the_team_pool(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        services.customer_release(customer=customer, by=org.rep_a, reason="not my region")
        customer.refresh_from_db()
        assert customer.owner is None and customer.team == org.team_a
        assert customer in Customer.objects.visible_to(org.rep_a2)

    def test_another_rep_cannot_release_it(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        with pytest.raises(PermissionDenied):
            services.customer_release(customer=customer, by=org.rep_a2)


@pytest.mark.django_db
class TestPoolReturn:
    def _lead(self, org, *, contacted_days_ago, status=CustomerStatus.LEAD):
        lead = CustomerFactory(owner=org.rep_a, status=status)
        when = timezone.now() - timedelta(days=contacted_days_ago)
        Customer.objects.filter(pk=lead.pk).update(last_contacted_at=when, assigned_at=when)
        return lead

    def test_a_lead_without_contact_for_n_days_returns_to_the_pool_with_history(self, org):
        settings_row(pool_return_days=30)
        stale = self._lead(org, contacted_days_ago=31)
        fresh = self._lead(org, contacted_days_ago=5)
        won = self._lead(org, contacted_days_ago=90, status=CustomerStatus.CUSTOMER)
        assert services.pool_return_scan() == 1
        stale.refresh_from_db(), fresh.refresh_from_db(), won.refresh_from_db()
        assert stale.owner is None and stale.team == org.team_a
        assert fresh.owner == org.rep_a and won.owner == org.rep_a
        change = OwnershipChange.objects.get(customer=stale, kind=OwnershipKind.RETURNED)
        assert change.from_owner == org.rep_a and "30" in change.reason
        assert stale.history.first().history_change_reason == change.reason
        assert services.pool_return_scan() == 0  # nothing twice

    def test_a_lead_never_contacted_counts_from_its_assignment(self, org):
        settings_row(pool_return_days=10)
        lead = CustomerFactory(owner=org.rep_a)
        Customer.objects.filter(pk=lead.pk).update(assigned_at=timezone.now() - timedelta(days=11))
        assert services.pool_return_scan() == 1

    def test_switched_off_in_the_settings(self, org):
        settings_row(pool_return_days=1, pool_return_enabled=False)
        self._lead(org, contacted_days_ago=50)
        assert services.pool_return_scan() == 0

    def test_the_beat_task_runs_the_scan(self, org):
        from leads.tasks import pool_return_scan

        settings_row(pool_return_days=30)
        self._lead(org, contacted_days_ago=45)
        assert pool_return_scan.apply().get() == 1


@pytest.mark.django_db
class TestTiers:
    def test_best_tier_whose_rule_is_met_with_explanation(self, org, revenue):
        values, _calls = revenue
        rule("A", "won_revenue_12m", 500000)
        rule("B", "won_revenue_12m", 100000)
        a, b, c = (CustomerFactory(owner=org.rep_a) for _ in range(3))
        values.update({a.pk: Decimal(600000), b.pk: Decimal(150000), c.pk: Decimal(10)})
        result = services.tier_evaluate([a.pk, b.pk, c.pk])
        assert [result[x.pk][0] for x in (a, b, c)] == ["A", "B", "C"]
        assert result[a.pk][1] == [{"tier": "A", "metric": "won_revenue_12m", "value": "600000", "threshold": "500000", "met": True}]
        assert [e["met"] for e in result[b.pk][1]] == [False, True]
        lines = tiering.describe(result[b.pk][1])
        assert "150000" in lines[1] and "100000" in lines[1]

    def test_an_unregistered_metric_counts_as_zero(self, org, revenue):
        rule("B", "activities_90d", 1)
        customer = CustomerFactory(owner=org.rep_a)
        assert services.tier_evaluate([customer.pk])[customer.pk][0] == "C"

    def test_nightly_recompute_changes_tiers_with_history_and_keeps_overrides(self, org, revenue):
        values, calls = revenue
        rule("A", "won_revenue_12m", 1000)
        up = CustomerFactory(owner=org.rep_a, tier="C")
        same = CustomerFactory(owner=org.rep_a, tier="C")
        held = CustomerFactory(owner=org.rep_a, tier="C")
        services.tier_override(customer=held, tier="B", reason="strategic partner", by=org.manager_a)
        values.update({up.pk: Decimal(5000), held.pk: Decimal(5000)})
        before = {c.pk: c.history.count() for c in (up, same, held)}
        result = services.tier_recompute_all(chunk=2)
        assert result == {"customers": 3, "changed": 1}
        assert len(calls) == 2  # one metric call per chunk, not per customer
        up.refresh_from_db(), same.refresh_from_db(), held.refresh_from_db()
        assert (up.tier, same.tier, held.tier) == ("A", "C", "B")
        assert up.history.count() == before[up.pk] + 1
        assert up.history.first().history_change_reason
        assert same.history.count() == before[same.pk] and held.history.count() == before[held.pk]
        assert held.tier_explanation[0]["met"] is True  # what the rules would say, shown beside the override

    def test_override_needs_a_reason_and_is_recorded(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        with pytest.raises(ValidationError):
            services.tier_override(customer=customer, tier="A", reason=" ", by=org.rep_a)
        services.tier_override(customer=customer, tier="A", reason="集团重点客户", by=org.rep_a)
        customer.refresh_from_db()
        assert (customer.tier, customer.tier_source, customer.tier_reason) == ("A", TierSource.MANUAL, "集团重点客户")
        record = customer.history.first()
        assert "集团重点客户" in record.history_change_reason and record.history_user == org.rep_a

    def test_clearing_the_override_follows_the_rules_again(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        services.tier_override(customer=customer, tier="A", reason="x", by=org.rep_a)
        services.tier_override_clear(customer=customer, by=org.rep_a)
        customer.refresh_from_db()
        assert (customer.tier, customer.tier_source) == ("C", TierSource.RULES)

    def test_the_nightly_task(self, org, revenue):
        from leads.tasks import tier_recompute_all

        CustomerFactory(owner=org.rep_a, tier="A")
        assert tier_recompute_all.apply().get() == {"customers": 1, "changed": 1}


@pytest.mark.django_db
class TestMerge:
    def test_every_related_row_moves_to_the_survivor(self, org):
        """Contacts, ownership log and rows of other apps (tickets, the service portal) move; the
        survivor's empty fields are filled; tags are united; the merge is recorded; nothing points at
        the removed customer any more."""
        from aftersales.services import portal_get_or_create
        from tests.aftersales.factories import make_ticket

        keep = CustomerFactory(owner=org.rep_a, name="华为技术有限公司", phone="", email="")
        gone = CustomerFactory(owner=org.rep_a2, name="华为技术", phone="13812345678", email="hw@example.cn",
                               region="华南", external_id="ERP-9")
        keep_contact = ContactFactory(customer=keep, name="张伟")
        gone_contacts = [ContactFactory(customer=gone, name="李娜"), ContactFactory(customer=gone, name="王芳")]
        keep.tags.add(Tag.objects.create(name="VIP"))
        gone.tags.add(Tag.objects.create(name="展会"), Tag.objects.get(name="VIP"))
        ticket = make_ticket(customer=gone, owner=org.rep_a2)
        portal = portal_get_or_create(customer=gone)
        OwnershipChange.objects.create(customer=gone, kind=OwnershipKind.ASSIGNED, to_owner=org.rep_a2)
        gone_pk = gone.pk

        record = services.customer_merge(survivor=keep, merged=gone, by=org.manager_a)

        assert not Customer.objects.filter(pk=gone_pk).exists()
        keep.refresh_from_db()
        assert set(keep.contacts.values_list("pk", flat=True)) == {keep_contact.pk, *(c.pk for c in gone_contacts)}
        ticket.refresh_from_db()
        portal.refresh_from_db()
        assert ticket.customer_id == keep.pk and portal.customer_id == keep.pk
        assert OwnershipChange.objects.filter(customer=keep, kind=OwnershipKind.ASSIGNED, to_owner=org.rep_a2).exists()
        assert (keep.phone, keep.email, keep.region, keep.external_id) == ("+8613812345678", "hw@example.cn", "华南", "ERP-9")
        assert sorted(keep.tags.values_list("name", flat=True)) == ["VIP", "展会"]
        assert keep.owner == org.rep_a  # the survivor's own values win
        for rel in Customer._meta.related_objects:
            if rel.related_model is CustomerMerge:
                continue
            if rel.many_to_many:
                left = rel.through._base_manager.filter(**{rel.field.m2m_reverse_field_name(): gone_pk})
            else:
                left = rel.related_model._base_manager.filter(**{rel.field.attname: gone_pk})
            assert not left.exists(), rel
        assert record.merged_id == gone_pk and record.merged_name == "华为技术" and record.merged_by == org.manager_a
        assert record.snapshot["customer"]["fields"]["phone"] == "+8613812345678"
        assert sorted(record.moved["leads.Contact"]) == sorted(c.pk for c in gone_contacts)
        assert keep.history.first().history_change_reason.startswith("merged")

    def test_a_one_to_one_the_survivor_already_has_is_kept_in_the_snapshot(self, org):
        from aftersales.models import CustomerPortal
        from aftersales.services import portal_get_or_create

        keep, gone = CustomerFactory(owner=org.rep_a), CustomerFactory(owner=org.rep_a)
        kept_portal = portal_get_or_create(customer=keep)
        gone_portal = portal_get_or_create(customer=gone)
        record = services.customer_merge(survivor=keep, merged=gone, by=org.manager_a)
        assert list(CustomerPortal.objects.values_list("pk", flat=True)) == [kept_portal.pk]
        assert [c["pk"] for c in record.snapshot["conflicts"]] == [gone_portal.pk]

    def test_reps_cannot_merge(self, org):
        a, b = CustomerFactory(owner=org.rep_a), CustomerFactory(owner=org.rep_a)
        with pytest.raises(PermissionDenied):
            services.customer_merge(survivor=a, merged=b, by=org.rep_a)

    def test_both_customers_must_be_in_scope(self, org):
        a, b = CustomerFactory(owner=org.rep_a), CustomerFactory(owner=org.rep_b)
        with pytest.raises(PermissionDenied):
            services.customer_merge(survivor=a, merged=b, by=org.manager_a)
        assert Customer.objects.filter(pk=b.pk).exists()

    def test_not_with_itself(self, org):
        a = CustomerFactory(owner=org.rep_a)
        with pytest.raises(ValidationError):
            services.customer_merge(survivor=a, merged=a, by=org.manager_a)


@pytest.mark.django_db
def test_contacts_have_history(org):
    contact = ContactFactory(customer=CustomerFactory(owner=org.rep_a), title="CTO")
    contact.title = "CEO"
    contact.save()
    assert list(contact.history.values_list("title", flat=True)) == ["CEO", "CTO"]
