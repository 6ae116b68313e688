"""Activity services: logging (idempotent), completing, planning, plans, the calendar feed."""

import threading
from datetime import date, datetime, time, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone

from activities import services
from activities.models import Activity, ActivityPlan, ActivityStatus, CalendarFeed, PlanTemplate
from leads.models import Customer, FollowUpCadence, Tier
from opportunities.models import Opportunity
from opportunities.services import pipeline_ensure_default
from tests.factories import CustomerFactory

from .factories import ActivityFactory, ContactFactory, kind


@pytest.fixture
def cadence(db):
    for tier, days in ((Tier.A, 7), (Tier.B, 14), (Tier.C, 30)):
        FollowUpCadence.objects.update_or_create(tier=tier, defaults={"days": days})


@pytest.mark.django_db
class TestActivityLog:
    def test_done_activity_updates_last_contact_and_next_follow_up_by_cadence(self, org, cadence):
        """Cadence: a done call on an A-tier customer sets last contacted, and next follow-up 7 days
        later (B: 14, C: 30, as configured)."""
        done_at = timezone.now() - timedelta(hours=2)
        for tier, days in ((Tier.A, 7), (Tier.B, 14), (Tier.C, 30)):
            customer = CustomerFactory(owner=org.rep_a, tier=tier)
            services.activity_log(by=org.rep_a, customer=customer, kind=kind("call"), subject="Call", done_at=done_at)
            customer.refresh_from_db()
            assert customer.last_contacted_at == done_at
            assert customer.next_follow_up_at == done_at + timedelta(days=days)

    def test_a_note_is_not_a_contact(self, org, cadence):
        customer = CustomerFactory(owner=org.rep_a)
        services.activity_log(by=org.rep_a, customer=customer, kind=kind("note"), subject="Budget approved")
        customer.refresh_from_db()
        assert customer.last_contacted_at is None and customer.next_follow_up_at is None

    def test_an_older_activity_logged_late_does_not_move_the_dates_back(self, org, cadence):
        customer = CustomerFactory(owner=org.rep_a, tier=Tier.A)
        recent = timezone.now() - timedelta(hours=1)
        services.activity_log(by=org.rep_a, customer=customer, kind=kind(), subject="Recent", done_at=recent)
        services.activity_log(by=org.rep_a, customer=customer, kind=kind(), subject="Old",
                              done_at=recent - timedelta(days=10))
        customer.refresh_from_db()
        assert customer.last_contacted_at == recent

    def test_same_idempotency_key_logs_once(self, org):
        """A double submit / a retried request carries the same key: one activity, the second call
        returns the first and says it was not created."""
        customer = CustomerFactory(owner=org.rep_a)
        first, created = services.activity_log(
            by=org.rep_a, customer=customer, kind=kind(), subject="Call", idempotency_key="k-1"
        )
        second, created_again = services.activity_log(
            by=org.rep_a, customer=customer, kind=kind(), subject="Call (again)", idempotency_key="k-1"
        )
        assert created and not created_again
        assert second.pk == first.pk
        assert Activity.objects.count() == 1
        other, created_other = services.activity_log(
            by=org.rep_a, customer=customer, kind=kind(), subject="Another", idempotency_key="k-2"
        )
        assert created_other and Activity.objects.count() == 2

    def test_keys_are_per_owner(self, org):
        a = CustomerFactory(owner=org.rep_a)
        b = CustomerFactory(owner=org.rep_b)
        services.activity_log(by=org.rep_a, customer=a, kind=kind(), subject="x", idempotency_key="same")
        services.activity_log(by=org.rep_b, customer=b, kind=kind(), subject="y", idempotency_key="same")
        assert Activity.objects.count() == 2

    def test_out_of_scope_customer_is_refused(self, org):
        customer = CustomerFactory(owner=org.rep_b)
        with pytest.raises(PermissionDenied):
            services.activity_log(by=org.rep_a, customer=customer, kind=kind(), subject="x")
        assert not Activity.objects.exists()

    def test_contact_of_another_customer_is_refused(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        stranger = ContactFactory(customer=CustomerFactory(owner=org.rep_a))
        with pytest.raises(ValidationError):
            services.activity_log(by=org.rep_a, customer=customer, kind=kind(), subject="x", contact=stranger)

    def test_next_step_with_a_time_plans_the_follow_up(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        when = timezone.now() + timedelta(days=3)
        logged, _created = services.activity_log(
            by=org.rep_a, customer=customer, kind=kind("call"), subject="Call", outcome="positive",
            next_step="Send the quote", follow_up_at=when, idempotency_key="k",
        )
        planned = Activity.objects.get(status=ActivityStatus.PLANNED)
        assert (planned.subject, planned.planned_at, planned.owner) == ("Send the quote", when, org.rep_a)
        services.activity_log(by=org.rep_a, customer=customer, kind=kind("call"), subject="Call",
                              next_step="Send the quote", follow_up_at=when, idempotency_key="k")
        assert Activity.objects.count() == 2  # the repeat plans nothing more

    def test_deal_activity_moves_the_deals_last_activity(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        pipeline = pipeline_ensure_default()
        stage = pipeline.stages.filter(kind="open").order_by("order").first()
        deal = Opportunity.objects.create(pipeline=pipeline, stage=stage, customer=customer, owner=org.rep_a,
                                          title="Deal")
        done_at = timezone.now() - timedelta(minutes=5)
        services.activity_log(by=org.rep_a, customer=customer, opportunity=deal, kind=kind("visit"),
                              subject="Visit", done_at=done_at)
        deal.refresh_from_db()
        assert deal.last_activity_at == done_at


@pytest.mark.django_db(transaction=True)
class TestQuickLogRace:
    def test_two_simultaneous_submissions_with_one_key_make_one_activity(self, org):
        """Two requests with the same key at the same moment (threads, PostgreSQL): one activity."""
        customer = CustomerFactory(owner=org.rep_a)
        call = kind()
        barrier = threading.Barrier(2)
        results, errors = [], []

        def submit():
            try:
                barrier.wait(timeout=10)
                results.append(services.activity_log(
                    by=org.rep_a, customer=customer, kind=call, subject="Call", idempotency_key="race",
                ))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=submit) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
        assert Activity.objects.count() == 1
        assert sorted(created for _activity, created in results) == [False, True]
        assert {activity.pk for activity, _created in results} == {Activity.objects.get().pk}


@pytest.mark.django_db
class TestActivityComplete:
    def test_completing_touches_the_customer(self, org, cadence):
        customer = CustomerFactory(owner=org.rep_a, tier=Tier.B)
        activity = ActivityFactory(customer=customer)
        done_at = timezone.now()
        services.activity_complete(activity=activity, by=org.rep_a, done_at=done_at, outcome="neutral",
                                   next_step="Call again")
        activity.refresh_from_db()
        customer.refresh_from_db()
        assert (activity.status, activity.outcome, activity.next_step) == ("done", "neutral", "Call again")
        assert customer.next_follow_up_at == done_at + timedelta(days=14)

    def test_only_planned_can_be_completed(self, org):
        activity = ActivityFactory(customer=CustomerFactory(owner=org.rep_a))
        services.activity_cancel(activity=activity, by=org.rep_a)
        with pytest.raises(ValidationError):
            services.activity_complete(activity=activity, by=org.rep_a)

    def test_who_may_change(self, org):
        """The owner and their managers may; another rep, or the manager of another team, may not."""
        activity = ActivityFactory(customer=CustomerFactory(owner=org.rep_a))
        for outsider in (org.rep_a2, org.manager_b, org.rep_b):
            with pytest.raises(PermissionDenied):
                services.activity_cancel(activity=activity, by=outsider)
        services.activity_reschedule(activity=activity, by=org.manager_a,
                                     planned_at=timezone.now() + timedelta(days=2))
        services.activity_cancel(activity=activity, by=org.director)
        activity.refresh_from_db()
        assert activity.status == ActivityStatus.CANCELLED

    def test_reschedule_needs_a_time(self, org):
        activity = ActivityFactory(customer=CustomerFactory(owner=org.rep_a))
        with pytest.raises(ValidationError):
            services.activity_reschedule(activity=activity, by=org.rep_a, planned_at=None, due_at=None)


@pytest.mark.django_db
class TestActivityPlan:
    def test_manager_plans_for_a_rep_of_the_team_only(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        when = timezone.now() + timedelta(days=1)
        activity, _ = services.activity_plan(by=org.manager_a, customer=customer, kind=kind(), subject="Call",
                                             planned_at=when, owner=org.rep_a)
        assert activity.owner == org.rep_a and activity.created_by == org.manager_a
        with pytest.raises(PermissionDenied):
            services.activity_plan(by=org.manager_b, customer=customer, kind=kind(), subject="Call",
                                   planned_at=when, owner=org.rep_a)

    def test_a_planned_activity_needs_a_time(self, org):
        with pytest.raises(ValidationError):
            services.activity_plan(by=org.rep_a, customer=CustomerFactory(owner=org.rep_a), kind=kind(),
                                   subject="x")


@pytest.mark.django_db
class TestPlans:
    def test_series(self, org):
        """Weekly calls to an A-tier customer: N planned activities a week apart."""
        customer = CustomerFactory(owner=org.rep_a, tier=Tier.A)
        first = timezone.now().replace(microsecond=0) + timedelta(days=1)
        plan = services.plan_series_create(by=org.manager_a, customer=customer, owner=org.rep_a, kind=kind(),
                                           subject="Weekly call", first_at=first, interval_days=7, occurrences=4)
        times = list(plan.activities.order_by("planned_at").values_list("planned_at", flat=True))
        assert times == [first + timedelta(days=7 * n) for n in range(4)]
        assert set(plan.activities.values_list("owner", "status")) == {(org.rep_a.pk, ActivityStatus.PLANNED)}

    def test_series_limits(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        for interval, count in ((0, 3), (7, 0), (7, 53)):
            with pytest.raises(ValidationError):
                services.plan_series_create(by=org.rep_a, customer=customer, owner=org.rep_a, kind=kind(),
                                            subject="x", first_at=timezone.now(), interval_days=interval,
                                            occurrences=count)
        assert not ActivityPlan.objects.exists()

    def test_onboarding_template(self, org):
        """The seeded onboarding template: a call the next day, a visit a week later (then a check-in)."""
        customer = CustomerFactory(owner=org.rep_a)
        template = PlanTemplate.objects.get(name_en="Onboarding")
        start = date(2026, 3, 2)
        plan = services.plan_template_apply(by=org.rep_a, customer=customer, owner=org.rep_a, template=template,
                                            start=start)
        tz = timezone.get_current_timezone()
        steps = list(plan.activities.order_by("planned_at").values_list("kind__code", "planned_at"))
        assert steps[:2] == [
            ("call", datetime.combine(date(2026, 3, 3), time(10), tzinfo=tz)),
            ("visit", datetime.combine(date(2026, 3, 9), time(10), tzinfo=tz)),
        ]

    def test_cancel_plan_cancels_what_is_still_planned(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        plan = services.plan_series_create(by=org.rep_a, customer=customer, owner=org.rep_a, kind=kind(),
                                           subject="x", first_at=timezone.now() + timedelta(days=1),
                                           interval_days=7, occurrences=3)
        first = plan.activities.order_by("planned_at").first()
        services.activity_complete(activity=first, by=org.rep_a)
        with pytest.raises(PermissionDenied):
            services.plan_cancel(plan=plan, by=org.rep_b)
        assert services.plan_cancel(plan=plan, by=org.rep_a) == 2
        assert sorted(plan.activities.values_list("status", flat=True)) == ["cancelled", "cancelled", "done"]


@pytest.mark.django_db
class TestCalendarFeed:
    def test_reset_changes_the_token_and_revoke_removes_it(self, org):
        feed = services.calendar_feed_get_or_create(user=org.rep_a)
        old = feed.token
        assert len(old) >= 40
        assert services.calendar_feed_get_or_create(user=org.rep_a).token == old
        assert services.calendar_feed_reset(user=org.rep_a).token != old
        assert services.calendar_feed_revoke(user=org.rep_a)
        assert not CalendarFeed.objects.filter(user=org.rep_a).exists()


def test_customer_model_is_the_leads_one():
    assert Activity._meta.get_field("customer").related_model is Customer
