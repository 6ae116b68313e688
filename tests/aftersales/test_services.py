"""After-sales services: the ticket lifecycle, SLA deadlines with the paused clock, breaches and
warnings, surveys, attachments, assignment and service plans."""

import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from aftersales import services
from aftersales.models import (
    PlanItemStatus,
    PlanOwnerSource,
    Priority,
    SatisfactionSurvey,
    ServicePlanItem,
    ServicePlanTemplate,
    ServiceSettings,
    SlaBreach,
    SlaPolicy,
    Ticket,
    TicketStatus,
    TicketStatusChange,
)
from notifications import services as notifications
from notifications.models import Notification, Reminder
from tests.factories import CustomerFactory

from .factories import ContactFactory, kind, make_ticket

SH = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=SH)  # Monday 2 March 2026, 10:00


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


def move(ticket, transition, when, by=None, **kwargs):
    return services.ticket_transition(ticket=ticket, transition=transition, by=by, now=when, **kwargs)


# The path that reaches each status from "open", and the moves allowed from it.
PATHS = {
    TicketStatus.OPEN: [],
    TicketStatus.IN_PROGRESS: ["start"],
    TicketStatus.WAITING: ["start", "wait_on_customer"],
    TicketStatus.RESOLVED: ["start", "resolve"],
    TicketStatus.CLOSED: ["start", "resolve", "close"],
    TicketStatus.REOPENED: ["start", "resolve", "reopen"],
}
ALLOWED = {
    TicketStatus.OPEN: {"start": TicketStatus.IN_PROGRESS},
    TicketStatus.IN_PROGRESS: {"wait_on_customer": TicketStatus.WAITING, "resolve": TicketStatus.RESOLVED},
    TicketStatus.WAITING: {"resume": TicketStatus.IN_PROGRESS},
    TicketStatus.RESOLVED: {"close": TicketStatus.CLOSED, "reopen": TicketStatus.REOPENED},
    TicketStatus.CLOSED: {},
    TicketStatus.REOPENED: {"start": TicketStatus.IN_PROGRESS},
}
MATRIX = [
    (status, transition, ALLOWED[status].get(transition))
    for status in PATHS
    for transition in services.TRANSITIONS
]


def ticket_in(status, org, start=MONDAY):
    ticket = make_ticket(owner=org.rep_a, now=start)
    when = start
    for step in PATHS[status]:
        when += timedelta(minutes=10)
        ticket = move(ticket, step, when, by=org.rep_a)
    assert ticket.status == status
    return ticket, when


