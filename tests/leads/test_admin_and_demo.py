"""Admin pages of the customers app, the beat schedule and the demo data."""

import pytest
from django.urls import reverse

from crm.periodic import declared_periodic_tasks
from leads import demo
from leads.models import Contact, Customer, FollowUpCadence, LeadSettings, SourceChannel, TierRule
from tests.factories import CustomerFactory


@pytest.mark.django_db
class TestAdmin:
    @pytest.mark.parametrize(
        "name",
        ["customer", "contact", "sourcechannel", "tag", "tierrule", "followupcadence", "leadsettings",
         "ownershipchange", "customermerge", "customerimport"],
    )
    def test_changelists_load(self, org, client_for, name):
        CustomerFactory(owner=org.rep_a)
        response = client_for(org.admin).get(reverse(f"admin:leads_{name}_changelist"))
        assert response.status_code == 200

    def test_tier_rule_form_offers_the_metrics(self, org, client_for):
        body = client_for(org.admin).get(reverse("admin:leads_tierrule_add")).content.decode()
        assert "won_revenue_12m" in body and "contacted_90d" in body

    def test_customer_history_page(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        response = client_for(org.admin).get(reverse("admin:leads_customer_history", args=[customer.pk]))
        assert response.status_code == 200


def test_beat_schedule_declares_the_nightly_tiers_and_pool_return():
    tasks = {entry["task"] for entry in declared_periodic_tasks()}
    assert {"leads.tier_recompute_all", "leads.pool_return_scan"} <= tasks


@pytest.mark.django_db
def test_the_migration_seeds_channels_cadence_and_rules():
    """The data migration seeds the admin-editable lists, and running it twice adds nothing."""
    import importlib

    from django.apps import apps

    seed = importlib.import_module("leads.migrations.0003_seed_rules_and_channels").seed
    seed(apps, None)
    seed(apps, None)
    assert SourceChannel.objects.count() == 7
    assert set(SourceChannel.objects.values_list("code", flat=True)) >= {
        "website", "social", "event", "referral", "cold_call", "advertising", "other"}
    assert TierRule.objects.filter(tier="A").exists()
    assert dict(FollowUpCadence.objects.values_list("tier", "days")) == {"A": 7, "B": 14, "C": 30}
    assert LeadSettings.load().pool_return_days == 30


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_bilingual(org):
    from accounts.demo import seed as seed_users

    seed_users(seed=1)
    first = demo.seed(seed=2026)
    count, contacts = Customer.objects.count(), Contact.objects.count()
    assert count >= 200 and contacts >= 200, first
    demo.seed(seed=2026)
    assert (Customer.objects.count(), Contact.objects.count()) == (count, contacts)
    names = list(Customer.objects.values_list("name", flat=True))
    assert any(n.endswith("有限公司") for n in names) and any("Co., Ltd." in n for n in names)
    assert Customer.objects.filter(owner__isnull=True).exists()
    sample = Customer.objects.exclude(contacts=None).first()
    assert sample.contacts.first().name.lower() in sample.search_text


@pytest.mark.django_db
class TestAdminSavesMoveTheVersion:
    """An edit in Django admin moves the record's version on, so an API client holding the old ETag gets
    a 412 instead of overwriting the administrator's change."""

    def test_contact_change_page(self, org, client_for):
        contact = Contact.objects.create(customer=CustomerFactory(owner=org.rep_a), name="Li")
        response = client_for(org.admin).post(reverse("admin:leads_contact_change", args=[contact.pk]), {
            "customer": contact.customer_id, "name": "Li Lei", "title": "", "phone": "", "email": "", "wechat": "",
            "notes": "",
        })
        assert response.status_code == 302, response.content.decode()[:2000]
        contact.refresh_from_db()
        assert (contact.name, contact.version) == ("Li Lei", 2)

    def test_customer_admin_inline_contacts(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        contact = Contact.objects.create(customer=customer, name="Li")
        page = client_for(org.admin).get(reverse("admin:leads_customer_change", args=[customer.pk]))
        form = page.context["adminform"].form
        data = {name: value for name, value in form.initial.items() if value is not None and name != "tags"}
        data.update({
            "owner": customer.owner_id, "source": "", "tags": [], "contacts-TOTAL_FORMS": "1",
            "contacts-INITIAL_FORMS": "1", "contacts-MIN_NUM_FORMS": "0", "contacts-MAX_NUM_FORMS": "1000",
            "contacts-0-id": contact.pk, "contacts-0-customer": customer.pk, "contacts-0-name": "Li Lei",
        })
        response = client_for(org.admin).post(reverse("admin:leads_customer_change", args=[customer.pk]), data)
        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
        contact.refresh_from_db()
        customer.refresh_from_db()
        assert (contact.name, contact.version, customer.version) == ("Li Lei", 2, 2)
