"""The pipeline pages: board, list, export, detail, forms, the board's HTMX moves; scope and query counts."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from opportunities import selectors, services
from opportunities.models import Opportunity, StageChange, StageChecklistItem, StageKind
from tests.factories import CustomerFactory
from tests.opportunities.factories import advance_to, loss_reason, make_opportunity, open_stages, stage

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


class TestScope:
    """Rep A sees their deals only, manager A their team's, admins everything; out of scope is a 404."""

    @pytest.fixture
    def deals(self, org, pipeline):
        return {
            "a": make_opportunity(org.rep_a, title="甲的商机 Deal of A"),
            "a2": make_opportunity(org.rep_a2, title="甲二的商机 Deal of A2"),
            "b": make_opportunity(org.rep_b, title="乙的商机 Deal of B"),
        }

    @pytest.mark.parametrize("who, visible", [
        ("rep_a", {"a"}), ("manager_a", {"a", "a2"}), ("manager_b", {"b"}), ("director", {"a", "a2", "b"}),
        ("admin", {"a", "a2", "b"}),
    ])
    def test_board_list_export_detail(self, org, deals, client_for, who, visible):
        client = client_for(getattr(org, who))
        board = client.get(reverse("opportunities:board")).content.decode()
        listing = client.get(reverse("opportunities:list")).content.decode()
        exported = {row[1] for row in _csv(client.get(reverse("opportunities:export")))[1:]}
        for key, deal in deals.items():
            assert (deal.title in board) == (key in visible)
            assert (deal.title in listing) == (key in visible)
            assert (deal.title in exported) == (key in visible)
            detail = client.get(reverse("opportunities:detail", args=[deal.pk]))
            assert detail.status_code == (200 if key in visible else 404)
            assert client.get(reverse("opportunities:edit", args=[deal.pk])).status_code == (200 if key in visible else 404)

    def test_moves_out_of_scope_are_404(self, org, deals, client_for):
        client = client_for(org.rep_a)
        deal = deals["b"]
        assert client.post(reverse("opportunities:board_move", args=[deal.pk]),
                           {"to_stage": open_stages()[1].pk}, **HTMX).status_code == 404
        assert client.post(reverse("opportunities:transition", args=[deal.pk, "advance"])).status_code == 404
        assert client.post(reverse("opportunities:criteria", args=[deal.pk])).status_code == 404
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[0].pk

    def test_load_more_is_scoped(self, org, deals, client_for):
        response = client_for(org.rep_a).get(reverse("opportunities:column_more", args=[open_stages()[0].pk]))
        assert deals["a"].title in response.content.decode()
        assert deals["b"].title not in response.content.decode()

    def test_customer_panel(self, org, deals, client_for):
        url = reverse("opportunities:for_customer", args=[deals["a"].customer_id])
        assert deals["a"].title in client_for(org.rep_a).get(url).content.decode()
        assert client_for(org.rep_b).get(url).status_code == 404


class TestQueryCounts:
    """The board and the list cost the same number of queries with 3 or 30 deals per column."""

    def _fill(self, org, n):
        stages = open_stages()
        for i in range(n):
            deal = make_opportunity(org.rep_a if i % 2 else org.rep_a2, complete=True)
            if i % 3 == 1:
                advance_to(deal, stages[1])
            if i % 3 == 2:
                services.opportunity_lose(opportunity=deal, user=org.rep_a, loss_reason=loss_reason())

    def _count(self, client, url, django_assert_max_num_queries, limit):
        with django_assert_max_num_queries(limit) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    @pytest.mark.parametrize("url_name", ["opportunities:board", "opportunities:list"])
    def test_constant(self, org, pipeline, client_for, django_assert_max_num_queries, url_name):
        client = client_for(org.manager_a)
        url = reverse(url_name)
        self._fill(org, 3)
        client.get(url)
        few = self._count(client, url, django_assert_max_num_queries, 15)
        self._fill(org, 45)
        many = self._count(client, url, django_assert_max_num_queries, 15)
        assert many == few

    def test_board_loads_a_limited_number_of_cards(self, org, pipeline, client_for):
        for _ in range(selectors.CARDS_PER_COLUMN + 5):
            make_opportunity(org.rep_a)
        columns = selectors.board(user=org.rep_a, pipeline=pipeline)
        first = columns[0]
        assert first.count == selectors.CARDS_PER_COLUMN + 5
        assert len(first.cards) == selectors.CARDS_PER_COLUMN and first.has_more
        last = first.cards[-1]
        more, has_more = selectors.column_cards(user=org.rep_a, stage=first.stage,
                                                after=(last.priority_score, last.pk))
        assert len(more) == 5 and not has_more
        assert not {c.pk for c in more} & {c.pk for c in first.cards}
        page = client_for(org.rep_a).get(reverse("opportunities:board")).content.decode()
        assert "opp-load-more" in page