@pytest.mark.django_db
class TestTicketTransition:
    @pytest.mark.parametrize(("status", "transition", "target"), MATRIX,
                             ids=[f"{s}-{t}" for s, t, _ in MATRIX])
    def test_lifecycle_matrix(self, org, status, transition, target):
        """Every allowed move reaches its target and is recorded; every other move is refused and
        leaves the ticket and its history untouched."""
        ticket, when = ticket_in(status, org)
        history = TicketStatusChange.objects.filter(ticket=ticket).count()
        when += timedelta(minutes=10)
        if target is None:
            with pytest.raises(services.TransitionError):
                move(ticket, transition, when, by=org.rep_a)
            ticket.refresh_from_db()
            assert ticket.status == status
            assert TicketStatusChange.objects.filter(ticket=ticket).count() == history
            assert transition not in services.allowed_transitions(ticket=ticket, now=when)
        else:
            assert transition in services.allowed_transitions(ticket=ticket, now=when)
            moved = move(ticket, transition, when, by=org.manager_a, note="because")
            moved.refresh_from_db()
            assert moved.status == target
            last = TicketStatusChange.objects.filter(ticket=ticket).last()
            assert (last.from_status, last.to_status, last.by, last.at, last.note) == (
                status, target, org.manager_a, when, "because"
            )

    def test_opening_is_recorded(self, org):
        ticket = make_ticket(owner=org.rep_a, created_by=org.rep_a, now=MONDAY)
        (opening,) = TicketStatusChange.objects.filter(ticket=ticket)
        assert (opening.from_status, opening.to_status, opening.by, opening.at) == ("", "open", org.rep_a, MONDAY)

    def test_reopen_only_within_the_window(self, org):
        """Resolved tickets can be reopened for N days (the admin setting), not after."""
        ServiceSettings.objects.filter(pk=1).update(reopen_window_days=3)
        ticket, resolved_at = ticket_in(TicketStatus.RESOLVED, org)
        late = resolved_at + timedelta(days=3, minutes=1)
        assert "reopen" not in services.allowed_transitions(ticket=ticket, now=late)
        with pytest.raises(services.TransitionError) as refused:
            move(ticket, "reopen", late)
        assert refused.value.code == "reopen_window_passed"
        in_time = resolved_at + timedelta(days=2, hours=23)
        assert move(ticket, "reopen", in_time, by_customer=True).status == TicketStatus.REOPENED
        assert TicketStatusChange.objects.filter(ticket=ticket).last().by_customer

    def test_starting_an_unassigned_ticket_makes_you_its_owner(self, org):
        ticket = make_ticket(customer=CustomerFactory(owner=None, team=org.team_a), now=MONDAY)
        assert ticket.owner is None and ticket.team == org.team_a
        started = move(ticket, "start", MONDAY + timedelta(minutes=5), by=org.rep_a2)
        assert started.owner == org.rep_a2

    def test_unknown_move_is_refused(self, org):
        ticket = make_ticket(owner=org.rep_a, now=MONDAY)
        with pytest.raises(services.TransitionError):
            move(ticket, "delete", MONDAY)


