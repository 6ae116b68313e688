"""The import services (switching.importing): files, mappings, preview, the run, scope."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from activities.models import Activity, ActivityKind
from leads.importing import ImportFileError
from leads.models import Contact, Customer, OwnershipChange, Tier, TierSource
from opportunities.models import Opportunity, Stage, StageChange, StageOwnerTotal, TransitionAction
from switching import importing
from switching.columns import COLUMNS, template_header
from switching.importing import history
from switching.models import ImportStatus, UnknownOwnerPolicy
from switching.tasks import import_run as import_run_task
from tests.factories import CustomerFactory
from tests.opportunities.factories import make_opportunity

from .import_helpers import csv_bytes, defaults, run_file, upload

TZ = ZoneInfo("Asia/Shanghai")

CUSTOMERS = [
    ["External ID", "Name", "Owner", "Phone", "Email", "Created at", "Tags", "来源渠道"],
    ["C1", "上海甲科技有限公司", "rep_a", "138 1234 5678", "Info@Jia.cn", "2024-01-05", "重点, SaaS", "referral"],
    ["C2", "乙公司", "rep_a2", "", "", "2024-02-01", "", ""],
    ["C3", "丙公司", "", "", "", "", "", ""],
]

DEALS = [
    ["external_id", "customer_external_id", "title", "stage", "amount", "created_at", "close_date", "owner", "source"],
    ["D1", "C1", "Deal won", "closed_won", "1000.00", "2024-01-10 09:00", "2024-03-01", "rep_a", "referral"],
    ["D2", "C1", "Deal lost", "closed_lost", "500", "2024-01-20", "2024-02-10", "rep_a", "website"],
    ["D3", "C2", "Deal open", "谈判中", "300", "2024-02-15", "2024-06-30", "rep_a2", ""],
]


@pytest.fixture
def kinds(db):
    defaults()


def local(*args) -> datetime:
    return datetime(*args, tzinfo=TZ)


def import_customers(user, rows=CUSTOMERS, **mapping):
    return run_file(user, "customers", rows, **mapping)


def import_deals(user, rows=DEALS):
    negotiation = Stage.objects.get(pipeline__is_default=True, code="negotiation")
    return run_file(user, "opportunities", rows, stages={"谈判中": negotiation.pk})


class TestFiles:
    def test_gbk_csv_is_read(self, org, kinds):
        """A CSV saved by Chinese Excel (GBK) imports with its Chinese text intact."""
        data = csv_bytes([["外部编号", "客户名称", "地区"], ["G2", "广州测试有限公司", "华南 · 广州"]], encoding="gbk")
        assert data.decode("gbk") and not _is_utf8(data)
        gbk = upload(org.admin, "customers", [], data=data, name="gbk.csv")
        gbk = importing.import_set_mapping(job=gbk, by=org.admin)
        assert (gbk.new_count, gbk.error_count) == (1, 0)
        importing.import_confirm(job=gbk, by=org.admin, queue=False)
        importing.import_run(job_id=gbk.pk)
        customer = Customer.objects.get(external_id="G2")
        assert (customer.name, customer.region) == ("广州测试有限公司", "华南 · 广州")

    def test_gb18030_only_characters(self, org, kinds):
        """GB18030 text (a superset of GBK) is read too."""
        data = csv_bytes([["外部编号", "客户名称"], ["G3", "𠀀字号公司"]], encoding="gb18030")
        job = importing.import_set_mapping(job=upload(org.admin, "customers", [], data=data), by=org.admin)
        assert job.new_count == 1

    def test_unreadable_file_is_refused_and_nothing_kept(self, org, kinds):
        with pytest.raises(ImportFileError):
            upload(org.admin, "customers", [], data=b"\xff\xfe\x00\x81\x30garbage\x80\x80\xff")
        with pytest.raises(ImportFileError):
            upload(org.admin, "customers", [], data=b"", name="empty.csv")

    def test_xlsx_file(self, org, kinds):
        from openpyxl import Workbook

        workbook = Workbook()
        sheet = workbook.active
        sheet.append(["外部编号", "客户名称", "创建时间"])
        sheet.append(["X1", "表格公司", datetime(2024, 5, 6)])  # noqa: DTZ001 - a spreadsheet date
        buffer = io.BytesIO()
        workbook.save(buffer)
        job = upload(org.admin, "customers", [], data=buffer.getvalue(), name="file.xlsx")
        job = importing.import_set_mapping(job=job, by=org.admin)
        importing.import_confirm(job=job, by=org.admin, queue=False)
        importing.import_run(job_id=job.pk)
        customer = Customer.objects.get(external_id="X1")
        assert timezone.localtime(customer.created_at).date().isoformat() == "2024-05-06"


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class TestHeaders:
    @pytest.mark.parametrize("header", [
        ["External ID", "Name", "Phone"],
        ["外部编号", "客户名称", "电话"],
        ["external_id", "客户名称", "Phone"],  # mixed
        ["External ID / 外部编号 *", "Name / 客户名称 *", "Phone / 电话"],  # the template's bilingual header
    ])
    def test_either_language(self, org, kinds, header):
        job = upload(org.admin, "customers", [header, ["H1", "Header Co", "13800000000"]])
        assert importing.column_keys(job) == ["external_id", "name", "phone"]
        job = importing.import_set_mapping(job=job, by=org.admin)
        assert (job.status, job.new_count) == ("previewed", 1)

    def test_every_kind_template_header_is_recognised(self, org, kinds):
        for kind, columns in COLUMNS.items():
            job = upload(org.admin, kind, [template_header(kind)])
            assert importing.column_keys(job) == [c.key for c in columns]

    def test_unknown_header_mapped_in_the_wizard(self, org, kinds):
        """A header the importer does not know stops at the mapping step until it is mapped."""
        job = upload(org.admin, "customers", [["Legacy ID", "Company"], ["L1", "Legacy Co"]])
        assert importing.column_keys(job) == [None, None]
        assert len(importing.mapping_problems(job)) == 2
        job = importing.import_set_mapping(job=job, by=org.admin, columns={"0": "external_id"})
        assert job.status == "draft" and importing.mapping_problems(job)
        job = importing.import_set_mapping(job=job, by=org.admin, columns={"0": "external_id", "1": "name"})
        assert (job.status, job.new_count) == ("previewed", 1)

    def test_a_column_mapped_twice_is_a_problem(self, org, kinds):
        job = upload(org.admin, "customers", [["ID", "Name", "Company"], ["1", "a", "b"]])
        job = importing.import_set_mapping(job=job, by=org.admin, columns={"0": "external_id", "1": "name", "2": "name"})
        assert job.status == "draft"
        assert any("Two columns" in p for p in importing.mapping_problems(job))


class TestPreview:
    def test_counts_and_row_errors_with_line_numbers_nothing_written(self, org, kinds):
        import_customers(org.admin)
        rows = [
            ["external_id", "customer_external_id", "title", "stage", "amount", "created_at", "close_date"],
            ["D1", "C1", "ok new", "lead", "10", "2024-01-01", ""],
            ["D2", "C9", "unknown customer", "lead", "10", "2024-01-01", ""],
            ["D3", "C1", "bad amount", "lead", "ten", "2024-01-01", ""],
            ["D4", "C1", "", "lead", "10", "2024-01-01", ""],
            ["D5", "C1", "won without close", "won", "10", "2024-01-01", ""],
            ["D1", "C1", "same id again", "lead", "10", "2024-01-01", ""],
        ]
        job = importing.import_set_mapping(job=upload(org.admin, "opportunities", rows), by=org.admin)
        assert (job.total_rows, job.new_count, job.updated_count, job.error_count, job.unknown_ref_count) == (6, 1, 0, 4, 1)
        by_line = {line: (column, message) for line, column, message in job.errors}
        assert by_line[3][0] == "customer_external_id"
        assert by_line[4] == ("amount", "“ten” is not an amount.")
        assert by_line[5] == ("title", "This column is required.")
        assert by_line[6][0] == "close_date"
        assert by_line[7] == ("external_id", "The same external ID as line 2.")
        assert not Opportunity.objects.exists()

    def test_existing_external_ids_count_as_updates(self, org, kinds):
        import_customers(org.admin)
        job = importing.import_set_mapping(job=upload(org.admin, "customers", CUSTOMERS + [["C4", "丁", "", "", "", "", "", ""]]), by=org.admin)
        assert (job.new_count, job.updated_count) == (1, 3)

    def test_a_row_invalid_since_the_preview_is_skipped_and_reported(self, org, kinds):
        """The run validates again: a customer deleted between preview and run makes its row an error."""
        import_customers(org.admin)
        rows = [["external_id", "customer_external_id", "name"], ["P1", "C1", "a"], ["P2", "C2", "b"]]
        job = importing.import_set_mapping(job=upload(org.admin, "contacts", rows), by=org.admin)
        assert (job.new_count, job.errors) == (2, [])
        Customer.objects.filter(external_id="C2").delete()
        importing.import_confirm(job=job, by=org.admin, queue=False)
        importing.import_run(job_id=job.pk)
        job.refresh_from_db()
        assert (job.status, job.created_rows, job.skipped_rows) == ("done", 1, 1)
        assert [e[:2] for e in job.errors] == [[3, "customer_external_id"]]

    def test_confirm_needs_a_preview(self, org, kinds):
        job = upload(org.admin, "customers", [["Legacy"], ["x"]])
        with pytest.raises(ValidationError):
            importing.import_confirm(job=job, by=org.admin)

    def test_reps_cannot_import(self, org, kinds):
        with pytest.raises(PermissionDenied):
            upload(org.rep_a, "customers", CUSTOMERS)


class TestLikelyDuplicates:
    """Customers are never duplicated silently: a new row that looks like a customer already in the CRM
    under another external id is named in the preview (and imported only as the person confirms)."""

    def test_same_name_phone_or_email_under_another_external_id_is_listed(self, org, kinds):
        CustomerFactory(name="上海甲科技有限公司", owner=org.rep_a, external_id="OLD-1")
        CustomerFactory(name="Other", email="sales@yi.cn", owner=org.rep_a, external_id=None)
        rows = [
            ["External ID", "Name", "Email"],
            ["N1", "上海甲科技有限公司", ""],
            ["N2", "乙", "Sales@Yi.cn"],
            ["N3", "全新客户", ""],
        ]
        job = importing.import_set_mapping(job=upload(org.admin, "customers", rows), by=org.admin)
        assert (job.new_count, job.duplicate_count, job.error_count) == (3, 2, 0)
        messages = {line: message for line, _column, message in job.duplicates}
        assert set(messages) == {2, 3}
        assert "上海甲科技有限公司" in messages[2] and "same name" in messages[2]
        assert "Other" in messages[3] and "same email" in messages[3]
        importing.import_confirm(job=job, by=org.admin, queue=False)
        importing.import_run(job_id=job.pk)
        assert Customer.objects.filter(external_id__in=["N1", "N2", "N3"]).count() == 3

    def test_a_re_import_of_the_same_external_id_is_an_update_not_a_duplicate(self, org, kinds):
        import_customers(org.admin)
        job = importing.import_set_mapping(job=upload(org.admin, "customers", CUSTOMERS), by=org.admin)
        assert (job.updated_count, job.duplicate_count, job.duplicates) == (3, 0, [])

    def test_a_customer_outside_the_managers_teams_is_not_named(self, org, kinds):
        CustomerFactory(name="乙方秘密客户", phone="+8613912345678", owner=org.rep_b)
        rows = [["External ID", "Name", "Phone", "Owner"], ["N1", "新名字", "139 1234 5678", "rep_a"]]
        job = importing.import_set_mapping(job=upload(org.manager_a, "customers", rows), by=org.manager_a)
        assert job.duplicate_count == 1
        [(line, _column, message)] = job.duplicates
        assert line == 2 and "another team" in message and "same phone" in message
        assert "乙方秘密客户" not in message

    def test_the_preview_page_lists_them(self, org, kinds, client):
        CustomerFactory(name="上海甲科技有限公司", owner=org.rep_a)
        rows = [["External ID", "Name"], ["N1", "上海甲科技有限公司"]]
        job = importing.import_set_mapping(job=upload(org.admin, "customers", rows), by=org.admin)
        client.force_login(org.admin)
        page = client.get(job.get_absolute_url()).content.decode()
        assert 'id="likely-duplicates"' in page and "上海甲科技有限公司" in page


class TestCustomers:
    def test_bulk_customers_get_what_the_services_maintain(self, org, kinds):
        job = import_customers(org.admin)
        assert (job.status, job.created_rows) == ("done", 3)
        c1 = Customer.objects.get(external_id="C1")
        assert c1.phone == "+8613812345678" and c1.email == "info@jia.cn"
        assert c1.name_key == "上海甲科技"
        assert "13812345678" in c1.search_text and "info@jia.cn" in c1.search_text
        assert timezone.localtime(c1.created_at) == local(2024, 1, 5)
        assert c1.owner == org.rep_a and c1.team == org.team_a and c1.assigned_at is not None
        assert sorted(c1.tags.values_list("name", flat=True)) == ["SaaS", "重点"]
        assert c1.source.code == "referral"
        assert OwnershipChange.objects.filter(customer=c1, to_owner=org.rep_a, by=org.admin).count() == 1
        assert c1.history.count() == 1 and c1.history.first().history_user == org.admin
        c3 = Customer.objects.get(external_id="C3")
        assert c3.owner is None and c3.team_id == org.admin.team_id  # the importer's pool

    def test_tier_from_the_file_is_kept_as_set_by_hand(self, org, kinds):
        import_customers(org.admin, [["external_id", "name", "tier"], ["T1", "Tiered", "A"]])
        customer = Customer.objects.get(external_id="T1")
        assert (customer.tier, customer.tier_source) == (Tier.A, TierSource.MANUAL)

    def test_contacts_attach_and_refresh_search_text(self, org, kinds):
        import_customers(org.admin)
        job = run_file(org.admin, "contacts", [
            ["External ID", "Customer external ID", "姓名", "电话", "决策人"],
            ["P1", "C1", "王经理", "139 0000 1111", "是"],
        ])
        assert job.created_rows == 1
        contact = Contact.objects.get(external_id="P1")
        assert (contact.customer.external_id, contact.phone, contact.is_decision_maker) == ("C1", "+8613900001111", True)
        assert "王经理" in contact.customer.search_text and "13900001111" in contact.customer.search_text


class TestStageMappingAndHistory:
    def test_stage_names_are_mapped(self, org, kinds):
        """closed_won → 赢单 (matched), 谈判中 needs a choice, which the person gives in the mapping step."""
        import_customers(org.admin)
        job = upload(org.admin, "opportunities", DEALS)
        stages = dict(job.unknown["stages"])
        assert stages["closed_won"] == Stage.objects.get(pipeline__is_default=True, kind="won").pk
        assert stages["谈判中"] is None
        job = importing.import_set_mapping(job=job, by=org.admin)
        assert job.status == "draft" and importing.unmapped_values(job) == {"stages": ["谈判中"]}
        import_deals(org.admin)
        deals = {o.external_id: o for o in Opportunity.objects.select_related("stage")}
        assert deals["D1"].stage.name_zh == "赢单"
        assert deals["D2"].stage.kind == "lost"
        assert deals["D3"].stage.code == "negotiation"

    def test_imported_deals_carry_their_history(self, org, kinds):
        import_customers(org.admin)
        import_deals(org.admin)
        first = Stage.objects.get(pipeline__is_default=True, code="lead")
        won = Opportunity.objects.get(external_id="D1")
        assert timezone.localtime(won.created_at) == local(2024, 1, 10, 9)
        assert timezone.localtime(won.closed_at) == local(2024, 3, 1)
        assert won.stage_entered_at == won.closed_at and won.probability == 100
        assert won.amount == Decimal("1000.00") and won.owner == org.rep_a and won.created_by == org.admin
        rows = list(won.stage_changes.order_by("changed_at").values_list(
            "from_stage_id", "to_stage__code", "changed_at", "action", "imported", "changed_by_id"))
        assert rows == [
            (None, "lead", won.created_at, TransitionAction.IMPORT, True, org.admin.pk),
            (first.pk, "won", won.closed_at, TransitionAction.IMPORT, True, org.admin.pk),
        ]
        open_deal = Opportunity.objects.get(external_id="D3")
        assert open_deal.closed_at is None and open_deal.expected_close_date.isoformat() == "2024-06-30"
        assert open_deal.probability == 75  # the stage's default
        assert open_deal.history.first().history_user == org.admin

    def test_board_rollup_follows(self, org, kinds):
        """The trigger-maintained board totals match the imported deals."""
        import_customers(org.admin)
        import_deals(org.admin)
        for row in StageOwnerTotal.objects.filter(opportunity_count__gt=0):
            deals = Opportunity.objects.filter(stage_id=row.stage_id, owner_id=row.owner_id)
            assert row.opportunity_count == deals.count()
            assert row.amount_sum == sum(d.amount for d in deals)

    def test_outcome_must_agree_with_the_stage(self, org, kinds):
        import_customers(org.admin)
        rows = [DEALS[0][:7] + ["outcome"], DEALS[1][:7] + ["lost"]]
        job = importing.import_set_mapping(job=upload(org.admin, "opportunities", rows), by=org.admin)
        assert job.error_count == 1 and job.errors[0][1] == "outcome"

    def test_a_deal_moved_in_this_crm_keeps_its_stage(self, org, kinds):
        """A re-import does not overwrite the stage of a deal that has moved here since."""
        import_customers(org.admin)
        deal = make_opportunity(org.rep_a, customer=Customer.objects.get(external_id="C1"))
        Opportunity.objects.filter(pk=deal.pk).update(external_id="D9")
        rows = [DEALS[0], ["D9", "C1", "renamed", "closed_won", "5", "2024-01-01", "2024-02-01", "rep_a", ""]]
        job = importing.import_set_mapping(job=upload(org.admin, "opportunities", rows), by=org.admin)
        assert [e[0] for e in job.errors] == [2]
        assert "moved in this CRM" in job.errors[0][2]

    def test_stage_not_reachable_from_normal_edits(self, org, kinds):
        """Assigning the stage still raises: only the import's service writes it without a transition."""
        import_customers(org.admin)
        import_deals(org.admin)
        deal = Opportunity.objects.get(external_id="D3")
        with pytest.raises(AttributeError):
            deal.stage = Stage.objects.get(pipeline__is_default=True, code="lead")
        assert history.opportunity_import_history.__module__ == "switching.importing.history"


