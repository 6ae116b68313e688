"""Activity pages: quick-log (HTMX, idempotent), the rep's day, list, detail, calendar, iCal feed, plans."""

import re
from datetime import timedelta

import icalendar
import pytest
from django.urls import reverse
from django.utils import timezone

from activities import services
from activities.models import Activity, ActivityPlan, ActivityStatus
from tests.factories import CustomerFactory

from .factories import ActivityFactory, kind


def quick_log_post(client, customer, key, **extra):
    data = {"customer": customer.pk, "idempotency_key": key, "kind": kind("call").pk, "subject": "Called",
            "outcome": "positive", "next_step": "Send quote", **extra}
    return client.post(reverse("activities:quick_log"), data, HTTP_HX_REQUEST="true")


@pytest.mark.django_db
class TestQuickLog:
    def test_form_carries_a_fresh_key(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        client = client_for(org.rep_a)
        url = reverse("activities:quick_log") + f"?customer={customer.pk}"
        keys = [re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', client.get(url).content.decode()).group(1)
                for _ in range(2)]
        assert keys[0] != keys[1]

    def test_double_submit_logs_one_activity(self, org, client_for):
        """The same form submitted twice (double click, retry): one activity; the second answer says it
        was already logged; the customer's follow-up moved once."""
        customer = CustomerFactory(owner=org.rep_a)
        client = client_for(org.rep_a)
        first = quick_log_post(client, customer, "a" * 32)
        second = quick_log_post(client, customer, "a" * 32)
        assert first.status_code == second.status_code == 200
        assert first["HX-Trigger"] == "activity-logged"
        assert Activity.objects.count() == 1
        assert "Logged: Called" in first.content.decode() or "已记录" in first.content.decode()
        activity = Activity.objects.get()
        assert (activity.status, activity.owner, activity.outcome) == (ActivityStatus.DONE, org.rep_a, "positive")
        assert activity.get_absolute_url() in second.content.decode()
        customer.refresh_from_db()
        assert customer.last_contacted_at == activity.done_at
        quick_log_post(client, customer, "b" * 32)
        assert Activity.objects.count() == 2

    def test_invalid_form_is_422_and_logs_nothing(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        response = quick_log_post(client_for(org.rep_a), customer, "c" * 32, subject="")
        assert response.status_code == 422
        assert not Activity.objects.exists()

    def test_out_of_scope_customer_is_404(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_b)
        client = client_for(org.rep_a)
        assert client.get(reverse("activities:quick_log") + f"?customer={customer.pk}").status_code == 404
        assert quick_log_post(client, customer, "d" * 32).status_code == 404
        assert not Activity.objects.exists()

    def test_from_the_deal_page(self, org, client_for, make_deal):
        customer = CustomerFactory(owner=org.rep_a)
        deal = make_deal(customer, org.rep_a)
        client = client_for(org.rep_a)
        assert client.get(reverse("activities:quick_log") + f"?opportunity={deal.pk}").status_code == 200
        quick_log_post(client, customer, "e" * 32, opportunity=deal.pk)
        assert Activity.objects.get().opportunity == deal

    def test_without_htmx_redirects_back(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        data = {"customer": customer.pk, "idempotency_key": "f" * 32, "kind": kind("call").pk, "subject": "x"}
        response = client_for(org.rep_a).post(reverse("activities:quick_log"), data)
        assert response.status_code == 302 and response.url == customer.get_absolute_url()


@pytest.mark.django_db
class TestPanels:
    def test_customer_panel(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        ActivityFactory(customer=customer, subject="Planned visit")
        response = client_for(org.rep_a).get(reverse("activities:for_customer", args=[customer.pk]))
        assert response.status_code == 200
        body = response.content.decode()
        assert "Planned visit" in body and "quick-log" in body
        assert client_for(org.rep_b).get(reverse("activities:for_customer", args=[customer.pk])).status_code == 404

    def test_deal_panel(self, org, client_for, make_deal):
        customer = CustomerFactory(owner=org.rep_a)
        deal = make_deal(customer, org.rep_a)
        ActivityFactory(customer=customer, opportunity=deal, subject="Demo for the deal")
        response = client_for(org.rep_a).get(reverse("activities:for_opportunity", args=[deal.pk]))
        assert "Demo for the deal" in response.content.decode()
        assert client_for(org.rep_b).get(reverse("activities:for_opportunity", args=[deal.pk])).status_code == 404


@pytest.mark.django_db
class TestRepsDay:
    def test_sections(self, org, client_for, make_deal):
        """Today's planned, overdue, customers due for follow-up, stalled deals: only the user's own."""
        now = timezone.now()
        customer = CustomerFactory(owner=org.rep_a, name="Due Co", next_follow_up_at=now - timedelta(hours=1))
        CustomerFactory(owner=org.rep_a, name="Later Co", next_follow_up_at=now + timedelta(days=5))
        ActivityFactory(customer=customer, subject="Today call", planned_at=timezone.localtime(now).replace(
            hour=23, minute=30))
        ActivityFactory(customer=customer, subject="Old visit", planned_at=now - timedelta(days=3))
        make_deal(customer, org.rep_a, stalled=True, title="Stuck deal")
        make_deal(customer, org.rep_a, title="Moving deal")
        other = CustomerFactory(owner=org.rep_b, name="Other Co", next_follow_up_at=now - timedelta(days=1))
        ActivityFactory(customer=other, subject="Not mine")
        body = client_for(org.rep_a).get("/").content.decode()
        for text in ("Today call", "Old visit", "Due Co", "Stuck deal", "unread-notifications"):
            assert text in body
        for text in ("Later Co", "Moving deal", "Other Co", "Not mine"):
            assert text not in body
        assert 'id="team-week"' not in body

    def test_manager_sees_the_team_week(self, org, client_for):
        ActivityFactory(customer=CustomerFactory(owner=org.rep_a), planned_at=timezone.now())
        body = client_for(org.manager_a).get("/").content.decode()
        assert 'id="team-week"' in body and org.rep_a.display_name in body and org.rep_b.display_name not in body

    def test_constant_queries(self, org, client_for, django_assert_max_num_queries):
        client = client_for(org.rep_a)
        now = timezone.now()
        for n in range(15):
            customer = CustomerFactory(owner=org.rep_a, next_follow_up_at=now - timedelta(hours=n + 1))
            ActivityFactory(customer=customer, planned_at=now - timedelta(days=n + 1))
            ActivityFactory(customer=customer, planned_at=timezone.localtime(now).replace(hour=23, minute=59))
        with django_assert_max_num_queries(16):
            assert client.get("/").status_code == 200


@pytest.mark.django_db
class TestActivityList:
    def test_scoped(self, org, client_for):
        ActivityFactory(customer=CustomerFactory(owner=org.rep_a), subject="Mine")
        ActivityFactory(customer=CustomerFactory(owner=org.rep_b), subject="Theirs")
        assert "Theirs" not in client_for(org.rep_a).get(reverse("activities:list")).content.decode()
        body = client_for(org.manager_b).get(reverse("activities:list")).content.decode()
        assert "Theirs" in body and "Mine" not in body

    def test_a_managers_visit_shows_to_the_customers_rep(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        services.activity_log(by=org.manager_a, customer=customer, kind=kind("visit"), subject="Manager visit")
        assert "Manager visit" in client_for(org.rep_a).get(reverse("activities:list")).content.decode()

    def test_constant_queries(self, org, client_for, django_assert_max_num_queries):
        client = client_for(org.manager_a)
        for _ in range(30):
            ActivityFactory(customer=CustomerFactory(owner=org.rep_a))
        with django_assert_max_num_queries(12):
            assert client.get(reverse("activities:list")).status_code == 200

    def test_unfiltered_total_from_the_scope_totals(self, org, client_for):
        """Unfiltered, the list's total comes from ActivityScopeTotal and equals what the user sees (their
        own, their customers' by others, not the others'); filtered, the rows are counted."""
        mine = CustomerFactory(owner=org.rep_a)
        ActivityFactory.create_batch(3, customer=mine, owner=org.rep_a)
        ActivityFactory.create_batch(2, customer=mine, owner=org.manager_a)
        ActivityFactory.create_batch(4, customer=CustomerFactory(owner=org.rep_b), owner=org.rep_b)
        for user in (org.rep_a, org.manager_a, org.rep_b, org.admin):
            page = client_for(user).get(reverse("activities:list")).context["page"]
            assert page.paginator.count == Activity.objects.visible_to(user).count(), user.username
        page = client_for(org.rep_a).get(reverse("activities:list") + "?status=done").context["page"]
        assert page.paginator.count == 0

    def test_filters(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        ActivityFactory(customer=customer, subject="Planned one")
        services.activity_log(by=org.rep_a, customer=customer, kind=kind("visit"), subject="Done one")
        body = client_for(org.rep_a).get(reverse("activities:list") + "?status=done").content.decode()
        assert "Done one" in body and "Planned one" not in body


@pytest.mark.django_db
class TestActivityDetail:
    def test_out_of_scope_is_404(self, org, client_for):
        activity = ActivityFactory(customer=CustomerFactory(owner=org.rep_a))
        assert client_for(org.rep_b).get(activity.get_absolute_url()).status_code == 404
        assert client_for(org.rep_b).post(reverse("activities:cancel", args=[activity.pk])).status_code == 404
        activity.refresh_from_db()
        assert activity.status == ActivityStatus.PLANNED

    def test_complete_with_evaluation(self, org, client_for):
        activity = ActivityFactory(customer=CustomerFactory(owner=org.rep_a))
        client = client_for(org.rep_a)
        assert client.get(activity.get_absolute_url()).status_code == 200
        response = client.post(reverse("activities:complete", args=[activity.pk]),
                               {"outcome": "negative", "next_step": "Escalate"})
        assert response.status_code == 302
        activity.refresh_from_db()
        assert (activity.status, activity.outcome, activity.next_step) == ("done", "negative", "Escalate")

    def test_create_and_reschedule(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        client = client_for(org.rep_a)
        assert client.get(reverse("activities:create") + f"?customer={customer.pk}").status_code == 200
        response = client.post(reverse("activities:create") + f"?customer={customer.pk}", {
            "customer": customer.pk, "kind": kind("meeting").pk, "subject": "Kick-off", "owner": org.rep_a.pk,
            "planned_at": "2030-01-02T10:00", "idempotency_key": "k" * 32,
        })
        activity = Activity.objects.get()
        assert response.status_code == 302 and activity.subject == "Kick-off"
        client.post(reverse("activities:reschedule", args=[activity.pk]), {"planned_at": "2030-01-03T11:30"})
        activity.refresh_from_db()
        assert timezone.localtime(activity.planned_at).strftime("%Y-%m-%d %H:%M") == "2030-01-03 11:30"


@pytest.mark.django_db
class TestCalendar:
    def test_week(self, org, client_for):
        monday = timezone.localdate() - timedelta(days=timezone.localdate().weekday())
        when = timezone.localtime(timezone.now()).replace(year=monday.year, month=monday.month, day=monday.day,
                                                          hour=10, minute=0)
        ActivityFactory(customer=CustomerFactory(owner=org.rep_a), subject="Monday call", planned_at=when)
        ActivityFactory(customer=CustomerFactory(owner=org.rep_a), subject="Call in 7 days",
                        planned_at=when + timedelta(days=7))
        body = client_for(org.rep_a).get(reverse("activities:calendar")).content.decode()
        assert "Monday call" in body and "Call in 7 days" not in body
        manager_view = client_for(org.manager_a).get(reverse("activities:calendar") + f"?owner={org.rep_a.pk}")
        assert "Monday call" in manager_view.content.decode()

    def test_a_rep_cannot_open_someone_elses_week(self, org, client_for):
        url = reverse("activities:calendar") + f"?owner={org.rep_a2.pk}"
        assert client_for(org.rep_a).get(url).status_code == 404
        assert client_for(org.manager_b).get(url).status_code == 404


@pytest.mark.django_db
class TestIcalFeed:
    def test_valid_and_scoped(self, org, client):
        """A valid RFC 5545 calendar with the token owner's activities and follow-ups, nobody else's;
        readable without a login (calendar apps)."""
        now = timezone.now()
        mine = CustomerFactory(owner=org.rep_a, name="Mine, Ltd; \u4e2d\u6587", next_follow_up_at=now + timedelta(days=2))
        ActivityFactory(customer=mine, subject="Planned call", planned_at=now + timedelta(days=1),
                        duration_minutes=45, notes="Line one\nLine two")
        services.activity_log(by=org.rep_a, customer=mine, kind=kind("visit"), subject="Done visit",
                              done_at=now - timedelta(days=1))
        theirs = CustomerFactory(owner=org.rep_a2, name="Theirs", next_follow_up_at=now + timedelta(days=2))
        ActivityFactory(customer=theirs, subject="Their call", planned_at=now + timedelta(days=1))
        feed = services.calendar_feed_get_or_create(user=org.rep_a)
        response = client.get(feed.get_absolute_url())
        assert response.status_code == 200
        assert response["Content-Type"] == "text/calendar; charset=utf-8"
        raw = response.content
        assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")
        assert all(len(line) <= 75 for line in raw.split(b"\r\n")), "lines are folded at 75 octets"
        calendar = icalendar.Calendar.from_ical(raw)
        events = calendar.walk("VEVENT")
        summaries = sorted(str(e["SUMMARY"]) for e in events)
        assert len(summaries) == 3
        assert any("Planned call" in s for s in summaries) and any("Done visit" in s for s in summaries)
        assert any("Mine, Ltd; \u4e2d\u6587" in s for s in summaries)
        assert not any("Their" in s for s in summaries)
        for event in events:
            assert event["UID"] and event["DTSTAMP"] and event["DTSTART"]
        planned = next(e for e in events if "Planned call" in str(e["SUMMARY"]))
        assert planned.decoded("DTEND") - planned.decoded("DTSTART") == timedelta(minutes=45)
        assert "Line two" in str(planned["DESCRIPTION"])

    def test_reset_and_revoke(self, org, client):
        old = services.calendar_feed_get_or_create(user=org.rep_a).get_absolute_url()
        new = services.calendar_feed_reset(user=org.rep_a).get_absolute_url()
        assert client.get(old).status_code == 404
        assert client.get(new).status_code == 200
        services.calendar_feed_revoke(user=org.rep_a)
        assert client.get(new).status_code == 404
        assert client.get(reverse("activities:ical_feed", args=["nope"])).status_code == 404

    def test_inactive_user_feed_is_404(self, org, client):
        url = services.calendar_feed_get_or_create(user=org.rep_a).get_absolute_url()
        org.rep_a.is_active = False
        org.rep_a.save()
        assert client.get(url).status_code == 404

    def test_settings_page(self, org, client_for):
        client = client_for(org.rep_a)
        client.post(reverse("activities:feed_settings"), {"action": "create"})
        feed = org.rep_a.calendar_feed
        assert feed.token in client.get(reverse("activities:feed_settings")).content.decode()
        client.post(reverse("activities:feed_settings"), {"action": "reset"})
        feed.refresh_from_db()
        client.post(reverse("activities:feed_settings"), {"action": "revoke"})
        org.rep_a.refresh_from_db()
        assert not hasattr(org.rep_a, "calendar_feed") or org.rep_a.calendar_feed is None


@pytest.mark.django_db
class TestPlanPages:
    def test_create_series_and_see_progress(self, org, client_for):
        customer = CustomerFactory(owner=org.rep_a)
        client = client_for(org.manager_a)
        assert client.get(reverse("activities:plan_create") + f"?customer={customer.pk}").status_code == 200
        response = client.post(reverse("activities:plan_create") + f"?customer={customer.pk}", {
            "mode": "series", "series-customer": customer.pk, "series-owner": org.rep_a.pk,
            "series-kind": kind("call").pk, "series-subject": "Weekly", "series-first_at": "2030-01-07T09:00",
            "series-interval_days": 7, "series-occurrences": 3,
        })
        plan = ActivityPlan.objects.get()
        assert response.status_code == 302 and plan.activities.count() == 3
        assert "Weekly" in client_for(org.rep_a).get(reverse("activities:plan_list")).content.decode()
        assert client_for(org.rep_b).get(plan.get_absolute_url()).status_code == 404
        assert client_for(org.rep_a).get(plan.get_absolute_url()).status_code == 200

    def test_team_page_is_for_managers(self, org, client_for):
        assert client_for(org.rep_a).get(reverse("activities:team")).status_code == 404
        assert client_for(org.manager_a).get(reverse("activities:team")).status_code == 200