@pytest.mark.django_db
class TestSlaDeadlines:
    """Deadlines come from the priority's policy, count working time and skip the paused clock."""

    def policy(self, priority, response, resolution, business=True, warning=60):
        SlaPolicy.objects.update_or_create(
            priority=priority,
            defaults={"response_minutes": response, "resolution_minutes": resolution,
                      "warning_minutes": warning, "business_hours_only": business},
        )

    def test_deadlines_from_the_policy_around_the_clock(self, org):
        self.policy(Priority.URGENT, 60, 8 * 60, business=False, warning=30)
        ticket = make_ticket(owner=org.rep_a, priority=Priority.URGENT, now=at(6, 20))  # Friday 20:00
        assert ticket.response_due_at == at(6, 21)
        assert ticket.resolution_due_at == at(7, 4)
        assert ticket.response_warn_at == at(6, 20, 30)

    def test_deadlines_in_business_hours(self, org):
        """Friday 17:00, 4 business hours to resolve (9-18, Mon-Fri): Monday 12:00."""
        self.policy(Priority.HIGH, 60, 4 * 60, business=True)
        ticket = make_ticket(owner=org.rep_a, priority=Priority.HIGH, now=at(6, 17))
        assert ticket.response_due_at == at(6, 18)
        assert ticket.resolution_due_at == at(9, 12)

    def test_waiting_on_the_customer_pauses_the_clock(self, org):
        """Opened Monday 10:00 with 8 h (24x7) to resolve: due 18:00. Waiting on the customer from
        11:00 to 14:30 moves it by 3.5 h to 21:30; a second wait 15:00-16:00 to 22:30."""
        self.policy(Priority.NORMAL, 60, 8 * 60, business=False)
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        assert ticket.resolution_due_at == at(2, 18)
        ticket = move(ticket, "start", at(2, 10, 30))
        ticket = move(ticket, "wait_on_customer", at(2, 11))
        assert ticket.resolution_due_at == at(2, 18)  # unknown while paused: the last value stays
        ticket = move(ticket, "resume", at(2, 14, 30))
        assert ticket.resolution_due_at == at(2, 21, 30)
        assert ticket.resolution_warn_at == at(2, 20, 30)
        ticket = move(ticket, "wait_on_customer", at(2, 15))
        ticket = move(ticket, "resume", at(2, 16))
        ticket.refresh_from_db()
        assert ticket.resolution_due_at == at(2, 22, 30)

    def test_paused_clock_in_business_hours(self, org):
        """Friday 17:00 + 4 business hours = Monday 12:00; waiting on the customer Friday 17:30 to
        Monday 10:00 leaves 3.5 h from Monday 10:00: 13:30 (the weekend costs nothing either way)."""
        self.policy(Priority.HIGH, 30, 4 * 60, business=True)
        ticket = make_ticket(owner=org.rep_a, priority=Priority.HIGH, now=at(6, 17))
        ticket = move(ticket, "start", at(6, 17, 10))
        ticket = move(ticket, "wait_on_customer", at(6, 17, 30))
        ticket = move(ticket, "resume", at(9, 10))
        assert ticket.resolution_due_at == at(9, 13, 30)

    def test_the_customer_replying_resumes_the_clock(self, org):
        self.policy(Priority.NORMAL, 60, 8 * 60, business=False)
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        move(ticket, "start", at(2, 10, 30))
        move(ticket, "wait_on_customer", at(2, 11))
        services.ticket_comment_add(ticket=ticket, author=None, by_customer=True, body="Here it is", now=at(2, 12))
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.IN_PROGRESS
        assert ticket.resolution_due_at == at(2, 19)
        assert TicketStatusChange.objects.filter(ticket=ticket).last().by_customer

    def test_time_resolved_before_a_reopen_is_not_counted(self, org):
        """Resolved at 12:00, reopened at 15:00: the 3 h in between do not count (due 18:00 -> 21:00)."""
        self.policy(Priority.NORMAL, 60, 8 * 60, business=False)
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        move(ticket, "start", at(2, 10, 30))
        move(ticket, "resolve", at(2, 12))
        ticket = move(ticket, "reopen", at(2, 15))
        assert ticket.resolution_due_at == at(2, 21)

    def test_policy_edits_do_not_move_existing_tickets(self, org):
        self.policy(Priority.NORMAL, 60, 8 * 60, business=False)
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        self.policy(Priority.NORMAL, 10, 20, business=False)
        ticket = move(ticket, "start", at(2, 10, 30))
        assert ticket.resolution_due_at == at(2, 18)

    def test_changing_the_priority_takes_its_targets_from_the_opening(self, org):
        self.policy(Priority.NORMAL, 60, 8 * 60, business=False)
        self.policy(Priority.URGENT, 15, 2 * 60, business=False)
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        ticket = services.ticket_update(ticket=ticket, by=org.rep_a, priority=Priority.URGENT)
        assert (ticket.response_due_at, ticket.resolution_due_at) == (at(2, 10, 15), at(2, 12))

    def test_no_policy_no_deadline(self, org):
        SlaPolicy.objects.filter(priority=Priority.LOW).delete()
        ticket = make_ticket(owner=org.rep_a, priority=Priority.LOW, now=at(2, 10))
        assert ticket.response_due_at is None and ticket.resolution_due_at is None

    def test_late_resolution_is_recorded_as_a_breach(self, org):
        self.policy(Priority.NORMAL, 60, 2 * 60, business=False)
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        move(ticket, "start", at(2, 10, 30))
        move(ticket, "resolve", at(2, 13))
        breach = SlaBreach.objects.get(ticket=ticket)
        assert (breach.kind, breach.due_at, breach.notified_at) == ("resolution", at(2, 12), None)

    def test_a_reply_to_the_customer_is_the_first_response(self, org):
        self.policy(Priority.NORMAL, 60, 8 * 60, business=False)
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        services.ticket_comment_add(ticket=ticket, author=org.rep_a, body="internal", now=at(2, 10, 10))
        ticket.refresh_from_db()
        assert ticket.first_responded_at is None
        services.ticket_comment_add(ticket=ticket, author=org.rep_a, body="We are on it", visibility="public",
                                    now=at(2, 10, 20))
        ticket.refresh_from_db()
        assert ticket.first_responded_at == at(2, 10, 20)