class TestActivities:
    def test_activities_attach_with_kinds_owners_and_contact_rollup(self, org, kinds):
        import_customers(org.admin)
        import_deals(org.admin)
        job = run_file(org.admin, "activities", [
            ["External ID", "客户外部编号", "商机外部编号", "类型", "时间", "结果", "负责人"],
            ["A1", "C1", "D1", "Phone call", "2024-01-15 10:00", "积极", "rep_a"],
            ["A2", "C1", "", "拜访", "2024-01-20 15:30", "neutral", ""],
        ], kinds={"Phone call": ActivityKind.objects.get(code="call").pk})
        assert job.created_rows == 2
        a1 = Activity.objects.get(external_id="A1")
        assert (a1.kind.code, a1.outcome, a1.status, a1.owner, a1.opportunity.external_id) == (
            "call", "positive", "done", org.rep_a, "D1")
        assert timezone.localtime(a1.done_at) == local(2024, 1, 15, 10) == timezone.localtime(a1.created_at)
        a2 = Activity.objects.get(external_id="A2")
        assert a2.owner == org.rep_a  # empty owner: the customer's owner
        c1 = Customer.objects.get(external_id="C1")
        assert timezone.localtime(c1.last_contacted_at) == local(2024, 1, 20, 15, 30)
        assert c1.next_follow_up_at > c1.last_contacted_at
        assert Opportunity.objects.get(external_id="D1").last_activity_at == a1.done_at

    def test_deal_of_another_customer_is_an_error(self, org, kinds):
        import_customers(org.admin)
        import_deals(org.admin)
        job = importing.import_set_mapping(job=upload(org.admin, "activities", [
            ["external_id", "customer_external_id", "opportunity_external_id", "kind", "timestamp"],
            ["A1", "C2", "D1", "call", "2024-01-15"],
        ]), by=org.admin)
        assert job.error_count == 1 and job.errors[0][1] == "opportunity_external_id"


