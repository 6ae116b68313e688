"""After-sales pages: the scoped queue and detail, moves, comments, attachments, the customer panel,
service plans, and the public pages (ticket form, status link, survey)."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from aftersales import services
from aftersales.models import (
    CustomerPortal,
    Priority,
    SatisfactionSurvey,
    ServiceSettings,
    SlaBreach,
    Ticket,
    TicketComment,
    TicketStatus,
)
from tests.factories import CustomerFactory

from .factories import ContactFactory, kind, make_ticket

# (viewer, ticket owner) -> visible?  None as owner: an unassigned ticket in team A's queue.
SCOPE = [
    ("rep_a", "rep_a", True),
    ("rep_a", "rep_a2", False),
    ("rep_a", "rep_b", False),
    ("rep_a", None, True),
    ("rep_b", None, False),
    ("manager_a", "rep_a2", True),
    ("manager_a", "rep_b", False),
    ("manager_a", None, True),
    ("manager_b", None, False),
    ("director", "rep_b", True),
    ("director", None, True),
    ("admin", "rep_b", True),
    ("admin", None, True),
]


def ticket_for(org, owner_name, **kwargs):
    owner = getattr(org, owner_name) if owner_name else None
    customer = CustomerFactory(owner=owner, team=org.team_a if owner is None else None)
    return make_ticket(customer=customer, owner=owner, **kwargs)


@pytest.fixture(autouse=True)
def _clear_cache(settings):
    settings.LANGUAGE_CODE = "en"  # the assertions below read English messages
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
class TestScope:
    @pytest.mark.parametrize(("viewer", "owner", "visible"), SCOPE)
    def test_detail_is_visible_or_404(self, org, client_for, viewer, owner, visible):
        ticket = ticket_for(org, owner)
        response = client_for(getattr(org, viewer)).get(reverse("aftersales:ticket_detail", args=[ticket.pk]))
        assert response.status_code == (200 if visible else 404)

    @pytest.mark.parametrize(("viewer", "owner", "visible"), SCOPE)
    def test_queue_shows_only_visible_tickets(self, org, client_for, viewer, owner, visible):
        ticket = ticket_for(org, owner, subject=f"Ticket of {owner}")
        response = client_for(getattr(org, viewer)).get(reverse("aftersales:ticket_list") + "?view=all")
        assert response.status_code == 200
        assert (ticket.subject in response.content.decode()) is visible

    @pytest.mark.parametrize(
        "name", ["ticket_edit", "ticket_transition", "ticket_assign", "ticket_comment", "ticket_attachment_upload"]
    )
    def test_every_ticket_action_is_404_out_of_scope(self, org, client_for, name):
        ticket = ticket_for(org, "rep_a")
        client = client_for(org.rep_b)
        url = reverse(f"aftersales:{name}", args=[ticket.pk])
        response = client.get(url) if name == "ticket_edit" else client.post(url, {"transition": "start", "body": "x"})
        assert response.status_code == 404
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.OPEN and not ticket.comments.exists()

    def test_attachment_download_is_scoped(self, org, client_for):
        ticket = ticket_for(org, "rep_a")
        attachment = services.ticket_attach(
            ticket=ticket, file=SimpleUploadedFile("log.txt", b"error 42"), uploaded_by=org.rep_a
        )
        url = reverse("aftersales:attachment_download", args=[attachment.pk])
        assert client_for(org.rep_b).get(url).status_code == 404
        response = client_for(org.rep_a).get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain"
        assert "attachment" in response["Content-Disposition"] and "log.txt" in response["Content-Disposition"]
        assert b"".join(response.streaming_content) == b"error 42"

    def test_anonymous_is_sent_to_login(self, org, client):
        ticket = ticket_for(org, "rep_a")
        response = client.get(reverse("aftersales:ticket_detail", args=[ticket.pk]))
        assert response.status_code == 302 and reverse("accounts:login") in response["Location"]

    def test_customer_panel_needs_the_customer_in_scope(self, org, client_for):
        ticket = ticket_for(org, "rep_a")
        url = reverse("aftersales:for_customer", args=[ticket.customer_id])
        assert client_for(org.rep_b).get(url).status_code == 404
        response = client_for(org.rep_a).get(url)
        assert response.status_code == 200
        assert ticket.subject in response.content.decode()


@pytest.mark.django_db
class TestTicketQueue:
    def test_views_mine_team_unassigned(self, org, client_for):
        mine = ticket_for(org, "rep_a", subject="Mine-ticket")
        teammate = ticket_for(org, "rep_a2", subject="Teammate-ticket")
        pool = ticket_for(org, None, subject="Pool-ticket")
        client = client_for(org.manager_a)
        services.ticket_assign(ticket=mine, by=org.manager_a, owner=org.manager_a)

        def subjects(view):
            body = client.get(reverse("aftersales:ticket_list") + f"?view={view}").content.decode()
            return {s for s in ("Mine-ticket", "Teammate-ticket", "Pool-ticket") if s in body}

        assert subjects("mine") == {"Mine-ticket"}
        assert subjects("team") == {"Mine-ticket", "Teammate-ticket", "Pool-ticket"}
        assert subjects("unassigned") == {"Pool-ticket"}
        assert teammate and pool

    def test_filters_status_priority_sla(self, org, client_for):
        now = timezone.now()
        urgent = ticket_for(org, "rep_a", subject="Urgent-one", priority=Priority.URGENT, now=now - timedelta(days=3))
        calm = ticket_for(org, "rep_a", subject="Calm-one", priority=Priority.LOW, now=now)
        services.ticket_transition(ticket=calm, transition="start", by=org.rep_a)
        client = client_for(org.rep_a)
        url = reverse("aftersales:ticket_list") + "?view=mine"

        def shown(query):
            body = client.get(url + query).content.decode()
            return {s for s in ("Urgent-one", "Calm-one") if s in body}

        assert shown("&priority=urgent") == {"Urgent-one"}
        assert shown("&status=in_progress") == {"Calm-one"}
        assert shown("&sla_state=breached") == {"Urgent-one"}
        assert shown("&sla_state=on_track") == {"Calm-one"}
        assert shown("&status=open") == {"Urgent-one", "Calm-one"}
        assert urgent

    def test_query_count_does_not_grow_with_rows(self, org, client_for, django_assert_max_num_queries):
        client = client_for(org.manager_a)
        for i in range(3):
            ticket_for(org, "rep_a", subject=f"T{i}")
        with django_assert_max_num_queries(12) as small:
            assert client.get(reverse("aftersales:ticket_list") + "?view=team").status_code == 200
        for i in range(25):
            ticket_for(org, "rep_a2" if i % 2 else None, subject=f"U{i}")
        with django_assert_max_num_queries(len(small.captured_queries)):
            assert client.get(reverse("aftersales:ticket_list") + "?view=team").status_code == 200


@pytest.mark.django_db
class TestTicketPages:
    def test_create_from_the_customer_page(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        contact = ContactFactory(customer=customer)
        client = client_for(org.rep_a)
        url = reverse("aftersales:ticket_create") + f"?customer={customer.pk}"
        assert client.get(url).status_code == 200
        response = client.post(url, {
            "customer": customer.pk, "contact": contact.pk, "kind": kind("installation").pk,
            "priority": "high", "subject": "Install the scanner", "description": "Floor 3",
            "owner": org.rep_a.pk,
            "attachment": SimpleUploadedFile("plan.pdf", b"%PDF-1.4 plan"),
        })
        ticket = Ticket.objects.get()
        assert response.status_code == 302 and response["Location"] == ticket.get_absolute_url()
        assert (ticket.customer, ticket.contact, ticket.owner, ticket.created_by) == (customer, contact, org.rep_a, org.rep_a)
        assert ticket.attachments.get().original_name == "plan.pdf"

    def test_create_refuses_a_customer_out_of_scope(self, org, client_for):
        other = CustomerFactory(owner=org.rep_b)
        response = client_for(org.rep_a).post(reverse("aftersales:ticket_create"), {
            "customer": other.pk, "kind": kind().pk, "priority": "normal", "subject": "x", "owner": org.rep_a.pk,
        })
        assert response.status_code == 200 and not Ticket.objects.exists()
        assert "customer" in response.context["form"].errors

    def test_create_with_a_forbidden_attachment_creates_nothing(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        response = client_for(org.rep_a).post(reverse("aftersales:ticket_create"), {
            "customer": customer.pk, "kind": kind().pk, "priority": "normal", "subject": "x",
            "owner": org.rep_a.pk, "attachment": SimpleUploadedFile("x.exe", b"MZ"),
        })
        assert response.status_code == 200 and not Ticket.objects.exists()
        assert "attachment" in response.context["form"].errors

    def test_detail_query_count_does_not_grow_with_the_thread(self, org, client_for, django_assert_max_num_queries):
        ticket = ticket_for(org, "rep_a")
        client = client_for(org.rep_a)
        services.ticket_comment_add(ticket=ticket, author=org.rep_a, body="first")
        with django_assert_max_num_queries(40) as few:
            assert client.get(ticket.get_absolute_url()).status_code == 200
        for i in range(10):
            services.ticket_comment_add(ticket=ticket, author=org.rep_a2 if i % 2 else org.manager_a, body=f"c{i}",
                                        visibility="public")
            services.ticket_attach(ticket=ticket, file=SimpleUploadedFile(f"f{i}.txt", b"x"), uploaded_by=org.rep_a)
        services.ticket_transition(ticket=ticket, transition="start", by=org.rep_a)
        services.ticket_transition(ticket=ticket, transition="wait_on_customer", by=org.rep_a)
        with django_assert_max_num_queries(len(few.captured_queries)):
            assert client.get(ticket.get_absolute_url()).status_code == 200

    def test_detail_shows_only_the_allowed_moves(self, org, client_for):
        ticket = ticket_for(org, "rep_a")
        client = client_for(org.rep_a)
        body = client.get(ticket.get_absolute_url()).content.decode()
        assert 'data-transition="start"' in body
        for name in ("resolve", "close", "reopen", "resume", "wait_on_customer"):
            assert f'data-transition="{name}"' not in body
        client.post(reverse("aftersales:ticket_transition", args=[ticket.pk]), {"transition": "start", "note": "on it"})
        body = client.get(ticket.get_absolute_url()).content.decode()
        assert {n for n in services.TRANSITIONS if f'data-transition="{n}"' in body} == {"wait_on_customer", "resolve"}
        assert "on it" in body

    def test_a_forbidden_move_shows_an_error(self, org, client_for):
        ticket = ticket_for(org, "rep_a")
        client = client_for(org.rep_a)
        response = client.post(reverse("aftersales:ticket_transition", args=[ticket.pk]), {"transition": "close"},
                               follow=True)
        assert "cannot be moved" in response.content.decode()
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.OPEN

    def test_comment_thread_htmx(self, org, client_for):
        ticket = ticket_for(org, "rep_a")
        client = client_for(org.rep_a)
        url = reverse("aftersales:ticket_comment", args=[ticket.pk])
        response = client.post(url, {"body": "Called the customer", "visibility": "internal"}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and "Called the customer" in response.content.decode()
        client.post(url, {"body": "We will come on Tuesday", "visibility": "public"})
        assert list(TicketComment.objects.filter(ticket=ticket).values_list("visibility", flat=True)) == [
            "internal", "public"
        ]

    def test_edit(self, org, client_for):
        ticket = ticket_for(org, "rep_a")
        response = client_for(org.rep_a).post(reverse("aftersales:ticket_edit", args=[ticket.pk]), {
            "kind": kind("complaint").pk, "priority": "urgent", "subject": "Angry", "description": "",
        })
        assert response.status_code == 302
        ticket.refresh_from_db()
        assert (ticket.priority, ticket.subject, ticket.kind.code) == ("urgent", "Angry", "complaint")

    def test_take_and_assign(self, org, client_for):
        ticket = ticket_for(org, None)
        client_for(org.rep_a).post(reverse("aftersales:ticket_assign", args=[ticket.pk]), {"take": "1"})
        ticket.refresh_from_db()
        assert ticket.owner == org.rep_a
        client_for(org.manager_a).post(reverse("aftersales:ticket_assign", args=[ticket.pk]), {"owner": org.rep_a2.pk})
        ticket.refresh_from_db()
        assert ticket.owner == org.rep_a2


@pytest.mark.django_db
class TestPublicTicketForm:
    def portal(self, org):
        customer = CustomerFactory(owner=org.rep_a, name="ACME 艾克米")
        return services.portal_get_or_create(customer=customer)

    def data(self, **overrides):
        data = {"name": "李雷", "email": "li.lei@acme.example.com", "phone": "", "kind": kind().pk,
                "subject": "Screen flickers", "description": "Since Monday", "website": ""}
        data.update(overrides)
        return data

    def test_submit_opens_a_ticket_and_shows_the_status_link(self, org, client):
        portal = self.portal(org)
        contact = ContactFactory(customer=portal.customer, email="li.lei@acme.example.com")
        response = client.post(reverse("aftersales:public_ticket_new", args=[portal.token]), self.data())
        ticket = Ticket.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("aftersales:public_ticket", args=[ticket.public_token])
        assert (ticket.customer, ticket.contact, ticket.source, ticket.owner) == (
            portal.customer, contact, "public_form", None
        )
        status_page = client.get(response["Location"])
        assert status_page.status_code == 200 and "Screen flickers" in status_page.content.decode()

    @pytest.mark.parametrize(
        "overrides",
        [{"name": ""}, {"subject": ""}, {"description": ""}, {"email": "not-an-email"}, {"email": "", "phone": ""},
         {"kind": "999999"}],
    )
    def test_validation(self, org, client, overrides):
        portal = self.portal(org)
        response = client.post(reverse("aftersales:public_ticket_new", args=[portal.token]), self.data(**overrides))
        assert response.status_code == 400
        assert not Ticket.objects.exists()

    def test_forbidden_attachment_is_refused(self, org, client):
        portal = self.portal(org)
        data = self.data(attachment=SimpleUploadedFile("virus.exe", b"MZ\x90"))
        response = client.post(reverse("aftersales:public_ticket_new", args=[portal.token]), data)
        assert response.status_code == 400 and not Ticket.objects.exists()

    def test_honeypot_pretends_success_and_creates_nothing(self, org, client):
        portal = self.portal(org)
        response = client.post(reverse("aftersales:public_ticket_new", args=[portal.token]),
                               self.data(website="http://spam.example.com"))
        assert response.status_code == 200 and not Ticket.objects.exists()

    def test_unknown_or_disabled_token_is_404(self, org, client):
        portal = self.portal(org)
        assert client.get(reverse("aftersales:public_ticket_new", args=["nope"])).status_code == 404
        CustomerPortal.objects.filter(pk=portal.pk).update(is_active=False)
        assert client.get(reverse("aftersales:public_ticket_new", args=[portal.token])).status_code == 404

    def test_rate_limit_per_ip(self, org, client):
        """The N+1st submission from one address within the hour is refused with 429; another
        address is still served."""
        ServiceSettings.objects.filter(pk=1).update(public_form_limit_per_hour=3)
        portal = self.portal(org)
        url = reverse("aftersales:public_ticket_new", args=[portal.token])
        for i in range(3):
            assert client.post(url, self.data(subject=f"S{i}"), REMOTE_ADDR="203.0.113.5").status_code == 302
        assert client.post(url, self.data(subject="S3"), REMOTE_ADDR="203.0.113.5").status_code == 429
        assert client.post(url, self.data(subject="S4"), REMOTE_ADDR="203.0.113.6").status_code == 302
        assert Ticket.objects.count() == 4

    def test_regenerating_the_link_retires_the_old_one(self, org, client, client_for):
        portal = self.portal(org)
        old = portal.token
        client_for(org.rep_a).post(reverse("aftersales:customer_portal", args=[portal.customer_id]),
                                   {"regenerate": "1"})
        client.logout()
        assert client.get(reverse("aftersales:public_ticket_new", args=[old])).status_code == 404
        portal.refresh_from_db()
        assert client.get(reverse("aftersales:public_ticket_new", args=[portal.token])).status_code == 200


@pytest.mark.django_db
class TestPublicStatusLink:
    def test_shows_only_customer_visible_replies(self, org, client):
        ticket = ticket_for(org, "rep_a")
        services.ticket_comment_add(ticket=ticket, author=org.rep_a, body="SECRET internal", visibility="internal")
        services.ticket_comment_add(ticket=ticket, author=org.rep_a, body="Public reply", visibility="public")
        body = client.get(reverse("aftersales:public_ticket", args=[ticket.public_token])).content.decode()
        assert "Public reply" in body and "SECRET internal" not in body
        assert client.get(reverse("aftersales:public_ticket", args=["x" * 43])).status_code == 404

    def test_customer_reply_resumes_a_waiting_ticket(self, org, client):
        ticket = ticket_for(org, "rep_a")
        services.ticket_transition(ticket=ticket, transition="start", by=org.rep_a)
        services.ticket_transition(ticket=ticket, transition="wait_on_customer", by=org.rep_a)
        url = reverse("aftersales:public_ticket", args=[ticket.public_token])
        assert client.post(url, {"body": "Serial number is 123", "website": ""}).status_code == 302
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.IN_PROGRESS
        assert ticket.comments.get().by_customer

    def test_customer_reopens_within_the_window(self, org, client):
        ticket = ticket_for(org, "rep_a")
        services.ticket_transition(ticket=ticket, transition="start", by=org.rep_a)
        services.ticket_transition(ticket=ticket, transition="resolve", by=org.rep_a)
        url = reverse("aftersales:public_ticket", args=[ticket.public_token])
        assert "reopen" in client.get(url).content.decode()
        client.post(url, {"reopen": "1", "body": "Still broken"})
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.REOPENED


@pytest.mark.django_db
class TestSurveyPage:
    def survey(self, org, expires_in=timedelta(days=3)):
        ticket = ticket_for(org, "rep_a")
        return SatisfactionSurvey.objects.create(ticket=ticket, expires_at=timezone.now() + expires_in)

    def test_answer_once(self, org, client):
        survey = self.survey(org)
        url = reverse("aftersales:survey", args=[survey.token])
        assert client.get(url).status_code == 200
        response = client.post(url, {"score": "4", "comment": "Good"})
        assert response.status_code == 200
        survey.refresh_from_db()
        assert (survey.score, survey.comment) == (4, "Good")
        again = client.post(url, {"score": "1", "comment": "Changed my mind"})
        assert "already been answered" in again.content.decode()
        survey.refresh_from_db()
        assert survey.score == 4

    def test_expired(self, org, client):
        survey = self.survey(org, expires_in=timedelta(seconds=-1))
        url = reverse("aftersales:survey", args=[survey.token])
        assert client.get(url).status_code == 410
        assert client.post(url, {"score": "5"}).status_code == 410
        survey.refresh_from_db()
        assert survey.answered_at is None

    def test_invalid_score(self, org, client):
        survey = self.survey(org)
        response = client.post(reverse("aftersales:survey", args=[survey.token]), {"score": "9"})
        assert response.status_code == 400
        survey.refresh_from_db()
        assert survey.answered_at is None

    def test_unknown_token(self, org, client):
        assert client.get(reverse("aftersales:survey", args=["unknown"])).status_code == 404


@pytest.mark.django_db
class TestServicePlanPages:
    def test_add_edit_and_complete_items(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        client = client_for(org.rep_a)
        url = reverse("aftersales:customer_plan", args=[customer.pk])
        response = client.post(url, {"title": "Yearly check", "kind": kind("consultation").pk,
                                     "due_date": "2026-06-01", "owner": org.rep_a.pk, "notes": ""})
        assert response.status_code == 302
        item = customer.service_plan_items.get()
        assert (item.title, str(item.due_date), item.owner) == ("Yearly check", "2026-06-01", org.rep_a)
        client.post(reverse("aftersales:plan_item_status", args=[item.pk]), {"status": "done"})
        item.refresh_from_db()
        assert item.status == "done"
        assert client_for(org.rep_b).get(reverse("aftersales:plan_item_edit", args=[item.pk])).status_code == 404
        assert client_for(org.rep_b).get(url).status_code == 404


@pytest.mark.django_db
class TestBreachesOnThePage:
    def test_breach_is_shown(self, org, client_for):
        ticket = ticket_for(org, "rep_a", now=timezone.now() - timedelta(days=10))
        services.sla_scan()
        assert SlaBreach.objects.filter(ticket=ticket).exists()
        response = client_for(org.rep_a).get(ticket.get_absolute_url())
        assert response.context["sla_state"] == "breached"
        assert "deadline missed" in response.content.decode()