class TestBoard:
    def test_column_totals(self, org, pipeline, client_for):
        """Count, total and weighted amount per column (won/lost: closed in the last 30 days)."""
        make_opportunity(org.rep_a, amount="1000")
        make_opportunity(org.rep_a, amount="3000")
        old_loss = make_opportunity(org.rep_a, amount="500")
        services.opportunity_lose(opportunity=old_loss, user=org.rep_a, loss_reason=loss_reason())
        Opportunity.objects.filter(pk=old_loss.pk).update(closed_at=timezone.now() - timedelta(days=90))
        recent_loss = make_opportunity(org.rep_a, amount="700")
        services.opportunity_lose(opportunity=recent_loss, user=org.rep_a, loss_reason=loss_reason())
        columns = {c.stage.kind if not c.stage.is_open else c.stage.pk: c
                   for c in selectors.board(user=org.rep_a, pipeline=pipeline)}
        first = columns[open_stages()[0].pk]
        assert (first.count, first.total, first.weighted) == (2, Decimal("4000"), Decimal("400"))
        assert (columns["lost"].count, columns["lost"].total) == (1, Decimal("700"))

    def test_stalled_badge(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a, title="停滞的商机")
        Opportunity.objects.filter(pk=deal.pk).update(stage_entered_at=timezone.now() - timedelta(days=30))
        html = client_for(org.rep_a).get(reverse("opportunities:board")).content.decode()
        card = html[html.index(f'id="card-{deal.pk}"'):]
        assert "opp-stalled" in card[:card.index("</article>")]

    def test_drag_to_next_column_advances(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a, complete=True)
        response = client_for(org.rep_a).post(
            reverse("opportunities:board_move", args=[deal.pk]),
            {"to_stage": open_stages()[1].pk, "from_stage": open_stages()[0].pk}, **HTMX,
        )
        assert response.status_code == 200 and response["HX-Trigger"] == "opportunity-moved"
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[1].pk
        body = response.content.decode()
        assert f'id="card-{deal.pk}"' in body and 'hx-swap-oob="true"' in body

    def test_blocked_move_snaps_back_with_the_missing_criteria_form(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a)
        response = client_for(org.rep_a).post(
            reverse("opportunities:board_move", args=[deal.pk]),
            {"to_stage": open_stages()[1].pk, "from_stage": open_stages()[0].pk}, **HTMX,
        )
        assert response["HX-Trigger"] == "opportunity-move-refused"
        assert response["HX-Retarget"] == "#board-feedback"
        body = response.content.decode()
        assert 'id="criteria-form"' in body and 'name="contact"' in body and 'name="source"' in body
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[0].pk

    def test_fill_criteria_in_place_then_advance(self, org, pipeline, client_for):
        from leads.models import Contact

        deal = make_opportunity(org.rep_a)
        contact = Contact.objects.create(customer=deal.customer, name="赵总")
        item = StageChecklistItem.objects.get(stage=open_stages()[0])
        response = client_for(org.rep_a).post(
            reverse("opportunities:criteria", args=[deal.pk]),
            {"contact": contact.pk, "source": "website", f"item_{item.pk}": "on", "advance": "1",
             "from_stage": open_stages()[0].pk}, **HTMX,
        )
        assert response.status_code == 204 and response["HX-Refresh"] == "true"
        deal.refresh_from_db()
        assert deal.stage_id == open_stages()[1].pk and deal.contact == contact

    def test_no_skipping_by_drag(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a, complete=True)
        response = client_for(org.rep_a).post(reverse("opportunities:board_move", args=[deal.pk]),
                                              {"to_stage": open_stages()[3].pk}, **HTMX)
        assert response["HX-Trigger"] == "opportunity-move-refused"
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[0].pk

    def test_refused_skip_names_the_missing_criteria_with_the_form(self, org, pipeline, client_for):
        """A skip with the current stage's criteria still open says both: one stage at a time, and
        what is missing (with the form to fill it in place)."""
        deal = make_opportunity(org.rep_a)
        response = client_for(org.rep_a).post(reverse("opportunities:board_move", args=[deal.pk]),
                                              {"to_stage": open_stages()[2].pk}, **HTMX)
        assert response["HX-Trigger"] == "opportunity-move-refused"
        body = response.content.decode()
        assert open_stages()[1].name in body and "联系人" in body and "来源" in body
        assert 'id="criteria-form"' in body
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[0].pk

    def test_drag_back_or_to_lost_asks_for_a_reason(self, org, pipeline, client_for):
        deal = advance_to(make_opportunity(org.rep_a, complete=True), open_stages()[2])
        client = client_for(org.rep_a)
        back = client.post(reverse("opportunities:board_move", args=[deal.pk]), {"to_stage": open_stages()[0].pk}, **HTMX)
        assert back["HX-Trigger"] == "opportunity-move-refused" and 'id="move-back-form"' in back.content.decode()
        lost = client.post(reverse("opportunities:board_move", args=[deal.pk]), {"to_stage": stage("lost").pk}, **HTMX)
        assert 'id="lose-form"' in lost.content.decode()
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[2].pk
        done = client.post(reverse("opportunities:transition", args=[deal.pk, "move_back"]),
                           {"to_stage": open_stages()[0].pk, "reason": "重新评估需求", "from_stage": deal.stage_id}, **HTMX)
        assert done.status_code == 204
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[0].pk

    def test_stale_board_is_a_conflict(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a, complete=True)
        services.opportunity_advance(opportunity=deal, user=org.rep_a)
        response = client_for(org.rep_a).post(
            reverse("opportunities:board_move", args=[deal.pk]),
            {"to_stage": open_stages()[2].pk, "from_stage": open_stages()[0].pk}, **HTMX,
        )
        assert response["HX-Trigger"] == "opportunity-move-refused"
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[1].pk