class TestOwners:
    ROWS = [["external_id", "name", "owner"], ["O1", "Known", "rep_a@example.com"], ["O2", "Unknown", "zhang.san"]]

    def test_owner_by_username_or_email(self, org, kinds):
        import_customers(org.admin, self.ROWS[:2])
        assert Customer.objects.get(external_id="O1").owner == org.rep_a

    def test_unknown_owners_listed_and_stop_the_import(self, org, kinds):
        job = importing.import_set_mapping(job=upload(org.admin, "customers", self.ROWS), by=org.admin)
        assert job.unknown["owners"] == ["zhang.san"]
        assert job.error_count == 1 and job.errors[0][:2] == [3, "owner"]
        assert job.unknown_owner_policy == UnknownOwnerPolicy.STOP
        with pytest.raises(ValidationError):
            importing.import_confirm(job=job, by=org.admin)
        assert not Customer.objects.exists()

    def test_unknown_owners_assigned_to_a_chosen_user(self, org, kinds):
        job = import_customers(org.admin, self.ROWS, unknown_owner_policy=UnknownOwnerPolicy.ASSIGN, default_owner=org.rep_b)
        assert job.created_rows == 2
        assert Customer.objects.get(external_id="O2").owner == org.rep_b

    def test_an_unknown_owner_mapped_to_a_user(self, org, kinds):
        import_customers(org.admin, self.ROWS, owners={"zhang.san": org.rep_a2.pk})
        assert Customer.objects.get(external_id="O2").owner == org.rep_a2


