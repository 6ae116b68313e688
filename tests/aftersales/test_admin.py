"""The admin edits the rules (kinds, SLA policies, settings, templates) and shows tickets read-only."""

import pytest
from django.urls import reverse

from aftersales.models import ServiceSettings, SlaPolicy, TicketKind

from .factories import make_ticket


@pytest.mark.django_db
class TestAdmin:
    @pytest.mark.parametrize(
        "name", ["ticket", "ticketkind", "slapolicy", "servicesettings", "serviceplantemplate", "serviceplan",
                 "slabreach", "satisfactionsurvey", "customerportal"],
    )
    def test_changelists_open_for_admins_only(self, org, client_for, name):
        url = reverse(f"admin:aftersales_{name}_changelist")
        assert client_for(org.admin).get(url).status_code == 200
        assert client_for(org.manager_a).get(url).status_code == 302

    def test_ticket_change_page_is_read_only_for_the_lifecycle(self, org, client_for):
        ticket = make_ticket(owner=org.rep_a)
        response = client_for(org.admin).get(reverse("admin:aftersales_ticket_change", args=[ticket.pk]))
        assert response.status_code == 200
        assert 'name="status"' not in response.content.decode()

    def test_rules_are_editable(self, org, client_for):
        client = client_for(org.admin)
        policy = SlaPolicy.objects.get(priority="urgent")
        response = client.post(reverse("admin:aftersales_slapolicy_change", args=[policy.pk]), {
            "priority": "urgent", "response_minutes": 30, "resolution_minutes": 240, "warning_minutes": 10,
        })
        assert response.status_code == 302
        policy.refresh_from_db()
        assert (policy.response_minutes, policy.business_hours_only) == (30, False)
        settings_row = ServiceSettings.load()
        response = client.post(reverse("admin:aftersales_servicesettings_change", args=[settings_row.pk]), {
            "reopen_window_days": 10, "survey_valid_days": 7, "business_day_start": "18:00",
            "business_day_end": "09:00", "business_weekdays": "1,2,3", "public_form_limit_per_hour": 5,
        })
        assert response.status_code == 200  # refused: the day ends before it starts
        assert ServiceSettings.load().reopen_window_days == 7
        assert TicketKind.objects.filter(code="complaint").exists()

    def test_a_ticket_edited_here_moves_its_version_on(self, org, client_for):
        ticket = make_ticket(owner=org.rep_a)
        response = client_for(org.admin).post(reverse("admin:aftersales_ticket_change", args=[ticket.pk]), {
            "subject": "Printer on fire", "description": "",
            **{f"{prefix}-{key}": value for prefix in ("status_changes", "comments", "breaches")
               for key, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"), ("MIN_NUM_FORMS", "0"),
                                  ("MAX_NUM_FORMS", "1000"))},
        })
        assert response.status_code == 302, response.content.decode()[:3000]
        ticket.refresh_from_db()
        assert (ticket.subject, ticket.version) == ("Printer on fire", 2)