class TestDetail:
    def test_shows_path_playbook_checklist_history_and_allowed_buttons(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a, complete=True)
        deal = services.opportunity_advance(opportunity=deal, user=org.rep_a, note="需求确认")
        html = client_for(org.rep_a).get(reverse("opportunities:detail", args=[deal.pk])).content.decode()
        assert 'aria-current="step">需求分析' in html
        assert "BANT" in html  # the playbook of needs analysis
        assert 'id="stage-history"' in html and "需求确认" in html
        transitions = html[html.index('id="transitions"'):html.index('id="disabled-reasons"')]
        assert 'data-action="advance"' in transitions and 'disabled data-action="win"' in transitions
        assert "没有已签署的合同" in html or "no signed contract" in html.lower()

    def test_reopen_button_only_for_managers(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a)
        services.opportunity_lose(opportunity=deal, user=org.rep_a, loss_reason=loss_reason())
        url = reverse("opportunities:detail", args=[deal.pk])
        rep_html = client_for(org.rep_a).get(url).content.decode()
        assert 'disabled data-action="reopen"' in rep_html
        manager_html = client_for(org.manager_a).get(url).content.decode()
        assert 'disabled data-action="reopen"' not in manager_html and 'data-action="reopen"' in manager_html

    def test_refused_transition_shows_why(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a)
        client = client_for(org.rep_a)
        response = client.post(reverse("opportunities:transition", args=[deal.pk, "advance"]), follow=True)
        assert "联系人" in response.content.decode()
        assert not StageChange.objects.filter(opportunity=deal, action="advance").exists()