class TestScope:
    def test_manager_owners_outside_the_team_are_refused(self, org, kinds):
        rows = [["external_id", "name", "owner"], ["S1", "Mine", "rep_a"], ["S2", "Theirs", "rep_b"]]
        job = importing.import_set_mapping(job=upload(org.manager_a, "customers", rows), by=org.manager_a)
        assert job.unknown["owners_outside"] == ["rep_b"]
        assert (job.new_count, job.error_count) == (1, 1)
        assert job.errors[0][:2] == [3, "owner"] and "outside your teams" in job.errors[0][2]
        importing.import_confirm(job=job, by=org.manager_a, queue=False)
        importing.import_run(job_id=job.pk)
        assert list(Customer.objects.values_list("external_id", flat=True)) == ["S1"]

    def test_manager_cannot_assign_unknown_owners_outside_the_team(self, org, kinds):
        job = upload(org.manager_a, "customers", TestOwners.ROWS)
        with pytest.raises(ValidationError):
            importing.import_set_mapping(job=job, by=org.manager_a, unknown_owner_policy=UnknownOwnerPolicy.ASSIGN,
                                         default_owner=org.rep_b)

    def test_updates_by_external_id_must_be_in_scope(self, org, kinds):
        CustomerFactory(owner=org.rep_b, external_id="B1", name="Team B's")
        rows = [["external_id", "name"], ["B1", "Taken over"]]
        job = importing.import_set_mapping(job=upload(org.manager_a, "customers", rows), by=org.manager_a)
        assert (job.updated_count, job.error_count) == (0, 1)
        assert "outside your teams" in job.errors[0][2]
        assert Customer.objects.get(external_id="B1").name == "Team B's"

    def test_references_outside_the_scope_are_unknown(self, org, kinds):
        CustomerFactory(owner=org.rep_b, external_id="B1")
        rows = [["external_id", "customer_external_id", "title", "stage", "created_at"], ["D1", "B1", "x", "lead", "2024-01-01"]]
        job = importing.import_set_mapping(job=upload(org.manager_a, "opportunities", rows), by=org.manager_a)
        assert (job.new_count, job.unknown_ref_count) == (0, 1)

    def test_director_imports_for_the_whole_subtree(self, org, kinds):
        rows = [["external_id", "name", "owner"], ["S1", "A", "rep_a"], ["S2", "B", "rep_b"]]
        job = import_customers(org.director, rows)
        assert job.created_rows == 2


