"""Customer pages: the scope rule on list, search, detail and export; forms with duplicate warnings and
the conflict check; pool, bulk actions, tiers and merge through the pages; constant query counts."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Customer, OwnershipKind, Tag
from leads.timeline import TimelineEntry, register_provider
from tests.factories import CustomerFactory
from tests.leads.factories import ContactFactory, channel, settings_row


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def populate(org, n: int):
    """n customers of rep_a, each with a contact and a tag (what a list page must not query per row)."""
    tag, _created = Tag.objects.get_or_create(name="VIP")
    web = channel("website")
    for i in range(n):
        customer = CustomerFactory(owner=org.rep_a, name=f"Bulk {i}", source=web,
                                   next_follow_up_at=timezone.now() - timedelta(days=1))
        customer.tags.add(tag)
        ContactFactory(customer=customer)


@pytest.mark.django_db
class TestCustomerList:
    def test_a_rep_sees_their_own_and_their_team_pool(self, org, client_for):
        mine = CustomerFactory(owner=org.rep_a, name="Mine Co")
        pool = CustomerFactory(owner=None, team=org.team_a, name="Pool Co")
        CustomerFactory(owner=org.rep_a2, name="Teammate Co")
        CustomerFactory(owner=None, team=org.team_b, name="Other Pool Co")
        body = client_for(org.rep_a).get(reverse("leads:customer_list")).content.decode()
        assert mine.name in body and pool.name in body
        assert "Teammate Co" not in body and "Other Pool Co" not in body

    def test_search_respects_the_scope(self, org, client_for):
        """Searching for another team's customer by its phone finds nothing."""
        CustomerFactory(owner=org.rep_b, name="Hidden Co", phone="13812345678")
        CustomerFactory(owner=org.rep_a, name="Visible Co", phone="13812345679")
        client = client_for(org.rep_a)
        body = client.get(reverse("leads:customer_list"), {"q": "138 1234 5678"}).content.decode()
        assert "Hidden Co" not in body
        body = client.get(reverse("leads:customer_list"), {"q": "1381234567"}).content.decode()
        assert "Visible Co" in body and "Hidden Co" not in body

    def test_htmx_search_returns_only_the_table(self, org, client_for):
        CustomerFactory(owner=org.rep_a, name="云帆科技")
        CustomerFactory(owner=org.rep_a, name="Boyuan")
        response = client_for(org.rep_a).get(
            reverse("leads:customer_list"), {"q": "云帆"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="customer-table"
        )
        body = response.content.decode()
        assert "<html" not in body and "云帆科技" in body and "Boyuan" not in body

    def test_filters_from_the_query_string(self, org, client_for):
        CustomerFactory(owner=org.rep_a, name="Overdue Co", next_follow_up_at=timezone.now() - timedelta(days=2))
        CustomerFactory(owner=org.rep_a, name="Later Co", next_follow_up_at=timezone.now() + timedelta(days=2))
        body = client_for(org.rep_a).get(reverse("leads:customer_list"), {"overdue": "on"}).content.decode()
        assert "Overdue Co" in body and "Later Co" not in body
        # what the filter form sends: every select, "All" as an empty value
        everything = {"q": "Overdue", "tier": "", "status": "", "source": "", "owner": "", "tag": "", "sort": "updated"}
        body = client_for(org.rep_a).get(reverse("leads:customer_list"), everything).content.decode()
        assert "Overdue Co" in body and "Later Co" not in body

    def test_query_count_does_not_grow_with_rows(self, org, client_for, django_assert_max_num_queries):
        client = client_for(org.manager_a)
        populate(org, 3)
        client.get(reverse("leads:customer_list"))
        with django_assert_max_num_queries(20) as few:
            client.get(reverse("leads:customer_list"), {"sort": "name"})
        populate_more = 40
        for i in range(populate_more):
            CustomerFactory(owner=org.rep_a2, name=f"More {i}").tags.add(Tag.objects.get(name="VIP"))
        with django_assert_max_num_queries(len(few.captured_queries)):
            response = client.get(reverse("leads:customer_list"), {"sort": "name"})
        assert response.context["page"].paginator.count == 43


@pytest.mark.django_db
class TestExport:
    def test_csv_has_only_visible_rows_and_neutralised_formulas(self, org, client_for):
        CustomerFactory(owner=org.rep_a, name='=HYPERLINK("http://evil","x")')
        CustomerFactory(owner=org.rep_a, name="+86 Plus Co")
        CustomerFactory(owner=org.rep_b, name="Team B Co")
        response = client_for(org.rep_a).get(reverse("leads:customer_export"), {"format": "csv"})
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = csv_rows(response)
        names = sorted(row[0] for row in rows[1:])
        assert names == ["'+86 Plus Co", "'=HYPERLINK(\"http://evil\",\"x\")"]

    def test_export_follows_the_list_filters(self, org, client_for):
        CustomerFactory(owner=org.rep_a, name="Alpha", tier="A")
        CustomerFactory(owner=org.rep_a, name="Gamma", tier="C")
        response = client_for(org.rep_a).get(reverse("leads:customer_export"), {"tier": "A", "format": "csv"})
        assert [row[0] for row in csv_rows(response)[1:]] == ["Alpha"]

    def test_xlsx(self, org, client_for):
        from openpyxl import load_workbook

        CustomerFactory(owner=org.manager_a, name="@SUM(A1)")
        response = client_for(org.manager_a).get(reverse("leads:customer_export"), {"format": "xlsx"})
        sheet = load_workbook(io.BytesIO(response.content)).active
        cell = sheet["A2"]
        assert cell.value == "@SUM(A1)" and cell.data_type == "s"

    def test_admins_can_restrict_export_to_managers(self, org, client_for):
        settings_row(export_managers_only=True)
        CustomerFactory(owner=org.rep_a)
        assert client_for(org.rep_a).get(reverse("leads:customer_export")).status_code == 403
        assert "export-csv" not in client_for(org.rep_a).get(reverse("leads:customer_list")).content.decode()
        assert client_for(org.manager_a).get(reverse("leads:customer_export")).status_code == 200


@pytest.mark.django_db
class TestCustomerDetail:
    def test_profile_contacts_tier_explanation_and_timeline(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a, name="Theta", needs="要私有化部署",
                                   tier_explanation=[{"tier": "A", "metric": "won_revenue_12m", "value": "600000",
                                                      "threshold": "500000", "met": True}])
        ContactFactory(customer=customer, name="刘洋", title="CTO")
        body = client_for(org.rep_a).get(customer.get_absolute_url()).content.decode()
        assert "刘洋" in body and "要私有化部署" in body and "600000" in body
        assert 'id="timeline"' in body

    def test_other_apps_timeline_providers_and_panels(self, org, client_for):
        """A provider registered by another app adds its entries; apps' `for_customer` panels load by HTMX."""
        customer = CustomerFactory(owner=org.rep_a)

        def provider(*, customer, user, limit):
            return [TimelineEntry(when=timezone.now(), title=f"Call with {customer.name} seen by {user.username}")]

        register_provider("test-calls", provider)
        try:
            body = client_for(org.rep_a).get(customer.get_absolute_url()).content.decode()
        finally:
            from leads import timeline

            timeline._PROVIDERS.pop("test-calls")
        assert f"Call with {customer.name} seen by rep_a" in body
        assert reverse("aftersales:for_customer", kwargs={"customer_pk": customer.pk}) in body

    def test_out_of_scope_is_404(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_b)
        assert client_for(org.rep_a).get(customer.get_absolute_url()).status_code == 404
        assert client_for(org.rep_a).get(reverse("leads:customer_edit", args=[customer.pk])).status_code == 404

    def test_query_count_is_bounded(self, org, client_for, django_assert_max_num_queries):
        customer = CustomerFactory(owner=org.rep_a)
        for _ in range(10):
            ContactFactory(customer=customer)
        # the customer's own part is about 15 queries; timeline providers of other apps add theirs
        with django_assert_max_num_queries(40):
            client_for(org.rep_a).get(customer.get_absolute_url())


@pytest.mark.django_db
class TestCreateAndEdit:
    def _data(self, **overrides):
        data = {"name": "上海云帆信息技术有限公司", "customer_type": "company", "status": "lead", "phone": "13812345678",
                "email": "", "tags_text": "VIP，重点", "assign_to": "me"}
        data.update(overrides)
        return data

    def test_create_warns_of_a_duplicate_then_saves_when_confirmed(self, org, client_for):
        CustomerFactory(owner=org.rep_a, name="上海云帆信息技术", phone="")
        client = client_for(org.rep_a)
        response = client.post(reverse("leads:customer_create"), self._data())
        assert response.status_code == 200 and "duplicate-warning" in response.content.decode()
        assert Customer.objects.count() == 1
        response = client.post(reverse("leads:customer_create"), self._data(confirm_duplicates="on"))
        created = Customer.objects.latest("pk")
        assert response.status_code == 302 and response["Location"] == created.get_absolute_url()
        assert created.owner == org.rep_a and sorted(created.tags.values_list("name", flat=True)) == ["VIP", "重点"]

    def test_create_into_the_team_pool(self, org, client_for):
        client_for(org.rep_a).post(reverse("leads:customer_create"), self._data(assign_to=f"pool:{org.team_a.pk}", phone=""))
        created = Customer.objects.get()
        assert created.owner is None and created.team == org.team_a

    def test_a_rep_cannot_pick_another_owner(self, org, client_for):
        response = client_for(org.rep_a).post(reverse("leads:customer_create"), self._data(assign_to=str(org.rep_b.pk)))
        assert response.status_code == 200 and not Customer.objects.exists()

    def test_duplicate_check_partial(self, org, client_for):
        CustomerFactory(owner=org.rep_a, name="Acme Trading Co., Ltd.")
        response = client_for(org.rep_a).get(reverse("leads:customer_duplicates"), {"name": "ACME trading ltd"})
        assert "Acme Trading Co., Ltd." in response.content.decode()

    def test_edit_conflict_is_shown_instead_of_overwriting(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a, name="Iota", region="华东")
        client = client_for(org.rep_a)
        form_data = self._data(name="Iota", phone="", region="西南", version=1)
        form_data.pop("assign_to")
        # someone else saves first
        client_for(org.manager_a).post(reverse("leads:customer_edit", args=[customer.pk]),
                                       {**form_data, "region": "华南"})
        client = client_for(org.rep_a)
        response = client.post(reverse("leads:customer_edit", args=[customer.pk]), form_data)
        body = response.content.decode()
        assert response.status_code == 200 and "edit-conflict" in body and "华南" in body
        customer.refresh_from_db()
        assert customer.region == "华南" and customer.version == 2
        # the form now carries the current version: saving again keeps the rep's version knowingly
        assert response.context["form"]["version"].value() == 2
        response = client.post(reverse("leads:customer_edit", args=[customer.pk]), {**form_data, "version": 2})
        assert response.status_code == 302
        customer.refresh_from_db()
        assert customer.region == "西南" and customer.version == 3


@pytest.mark.django_db
class TestPoolAndOwnership:
    def test_pool_page_lists_the_team_pool_and_claims(self, org, client_for):
        lead = CustomerFactory(owner=None, team=org.team_a, name="Pool Lead")
        CustomerFactory(owner=None, team=org.team_b, name="B Lead")
        client = client_for(org.rep_a)
        body = client.get(reverse("leads:pool")).content.decode()
        assert "Pool Lead" in body and "B Lead" not in body
        response = client.post(reverse("leads:customer_claim", args=[lead.pk]))
        assert response.status_code == 302
        lead.refresh_from_db()
        assert lead.owner == org.rep_a

    def test_claim_of_an_already_claimed_lead_explains(self, org, client_for):
        lead = CustomerFactory(owner=None, team=org.team_a)
        client_for(org.rep_a2).post(reverse("leads:customer_claim", args=[lead.pk]))
        response = client_for(org.rep_a).post(reverse("leads:customer_claim", args=[lead.pk]), follow=True)
        assert response.status_code == 404  # no longer in rep_a's scope: owned by a teammate

    def test_manager_assigns_from_the_detail_page(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        client_for(org.manager_a).post(reverse("leads:customer_assign", args=[customer.pk]), {"to": org.rep_a2.pk})
        customer.refresh_from_db()
        assert customer.owner == org.rep_a2
        assert customer.ownership_changes.filter(kind=OwnershipKind.ASSIGNED).exists()

    def test_reps_cannot_assign(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        response = client_for(org.rep_a).post(reverse("leads:customer_assign", args=[customer.pk]), {"to": org.rep_a2.pk})
        assert response.status_code == 403

    def test_bulk_tag_and_assign(self, org, client_for):
        mine = CustomerFactory(owner=org.rep_a)
        other = CustomerFactory(owner=org.rep_b)
        client_for(org.rep_a).post(reverse("leads:customer_bulk"), {"action": "tag", "tag": "展会", "ids": [mine.pk, other.pk]})
        assert list(Tag.objects.get(name="展会").customers.all()) == [mine]
        client_for(org.manager_a).post(reverse("leads:customer_bulk"), {"action": "assign", "to": org.rep_a2.pk, "ids": [mine.pk, other.pk]})
        mine.refresh_from_db(), other.refresh_from_db()
        assert mine.owner == org.rep_a2 and other.owner == org.rep_b

    def test_tier_override_and_reset(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        client = client_for(org.rep_a)
        client.post(reverse("leads:tier_override", args=[customer.pk]), {"tier": "A", "reason": "集团客户"})
        customer.refresh_from_db()
        assert customer.tier == "A" and customer.tier_reason == "集团客户"
        assert "集团客户" in client.get(customer.get_absolute_url()).content.decode()
        client.post(reverse("leads:tier_reset", args=[customer.pk]))
        customer.refresh_from_db()
        assert customer.tier_source == "rules"


@pytest.mark.django_db
class TestMergeView:
    def test_a_manager_merges_through_the_page(self, org, client_for):
        keep = CustomerFactory(owner=org.rep_a, name="Kappa")
        gone = CustomerFactory(owner=org.rep_a2, name="Kappa Ltd")
        ContactFactory(customer=gone, name="周强")
        client = client_for(org.manager_a)
        page = client.get(reverse("leads:customer_merge", args=[keep.pk]))
        assert "Kappa Ltd" in page.content.decode()  # offered as a likely duplicate
        response = client.post(reverse("leads:customer_merge", args=[keep.pk]), {"other": gone.pk, "keep": "this"})
        assert response.status_code == 302
        assert not Customer.objects.filter(pk=gone.pk).exists()
        assert keep.contacts.get().name == "周强"

    def test_reps_cannot_open_it(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        assert client_for(org.rep_a).get(reverse("leads:customer_merge", args=[customer.pk])).status_code == 403

    def test_the_other_customer_must_be_in_scope(self, org, client_for):
        keep = CustomerFactory(owner=org.rep_a)
        foreign = CustomerFactory(owner=org.rep_b)
        response = client_for(org.manager_a).post(reverse("leads:customer_merge", args=[keep.pk]),
                                                   {"other": foreign.pk, "keep": "this"})
        assert response.status_code == 404
        assert Customer.objects.filter(pk=foreign.pk).exists()


@pytest.mark.django_db
def test_navigation_shows_the_lead_pool(org, client_for):
    body = client_for(org.rep_a).get(reverse("leads:customer_list")).content.decode()
    assert reverse("leads:pool") in body
