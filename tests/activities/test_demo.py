"""The activities demo data: a year of done activities, planned ones for the coming weeks; idempotent."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import demo as accounts_demo
from activities import demo
from activities.models import Activity, ActivityPlan, ActivityStatus
from leads import demo as leads_demo
from leads.models import Customer


@pytest.mark.django_db
def test_seed_is_idempotent_and_spans_the_year_and_the_coming_weeks():
    accounts_demo.seed(seed=2026)
    leads_demo.seed(seed=2026)
    started = time.monotonic()
    summary = demo.seed(seed=2026)
    assert time.monotonic() - started < 20
    now = timezone.now()
    done = Activity.objects.filter(status=ActivityStatus.DONE)
    planned = Activity.objects.filter(status=ActivityStatus.PLANNED)
    assert done.count() > 500 and "activities" in summary
    assert done.filter(done_at__lt=now - timedelta(days=300)).exists()
    assert planned.filter(planned_at__gt=now + timedelta(days=14)).exists()
    assert planned.filter(planned_at__lt=now).exists()  # a few overdue ones for the rep's day
    assert set(Activity.objects.values_list("kind__code", flat=True)) >= {"call", "visit", "meeting", "wechat"}
    assert ActivityPlan.objects.exists()
    touched = Customer.objects.filter(activities__status=ActivityStatus.DONE).distinct()
    assert not touched.filter(last_contacted_at__isnull=True).exists()
    counts = (Activity.objects.count(), ActivityPlan.objects.count())
    assert "already" in demo.seed(seed=2026)
    assert (Activity.objects.count(), ActivityPlan.objects.count()) == counts