class TestReRun:
    def test_second_run_of_the_same_files_updates_instead_of_doubling(self, org, kinds):
        import_customers(org.admin)
        import_deals(org.admin)
        activities = [["external_id", "customer_external_id", "kind", "timestamp"], ["A1", "C1", "call", "2024-01-15"]]
        run_file(org.admin, "activities", activities)
        counts = (Customer.objects.count(), Opportunity.objects.count(), StageChange.objects.count(), Activity.objects.count(),
                  OwnershipChange.objects.count())
        again = import_customers(org.admin)
        assert (again.created_rows, again.updated_rows) == (0, 3)
        assert import_deals(org.admin).updated_rows == 3
        assert run_file(org.admin, "activities", activities).updated_rows == 1
        assert (Customer.objects.count(), Opportunity.objects.count(), StageChange.objects.count(), Activity.objects.count(),
                OwnershipChange.objects.count()) == counts

    def test_changed_values_are_updated(self, org, kinds):
        import_customers(org.admin)
        import_deals(org.admin)
        rows = [DEALS[0], ["D3", "C2", "Deal open", "closed_won", "350", "2024-02-15", "2024-07-01", "rep_a2", ""]]
        import_deals(org.admin, rows)
        deal = Opportunity.objects.get(external_id="D3")
        assert (deal.stage.kind, deal.amount) == ("won", Decimal("350.00"))
        assert timezone.localtime(deal.closed_at) == local(2024, 7, 1)
        assert list(deal.stage_changes.values_list("to_stage__code", flat=True).order_by("changed_at")) == ["lead", "won"]