class SentReminders:
    """The messages after-sales handed to the reminder mechanism (notifications.Reminder rows)."""

    def rows(self):
        reminders = Reminder.objects.filter(source__startswith="aftersales.").select_related("recipient")
        return [{"kind": r.source.removeprefix("aftersales."), "user": r.recipient, "title": r.title}
                for r in reminders.order_by("id")]

    def __iter__(self):
        return iter(self.rows())

    def __eq__(self, other):
        return self.rows() == other


@pytest.fixture
def delivered(db):
    return SentReminders()


@pytest.mark.django_db
class TestSlaScan:
    def setup_policy(self):
        SlaPolicy.objects.update_or_create(
            priority=Priority.NORMAL,
            defaults={"response_minutes": 60, "resolution_minutes": 4 * 60, "warning_minutes": 30,
                      "business_hours_only": False},
        )

    def test_breach_is_recorded_and_notified_exactly_once(self, org, delivered):
        """A ticket past its response deadline: one breach row, one message each to the owner and
        the owner's team manager; later scans send nothing more."""
        self.setup_policy()
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        services.sla_scan(now=at(2, 11, 1))
        breach = SlaBreach.objects.get(ticket=ticket, kind="response")
        assert breach.notified_at == at(2, 11, 1) and breach.owner == org.rep_a
        breach_messages = [m for m in delivered if m["kind"] == "sla_breach"]
        assert sorted(m["user"].username for m in breach_messages) == ["manager_a", "rep_a"]
        services.sla_scan(now=at(2, 11, 6))
        services.sla_scan(now=at(2, 11, 30))
        assert len([m for m in delivered if m["kind"] == "sla_breach"]) == 2
        assert SlaBreach.objects.filter(ticket=ticket).count() == 1

    def test_breach_reaches_the_bell_once(self, org, delivered):
        """Through the notifications app: one in-app notification each for the owner and the manager,
        in their language, however often the scans run."""
        self.setup_policy()
        org.manager_a.language = "en"
        org.manager_a.save()
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        for minute in (1, 6, 11):
            services.sla_scan(now=at(2, 11, minute))
            notifications.reminders_scan()
            notifications.deliveries_send()
        bell = Notification.objects.filter(verb="aftersales.sla_breach").select_related("user")
        assert sorted(n.user.username for n in bell) == ["manager_a", "rep_a"]
        english = bell.get(user=org.manager_a)
        assert english.title.startswith("SLA breached") and ticket.reference in english.title
        assert english.link == ticket.get_absolute_url()
        assert bell.get(user=org.rep_a).title.startswith("SLA 已超时")  # rep_a reads the default, Chinese

    def test_resolution_breach_is_a_second_kind(self, org, delivered):
        self.setup_policy()
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        move(ticket, "start", at(2, 10, 30))
        services.sla_scan(now=at(2, 14, 1))
        assert list(SlaBreach.objects.filter(ticket=ticket).values_list("kind", flat=True)) == ["resolution"]
        assert len([m for m in delivered if m["kind"] == "sla_breach"]) == 2

    def test_warning_before_the_deadline_once(self, org, delivered):
        self.setup_policy()
        make_ticket(owner=org.rep_a, now=at(2, 10))
        services.sla_scan(now=at(2, 10, 29))
        assert delivered == []
        services.sla_scan(now=at(2, 10, 31))
        services.sla_scan(now=at(2, 10, 40))
        assert [m["kind"] for m in delivered] == ["sla_warning", "sla_warning"]  # owner + manager

    def test_paused_tickets_do_not_breach(self, org, delivered):
        self.setup_policy()
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        move(ticket, "start", at(2, 10, 10))
        move(ticket, "wait_on_customer", at(2, 10, 20))
        services.sla_scan(now=at(2, 18))
        assert not SlaBreach.objects.exists()
        assert [m for m in delivered if m["kind"] == "sla_breach"] == []

    def test_unassigned_ticket_notifies_the_queue_teams_manager(self, org, delivered):
        self.setup_policy()
        make_ticket(customer=CustomerFactory(owner=None, team=org.team_b), now=at(2, 10))
        services.sla_scan(now=at(2, 11, 1))
        assert [m["user"].username for m in delivered if m["kind"] == "sla_breach"] == ["manager_b"]

    def test_a_manager_owning_a_ticket_hears_from_the_manager_above(self, org, delivered):
        self.setup_policy()
        make_ticket(owner=org.manager_a, now=at(2, 10))
        services.sla_scan(now=at(2, 11, 1))
        assert sorted(m["user"].username for m in delivered if m["kind"] == "sla_breach") == ["director", "manager_a"]

    def test_resolved_tickets_close_after_the_reopen_window(self, org):
        self.setup_policy()
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        move(ticket, "start", at(2, 10, 10))
        move(ticket, "resolve", at(2, 11))
        services.sla_scan(now=at(8, 11))
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.RESOLVED
        services.sla_scan(now=at(9, 11, 1))
        ticket.refresh_from_db()
        assert ticket.status == TicketStatus.CLOSED
        last = TicketStatusChange.objects.filter(ticket=ticket).last()
        assert last.by is None and not last.by_customer