class TestForms:
    def test_create(self, org, pipeline, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        response = client_for(org.rep_a).post(reverse("opportunities:create") + f"?customer={customer.pk}", {
            "customer": customer.pk, "title": "新商机", "amount": "5000", "currency": "CNY",
        })
        deal = Opportunity.objects.get(title="新商机")
        assert response.status_code == 302 and deal.owner == org.rep_a and deal.stage == open_stages()[0]

    def test_cannot_create_for_a_customer_out_of_scope(self, org, pipeline, client_for):
        customer = CustomerFactory(owner=org.rep_b)
        client = client_for(org.rep_a)
        assert client.get(reverse("opportunities:create") + f"?customer={customer.pk}").status_code == 404
        client.post(reverse("opportunities:create"), {"customer": customer.pk, "title": "x", "amount": "1",
                                                      "currency": "CNY"})
        assert not Opportunity.objects.exists()

    def test_edit_with_a_stale_version_is_refused(self, org, pipeline, client_for):
        deal = make_opportunity(org.rep_a)
        services.opportunity_update(opportunity=deal, user=org.rep_a, title="别人改过")
        response = client_for(org.rep_a).post(reverse("opportunities:edit", args=[deal.pk]), {
            "title": "我的修改", "amount": "1", "currency": "CNY", "probability": "10", "version": "1",
        })
        assert response.status_code == 200
        assert Opportunity.objects.get(pk=deal.pk).title == "别人改过"


class TestList:
    def test_filters_and_sorting(self, org, pipeline, client_for):
        small = make_opportunity(org.rep_a, amount="1000", title="小单")
        big = make_opportunity(org.rep_a, amount="900000", title="大单")
        stalled = make_opportunity(org.rep_a, amount="5000", title="停滞单")
        Opportunity.objects.filter(pk=stalled.pk).update(stage_entered_at=timezone.now() - timedelta(days=40))
        client = client_for(org.rep_a)

        def titles(**params):
            html = client.get(reverse("opportunities:list"), params).content.decode()
            return [t for t in ("小单", "大单", "停滞单") if t in html]

        assert titles(amount_min="2000") == ["大单", "停滞单"]
        assert titles(stalled="yes") == ["停滞单"]
        assert titles(stalled="no") == ["小单", "大单"]
        html = client.get(reverse("opportunities:list"), {"sort": "-amount"}).content.decode()
        assert html.index("大单") < html.index("停滞单") < html.index("小单")
        assert small and big

    def test_export_neutralises_formulas(self, org, pipeline, client_for):
        make_opportunity(org.rep_a, title="=HYPERLINK(\"http://evil\")")
        rows = _csv(client_for(org.rep_a).get(reverse("opportunities:export")))
        assert rows[1][1].startswith("'=")


class TestCustomerTimeline:
    def test_stage_moves_of_visible_deals(self, org, pipeline):
        from opportunities import timeline

        deal = make_opportunity(org.rep_a, complete=True)
        services.opportunity_advance(opportunity=deal, user=org.rep_a, note="进入需求分析")
        entries = timeline.entries(customer=deal.customer, user=org.rep_a, limit=10)
        assert [e.body for e in entries] == ["进入需求分析", ""]
        assert timeline.entries(customer=deal.customer, user=org.rep_b, limit=10) == []


class TestBoardTotalsRollup:
    def test_trigger_keeps_totals_exact(self, org, pipeline):
        """The column totals kept by the database trigger equal a recount after every kind of write:
        create, edit of amount/probability/owner, moves, an admin reassignment, a raw bulk update."""
        from django.db.models import Count, Sum

        from opportunities.models import StageOwnerTotal

        stages = open_stages()
        deals = [make_opportunity(org.rep_a, complete=True, amount=str(1000 * (i + 1))) for i in range(4)]
        services.opportunity_update(opportunity=deals[0], user=org.manager_a, amount=Decimal("777.77"),
                                    probability=33, owner=org.rep_a2)
        services.opportunity_advance(opportunity=deals[1], user=org.rep_a)
        services.opportunity_lose(opportunity=deals[2], user=org.rep_a, loss_reason=loss_reason())
        services.stage_deactivate(stage=stages[0], user=org.admin, move_to=stages[2])
        Opportunity.objects.filter(pk=deals[3].pk).update(amount=Decimal("5"))

        expected = {
            (row["stage_id"], row["owner_id"]): (row["n"], row["total"])
            for row in Opportunity.objects.values("stage_id", "owner_id").annotate(n=Count("id"), total=Sum("amount"))
        }
        kept = {
            (t.stage_id, t.owner_id): (t.opportunity_count, t.amount_sum)
            for t in StageOwnerTotal.objects.exclude(opportunity_count=0)
        }
        assert kept == expected
        totals = selectors.board_totals(user=org.manager_a, stages=selectors.pipeline_stages(pipeline))
        assert totals[stages[2].pk][0] == 2  # deals 0 and 3, moved there from the deactivated stage


class TestBoardReopenAndWin:
    def test_reopen_by_drag_goes_back_where_it_was_lost(self, org, pipeline, client_for):
        deal = advance_to(make_opportunity(org.rep_a, complete=True), open_stages()[1])
        services.opportunity_lose(opportunity=deal, user=org.rep_a, loss_reason=loss_reason())
        client = client_for(org.manager_a)
        url = reverse("opportunities:board_move", args=[deal.pk])
        wrong = client.post(url, {"to_stage": open_stages()[3].pk}, **HTMX)
        assert wrong["HX-Trigger"] == "opportunity-move-refused"
        rep = client_for(org.rep_a).post(url, {"to_stage": open_stages()[1].pk}, **HTMX)
        assert rep["HX-Trigger"] == "opportunity-move-refused"  # reps cannot reopen
        assert Opportunity.objects.get(pk=deal.pk).stage.kind == StageKind.LOST
        right = client_for(org.manager_a).post(url, {"to_stage": open_stages()[1].pk}, **HTMX)
        assert right["HX-Trigger"] == "opportunity-moved"
        assert Opportunity.objects.get(pk=deal.pk).stage_id == open_stages()[1].pk

    def test_win_by_drag_needs_a_signed_contract(self, org, pipeline, client_for, signed_contract):
        deal = advance_to(make_opportunity(org.rep_a, complete=True), open_stages()[3])
        client = client_for(org.rep_a)
        url = reverse("opportunities:board_move", args=[deal.pk])
        refused = client.post(url, {"to_stage": stage("won").pk}, **HTMX)
        assert refused["HX-Trigger"] == "opportunity-move-refused"
        assert "合同" in refused.content.decode()
        signed_contract.add(deal.pk)
        won = client.post(url, {"to_stage": stage("won").pk}, **HTMX)
        assert won["HX-Trigger"] == "opportunity-moved"
        assert Opportunity.objects.get(pk=deal.pk).stage.kind == StageKind.WON


class TestCriteriaFormWithoutContacts:
    """A refused move that needs a contact, on a customer that has none, says to add one first
    instead of offering an empty required list."""

    def test_contact_field_explains_what_to_do(self, org, pipeline):
        from opportunities.forms import CriteriaForm

        opportunity = make_opportunity(org.rep_a)
        assert not opportunity.customer.contacts.exists()
        from django.utils import translation

        with translation.override("en"):
            form = CriteriaForm(opportunity=opportunity)
        assert "contact" in form.fields
        assert "has no contact yet" in str(form.fields["contact"].help_text)
        with translation.override("zh-hans"):
            assert "还没有联系人" in str(CriteriaForm(opportunity=opportunity).fields["contact"].help_text)

    def test_no_hint_when_the_customer_has_contacts(self, org, pipeline):
        from leads.models import Contact
        from opportunities.forms import CriteriaForm

        opportunity = make_opportunity(org.rep_a)
        Contact.objects.create(customer=opportunity.customer, name="李经理")
        form = CriteriaForm(opportunity=opportunity)
        assert "contact" in form.fields and not form.fields["contact"].help_text