class TestInterruptedRun:
    ROWS = [["external_id", "name"]] + [[f"R{i}", f"Company {i}"] for i in range(25)]

    def _confirmed(self, org):
        job = importing.import_set_mapping(job=upload(org.admin, "customers", self.ROWS), by=org.admin)
        return importing.import_confirm(job=job, by=org.admin, queue=False)

    def test_stopped_half_way_then_run_again(self, org, kinds):
        """A run stopped after some chunks, run again, finishes: every row once."""
        job = self._confirmed(org)
        result = importing.import_run(job_id=job.pk, max_rows=10, chunk_size=5)
        job.refresh_from_db()
        assert (result["status"], job.processed_rows, Customer.objects.count()) == ("running", 10, 10)
        importing.import_run(job_id=job.pk, chunk_size=5)
        job.refresh_from_db()
        assert (job.status, job.processed_rows, job.created_rows, job.updated_rows) == ("done", 25, 25, 0)
        assert Customer.objects.count() == 25

    def test_crash_inside_a_chunk_rolls_it_back_and_the_rerun_completes(self, org, kinds):
        """A failure in the middle of a chunk (a worker killed, the database gone) loses that chunk's
        transaction only; the job says failed, and the run started again finishes without doubles."""
        job = self._confirmed(org)
        real = importing.kinds.CustomerKind.write
        calls = {"n": 0}

        def crashing(self, ctx, rows, pre):
            calls["n"] += 1
            real(self, ctx, rows, pre)
            if calls["n"] == 3:
                raise RuntimeError("worker killed")

        with mock.patch.object(importing.kinds.CustomerKind, "write", crashing), pytest.raises(RuntimeError):
            importing.import_run(job_id=job.pk, chunk_size=5)
        job.refresh_from_db()
        assert (job.status, job.processed_rows, Customer.objects.count()) == ("failed", 10, 10)
        importing.import_confirm(job=job, by=org.admin, queue=False)
        import_run_task.apply(args=[job.pk])  # the Celery task, run in this process
        job.refresh_from_db()
        assert (job.status, job.created_rows, Customer.objects.count()) == ("done", 25, 25)

    def test_rows_committed_but_progress_lost_are_not_doubled(self, org, kinds):
        """Even if a chunk's rows were written by a run whose progress was lost, the rows are upserted."""
        job = self._confirmed(org)
        importing.import_run(job_id=job.pk, max_rows=10, chunk_size=5)
        type(job).objects.filter(pk=job.pk).update(processed_rows=0, created_rows=0)
        importing.import_run(job_id=job.pk, chunk_size=5)
        job.refresh_from_db()
        assert (Customer.objects.count(), job.created_rows, job.updated_rows) == (25, 15, 10)

    def test_a_finished_job_is_not_run_again(self, org, kinds):
        job = self._confirmed(org)
        importing.import_run(job_id=job.pk)
        assert importing.import_run(job_id=job.pk) == {"status": ImportStatus.DONE}