@pytest.mark.django_db
class TestTicketEventsNotify:
    def test_a_customer_ticket_tells_the_queue_manager_and_a_reply_the_owner(
        self, org, delivered, django_capture_on_commit_callbacks
    ):
        portal = services.portal_get_or_create(customer=CustomerFactory(owner=None, team=org.team_a))
        with django_capture_on_commit_callbacks(execute=True):
            ticket = services.public_ticket_submit(portal=portal, kind=kind(), subject="Help", description="x",
                                                   name="Li", email="li@example.com")
        assert [(m["kind"], m["user"]) for m in delivered] == [("ticket_opened", org.manager_a)]
        with django_capture_on_commit_callbacks(execute=True):
            services.ticket_assign(ticket=ticket, by=org.manager_a, owner=org.rep_a)
            services.ticket_comment_add(ticket=ticket, author=None, by_customer=True, body="Any news?")
        assert [(m["kind"], m["user"]) for m in delivered][1:] == [
            ("ticket_assigned", org.rep_a), ("ticket_reply", org.rep_a)
        ]

    def test_taking_a_ticket_yourself_notifies_nobody(self, org, delivered, django_capture_on_commit_callbacks):
        ticket = make_ticket(customer=CustomerFactory(owner=None, team=org.team_a))
        with django_capture_on_commit_callbacks(execute=True):
            services.ticket_assign(ticket=ticket, by=org.rep_a, owner=org.rep_a)
        assert delivered == []


@pytest.mark.django_db(transaction=True)
class TestSlaScanRace:
    def test_two_concurrent_scans_notify_once(self, org, delivered):
        """Two beat processes scanning at the same moment: one breach row, one notification each."""
        SlaPolicy.objects.update_or_create(
            priority=Priority.NORMAL,
            defaults={"response_minutes": 60, "resolution_minutes": 600, "warning_minutes": 0,
                      "business_hours_only": False},
        )
        ticket = make_ticket(owner=org.rep_a, now=at(2, 10))
        barrier = threading.Barrier(2)
        errors = []

        def scan():
            try:
                barrier.wait()
                services.sla_scan(now=at(2, 11, 30))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=scan) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert SlaBreach.objects.filter(ticket=ticket).count() == 1
        assert len([m for m in delivered if m["kind"] == "sla_breach"]) == 2  # owner + manager, once


