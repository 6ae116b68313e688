"""Working-time arithmetic behind SLA deadlines (pure functions, no database)."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from aftersales.sla import BusinessCalendar, add_working_time

SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600
CAL = BusinessCalendar(tz=SH, start=time(9), end=time(18), weekdays=frozenset({1, 2, 3, 4, 5}))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026 (Monday 2 March ... Sunday 8 March), Shanghai time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SH)


class TestAroundTheClock:
    def test_adds_plain_time(self):
        assert add_working_time(at(2, 10), 4 * HOUR) == at(2, 14)

    def test_runs_through_nights_and_weekends(self):
        assert add_working_time(at(6, 20), 24 * HOUR) == at(7, 20)

    def test_a_closed_pause_moves_the_deadline_by_its_length(self):
        """Waiting on the customer 11:00-13:00 pushes a 14:00 deadline to 16:00."""
        assert add_working_time(at(2, 10), 4 * HOUR, pauses=[(at(2, 11), at(2, 13))]) == at(2, 16)

    def test_a_pause_after_the_deadline_changes_nothing(self):
        assert add_working_time(at(2, 10), 4 * HOUR, pauses=[(at(2, 15), at(2, 17))]) == at(2, 14)

    def test_overlapping_pauses_count_once(self):
        pauses = [(at(2, 11), at(2, 13)), (at(2, 12), at(2, 14))]
        assert add_working_time(at(2, 10), 4 * HOUR, pauses=pauses) == at(2, 17)

    def test_an_open_pause_before_the_deadline_leaves_it_unknown(self):
        assert add_working_time(at(2, 10), 4 * HOUR, pauses=[(at(2, 11), None)]) is None

    def test_an_open_pause_after_the_deadline_does_not_matter(self):
        assert add_working_time(at(2, 10), 4 * HOUR, pauses=[(at(2, 15), None)]) == at(2, 14)


class TestBusinessHours:
    def test_within_one_day(self):
        assert add_working_time(at(2, 10), 4 * HOUR, CAL) == at(2, 14)

    def test_carries_over_to_the_next_morning(self):
        """4 h from Monday 16:00: 2 h on Monday, 2 h from Tuesday 9:00."""
        assert add_working_time(at(2, 16), 4 * HOUR, CAL) == at(3, 11)

    def test_skips_the_weekend(self):
        """Friday 17:00 + 4 h: 1 h on Friday, 3 h on Monday."""
        assert add_working_time(at(6, 17), 4 * HOUR, CAL) == at(9, 12)

    def test_a_ticket_opened_at_night_starts_at_opening_time(self):
        assert add_working_time(at(2, 22), 2 * HOUR, CAL) == at(3, 11)
        assert add_working_time(at(7, 10), 2 * HOUR, CAL) == at(9, 11)  # Saturday

    def test_a_pause_inside_business_hours_moves_the_deadline(self):
        """Friday 17:00 + 4 h, waiting on the customer Monday 9:30-10:30: Monday 13:00."""
        assert add_working_time(at(6, 17), 4 * HOUR, CAL, [(at(9, 9, 30), at(9, 10, 30))]) == at(9, 13)

    def test_a_pause_outside_business_hours_costs_nothing(self):
        """Waiting over the weekend does not move a deadline that did not count the weekend anyway."""
        assert add_working_time(at(6, 17), 4 * HOUR, CAL, [(at(6, 18, 30), at(9, 8))]) == at(9, 12)

    def test_a_pause_spanning_days(self):
        """Monday 10:00 + 9 h, paused Monday 17:00 to Tuesday 12:00: 7 h counted on Monday, the last
        2 h from Tuesday 12:00, so Tuesday 14:00 (instead of Tuesday 10:00)."""
        assert add_working_time(at(2, 10), 9 * HOUR, CAL, [(at(2, 17), at(3, 12))]) == at(3, 14)

    def test_an_open_pause_leaves_it_unknown(self):
        assert add_working_time(at(6, 17), 4 * HOUR, CAL, [(at(9, 9, 30), None)]) is None

    def test_zero_target_is_the_first_working_moment(self):
        assert add_working_time(at(7, 10), 0, CAL) == at(9, 9)