def test_benchmark_command_at_a_small_size(org, kinds, tmp_path):
    """bench_import generates the old system's files and imports them; every row arrives."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("bench_import", deals=60, activities=300, deals_per_customer=3, user="admin", dir=str(tmp_path), stdout=out)
    assert (Customer.objects.count(), Contact.objects.count(), Opportunity.objects.count(), Activity.objects.count()) == (20, 20, 60, 300)
    assert StageChange.objects.filter(imported=True).count() >= 60
    assert "total import time" in out.getvalue()


def test_crm_import_command_dry_run_and_run(org, kinds, tmp_path):
    from django.core.management import call_command

    path = tmp_path / "customers.csv"
    path.write_bytes(csv_bytes(CUSTOMERS, encoding="gbk"))
    out = io.StringIO()
    call_command("crm_import", "customers", str(path), user="admin", dry_run=True, stdout=out)
    assert "3 new" in out.getvalue() and not Customer.objects.exists()
    call_command("crm_import", "customers", str(path), user="admin", stdout=out)
    assert Customer.objects.count() == 3


class TestBatching:
    """No query per row: a chunk costs the same number of queries for 5 rows as for 60."""

    def _run_queries(self, org, kind, rows, **mapping):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        job = importing.import_set_mapping(job=upload(org.admin, kind, rows), by=org.admin, **mapping)
        importing.import_confirm(job=job, by=org.admin, queue=False)
        with CaptureQueriesContext(connection) as queries:
            importing.import_run(job_id=job.pk)
        job.refresh_from_db()
        assert job.created_rows == len(rows) - 1
        return len(queries)

    @pytest.mark.parametrize("kind", ["customers", "contacts", "opportunities", "activities"])
    def test_queries_do_not_depend_on_the_rows(self, org, kinds, kind):
        import_customers(org.admin, [["external_id", "name", "owner"]] + [[f"C{i}", f"Co {i}", "rep_a"] for i in range(60)])
        if kind in ("activities",):
            import_deals(org.admin, [DEALS[0]] + [[f"D{i}", f"C{i}", "t", "closed_won", "1", "2024-01-01", "2024-02-01", "rep_a", ""] for i in range(60)])

        def rows(prefix, n):
            if kind == "customers":
                return [["external_id", "name", "owner", "tags"]] + [[f"{prefix}{i}", f"N {i}", "rep_a", "x, y"] for i in range(n)]
            if kind == "contacts":
                return [["external_id", "customer_external_id", "name"]] + [[f"{prefix}{i}", f"C{i}", "p"] for i in range(n)]
            if kind == "opportunities":
                return [DEALS[0]] + [[f"{prefix}{i}", f"C{i}", "t", "closed_won", "1", "2024-01-01", "2024-02-01", "rep_a", ""] for i in range(n)]
            return [["external_id", "customer_external_id", "opportunity_external_id", "kind", "timestamp"]] + [
                [f"{prefix}{i}", f"C{i}", f"D{i}", "call", "2024-01-15"] for i in range(n)]

        small = self._run_queries(org, kind, rows("S", 5))
        large = self._run_queries(org, kind, rows("L", 60))
        assert small == large