@pytest.mark.django_db(transaction=True)
class TestTransitionRace:
    def test_two_people_resolving_at_once(self, org):
        """Both click "Resolve" at the same moment: one move, one history row, one survey; the other
        person is told the ticket cannot be moved that way any more."""
        ticket = make_ticket(owner=org.rep_a, customer=CustomerFactory(owner=org.rep_a, email="x@example.com"))
        services.ticket_transition(ticket=ticket, transition="start", by=org.rep_a)
        barrier = threading.Barrier(2)
        outcomes = []

        def resolve(user):
            try:
                barrier.wait()
                services.ticket_transition(ticket=ticket, transition="resolve", by=user)
                outcomes.append("moved")
            except services.TransitionError:
                outcomes.append("refused")
            finally:
                connection.close()

        threads = [threading.Thread(target=resolve, args=(u,)) for u in (org.rep_a, org.manager_a)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["moved", "refused"]
        assert TicketStatusChange.objects.filter(ticket=ticket, to_status=TicketStatus.RESOLVED).count() == 1
        assert SatisfactionSurvey.objects.filter(ticket=ticket).count() == 1


@pytest.mark.django_db
class TestSurvey:
    def resolve(self, org, contact_email="buyer@customer.example.com", when=MONDAY, django_capture_on_commit_callbacks=None):
        customer = CustomerFactory(owner=org.rep_a, email="office@customer.example.com")
        contact = ContactFactory(customer=customer, email=contact_email)
        ticket = make_ticket(customer=customer, contact=contact, owner=org.rep_a, now=when)
        move(ticket, "start", when + timedelta(minutes=5))
        move(ticket, "resolve", when + timedelta(minutes=10))
        return ticket

    def test_resolving_sends_the_survey_to_the_contact(self, org, django_capture_on_commit_callbacks, settings):
        settings.CELERY_TASK_ALWAYS_EAGER = True
        with django_capture_on_commit_callbacks(execute=True):
            ticket = self.resolve(org)
        survey = SatisfactionSurvey.objects.get(ticket=ticket)
        assert survey.sent_to == "buyer@customer.example.com"
        assert survey.expires_at == MONDAY + timedelta(minutes=10, days=14)
        (message,) = [m for m in mail.outbox if "buyer@customer.example.com" in m.to]  # staff get their own
        assert survey.get_absolute_url() in message.body
        survey.refresh_from_db()
        assert survey.sent_at is not None

    def test_falls_back_to_the_customer_email(self, org):
        ticket = self.resolve(org, contact_email="")
        assert SatisfactionSurvey.objects.get(ticket=ticket).sent_to == "office@customer.example.com"

    def test_answer_once(self, org):
        """The token works once: a second answer is refused and the first one stays."""
        ticket = self.resolve(org)
        survey = ticket.survey
        services.survey_answer(survey=survey, score=4, comment="Quick, thanks", now=MONDAY + timedelta(hours=1))
        with pytest.raises(services.SurveyClosed):
            services.survey_answer(survey=survey, score=1, now=MONDAY + timedelta(hours=2))
        survey.refresh_from_db()
        assert (survey.score, survey.comment) == (4, "Quick, thanks")

    def test_expired_survey_refuses_answers(self, org):
        ticket = self.resolve(org)
        with pytest.raises(services.SurveyClosed):
            services.survey_answer(survey=ticket.survey, score=5, now=ticket.survey.expires_at)
        ticket.survey.refresh_from_db()
        assert ticket.survey.answered_at is None

    def test_score_must_be_one_to_five(self, org):
        ticket = self.resolve(org)
        with pytest.raises(ValidationError):
            services.survey_answer(survey=ticket.survey, score=6, now=MONDAY)

    def test_one_survey_per_ticket(self, org):
        """Reopened and resolved again: the unanswered survey is renewed; an answered one is not resent."""
        ticket = self.resolve(org)
        first = ticket.survey
        move(ticket, "reopen", MONDAY + timedelta(hours=1))
        move(ticket, "start", MONDAY + timedelta(hours=2))
        move(ticket, "resolve", MONDAY + timedelta(hours=3))
        assert SatisfactionSurvey.objects.filter(ticket=ticket).count() == 1
        renewed = SatisfactionSurvey.objects.get(ticket=ticket)
        assert renewed.token == first.token and renewed.expires_at > first.expires_at
        services.survey_answer(survey=renewed, score=5, now=MONDAY + timedelta(hours=4))
        move(ticket, "reopen", MONDAY + timedelta(hours=5))
        move(ticket, "start", MONDAY + timedelta(hours=6))
        move(ticket, "resolve", MONDAY + timedelta(hours=7))
        renewed.refresh_from_db()
        assert renewed.score == 5 and renewed.expires_at == MONDAY + timedelta(hours=3, days=14)


@pytest.mark.django_db(transaction=True)
class TestSurveyRace:
    def test_two_simultaneous_answers_one_wins(self, org):
        customer = CustomerFactory(owner=org.rep_a)
        ticket = make_ticket(customer=customer, owner=org.rep_a)
        survey = SatisfactionSurvey.objects.create(ticket=ticket, expires_at=MONDAY + timedelta(days=3650))
        barrier = threading.Barrier(2)
        outcomes = []

        def answer(score):
            try:
                barrier.wait()
                services.survey_answer(survey=survey, score=score)
                outcomes.append("ok")
            except services.SurveyClosed:
                outcomes.append("closed")
            finally:
                connection.close()

        threads = [threading.Thread(target=answer, args=(score,)) for score in (2, 5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["closed", "ok"]


@pytest.mark.django_db
class TestAttachments:
    def ticket(self, org):
        return make_ticket(owner=org.rep_a)

    @pytest.mark.parametrize(
        ("name", "content", "ok"),
        [
            ("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 20, True),
            ("report.pdf", b"%PDF-1.7 ...", True),
            ("notes.txt", "错误代码 E42".encode(), True),
            ("photo.png", b"MZ\x90\x00 not a png", False),
            ("script.exe", b"MZ\x90\x00", False),
            ("page.html", b"<script>alert(1)</script>", False),
            ("noextension", b"data", False),
            ("empty.txt", b"", False),
            ("binary.txt", b"\x00\x01\x02", False),
        ],
    )
    def test_type_is_checked_by_extension_and_content(self, org, name, content, ok):
        ticket = self.ticket(org)
        upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
        if ok:
            attachment = services.ticket_attach(ticket=ticket, file=upload, uploaded_by=org.rep_a)
            assert attachment.original_name == name and attachment.size == len(content)
            assert attachment.content_type != "application/octet-stream"  # ours, not the browser's
            assert name not in attachment.file.name  # stored under a random name
        else:
            with pytest.raises(ValidationError):
                services.ticket_attach(ticket=ticket, file=upload, uploaded_by=org.rep_a)

    def test_size_limit(self, org, monkeypatch):
        monkeypatch.setattr(services, "MAX_ATTACHMENT_BYTES", 100)
        upload = SimpleUploadedFile("big.txt", b"a" * 101)
        with pytest.raises(ValidationError) as refused:
            services.ticket_attach(ticket=self.ticket(org), file=upload, uploaded_by=org.rep_a)
        assert refused.value.code == "file_size"


@pytest.mark.django_db
class TestTicketAssign:
    def test_rep_takes_an_unassigned_ticket_but_cannot_assign_others(self, org):
        ticket = make_ticket(customer=CustomerFactory(owner=None, team=org.team_a))
        with pytest.raises(PermissionDenied):
            services.ticket_assign(ticket=ticket, by=org.rep_a, owner=org.rep_a2)
        services.ticket_assign(ticket=ticket, by=org.rep_a, owner=org.rep_a)
        ticket.refresh_from_db()
        assert ticket.owner == org.rep_a
        with pytest.raises(PermissionDenied):
            services.ticket_assign(ticket=ticket, by=org.rep_a2, owner=org.rep_a2)  # already taken
        assert ticket.comments.filter(visibility="internal").count() == 1

    def test_manager_assigns_within_their_teams_only(self, org):
        ticket = make_ticket(owner=org.rep_a)
        services.ticket_assign(ticket=ticket, by=org.manager_a, owner=org.rep_a2)
        with pytest.raises(ValidationError):
            services.ticket_assign(ticket=ticket, by=org.manager_a, owner=org.rep_b)
        ticket.refresh_from_db()
        assert ticket.owner == org.rep_a2

    def test_contact_must_belong_to_the_customer(self, org):
        with pytest.raises(ValidationError):
            make_ticket(owner=org.rep_a, contact=ContactFactory())


@pytest.mark.django_db
class TestServicePlans:
    def template(self, owner_source=PlanOwnerSource.CONTRACT_OWNER, team=None):
        ServicePlanTemplate.objects.update(is_active=False)
        template = ServicePlanTemplate.objects.create(name="Onboarding", owner_source=owner_source, service_team=team)
        template.items.create(title="Onboarding call", kind=kind("consultation"), offset_days=3)
        template.items.create(title="Training", kind=kind("training"), offset_days=14)
        template.items.create(title="Review visit", kind=kind("consultation"), offset_days=90)
        return template

    def test_signing_creates_planned_items_owned_by_the_contract_owner(self, org):
        self.template()
        customer = CustomerFactory(owner=org.rep_a)
        (plan,) = services.contract_signed_apply_plans(customer=customer, owner=org.rep_a2, signed_on=date(2026, 3, 2))
        items = list(plan.items.order_by("due_date"))
        assert [(i.title, i.due_date, i.owner) for i in items] == [
            ("Onboarding call", date(2026, 3, 5), org.rep_a2),
            ("Training", date(2026, 3, 16), org.rep_a2),
            ("Review visit", date(2026, 5, 31), org.rep_a2),
        ]

    def test_service_team_template_leaves_items_in_the_team_queue(self, org):
        self.template(PlanOwnerSource.SERVICE_TEAM, team=org.team_b)
        customer = CustomerFactory(owner=org.rep_a)
        (plan,) = services.contract_signed_apply_plans(customer=customer, owner=org.rep_a, signed_on=date(2026, 3, 2))
        assert {(i.owner, i.team) for i in plan.items.all()} == {(None, org.team_b)}
        assert ServicePlanItem.objects.visible_to(org.rep_b).count() == 3  # the team queue
        assert ServicePlanItem.objects.visible_to(org.rep_a).count() == 0

    def test_items_are_editable_per_customer(self, org):
        self.template()
        customer = CustomerFactory(owner=org.rep_a)
        (plan,) = services.contract_signed_apply_plans(customer=customer, owner=org.rep_a, signed_on=date(2026, 3, 2))
        item = plan.items.first()
        services.plan_item_save(item=item, by=org.manager_a, title="Onboarding call (video)", kind=item.kind,
                                due_date=date(2026, 3, 6), owner=org.rep_a2)
        item.refresh_from_db()
        assert (item.title, item.due_date, item.owner) == ("Onboarding call (video)", date(2026, 3, 6), org.rep_a2)
        services.plan_item_set_status(item=item, by=org.rep_a2, status=PlanItemStatus.DONE)
        item.refresh_from_db()
        assert item.status == PlanItemStatus.DONE and item.done_at is not None

    def test_due_items_remind_their_owner_once(self, org, delivered):
        self.template()
        customer = CustomerFactory(owner=org.rep_a)
        services.contract_signed_apply_plans(customer=customer, owner=org.rep_a, signed_on=date(2026, 3, 2))
        assert services.plan_items_remind(today=date(2026, 3, 4), now=at(4, 9)) == 0
        assert services.plan_items_remind(today=date(2026, 3, 5), now=at(5, 9)) == 1
        assert services.plan_items_remind(today=date(2026, 3, 5), now=at(5, 10)) == 0
        assert [(m["kind"], m["user"]) for m in delivered] == [("plan_item_due", org.rep_a)]

    def test_an_item_becomes_a_ticket(self, org):
        self.template()
        customer = CustomerFactory(owner=org.rep_a)
        (plan,) = services.contract_signed_apply_plans(customer=customer, owner=org.rep_a, signed_on=date(2026, 3, 2))
        item = plan.items.first()
        ticket = services.plan_item_open_ticket(item=item, by=org.rep_a)
        assert (ticket.customer, ticket.owner, ticket.subject, ticket.source) == (
            customer, org.rep_a, "Onboarding call", "service_plan"
        )
        assert services.plan_item_open_ticket(item=item, by=org.rep_a) == ticket
        assert Ticket.objects.count() == 1
