"""A small fixed data set for the dashboard figures (March 2026, Asia/Shanghai), written straight to the
tables with fixed timestamps so every expectation can be computed by hand (see test_selectors.py)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from activities.models import Activity, ActivityKind, ActivityStatus
from contracts.models import Contract, PaymentInstalment, PaymentReceipt
from leads.models import Customer
from opportunities.models import Opportunity, StageChange, StageKind
from tests.factories import CustomerFactory
from tests.opportunities.factories import default_pipeline

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")


def at(month: int, day: int, hour: int = 10, minute: int = 0, tz: ZoneInfo = SHANGHAI, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def kind(code: str) -> ActivityKind:
    """The seeded kind (a data migration); recreated if a transactional test flushed the table."""
    return ActivityKind.objects.get_or_create(code=code, defaults={"name": code, "name_en": code.title()})[0]


class DataSet:
    """rep_a, rep_a2 (team A) and rep_b (team B); opportunities o1..o6, activities, contracts."""

    def __init__(self, org):
        self.org = org
        self.pipeline = default_pipeline()
        stages = list(self.pipeline.stages.filter(kind=StageKind.OPEN, is_active=True).order_by("order", "id"))
        self.s1, self.s2, self.s3 = stages[0], stages[1], stages[2]
        self.won = self.pipeline.stages.get(kind=StageKind.WON)
        self.lost = self.pipeline.stages.get(kind=StageKind.LOST)
        self.cust_a = CustomerFactory(owner=org.rep_a, tier="A")
        self.cust_a_new = CustomerFactory(owner=org.rep_a, tier="B")
        self.cust_a2 = CustomerFactory(owner=org.rep_a2, tier="B")
        self.cust_b = CustomerFactory(owner=org.rep_b, tier="A")
        Customer.objects.update(created_at=at(1, 5))
        Customer.objects.filter(pk=self.cust_a_new.pk).update(created_at=at(3, 3))
        self._opportunities()
        self._activities()
        self._contracts()

    def opp(self, owner, customer, stage, created, *, amount, probability=10, source="", closed=None, expected=None):
        return Opportunity.objects.create(
            pipeline=self.pipeline, stage=stage, customer=customer, owner=owner, title="Deal", amount=Decimal(amount),
            probability=probability, source=source, created_at=created, closed_at=closed, stage_entered_at=created,
            expected_close_date=expected,
        )

    def move(self, opp, from_stage, to_stage, when, days_in_previous=None, action="advance"):
        StageChange.objects.create(
            opportunity=opp, action=action, from_stage=from_stage, to_stage=to_stage, changed_at=when,
            seconds_in_previous_stage=None if days_in_previous is None else int(days_in_previous * 86400),
        )

    def _opportunities(self):
        org, s1, s2, s3 = self.org, self.s1, self.s2, self.s3
        # o1: rep_a, referral, created 2 Mar, s1 2d, s2 4d, s3 2d, won 10 Mar (cycle 8 days)
        self.o1 = self.opp(org.rep_a, self.cust_a, self.won, at(3, 2), amount="100", source="referral", closed=at(3, 10))
        self.move(self.o1, None, s1, at(3, 2), action="create")
        self.move(self.o1, s1, s2, at(3, 4), 2)
        self.move(self.o1, s2, s3, at(3, 8), 4)
        self.move(self.o1, s3, self.won, at(3, 10), 2, action="win")
        # o2: rep_a, website, moved back: s1 4d, s2 1d, back to s1 2d, now s2 (200 at 40%, closes 20 Mar)
        self.o2 = self.opp(org.rep_a, self.cust_a, s2, at(3, 3), amount="200", probability=40, source="website",
                           expected=date(2026, 3, 20))
        self.move(self.o2, None, s1, at(3, 3), action="create")
        self.move(self.o2, s1, s2, at(3, 7), 4)
        self.move(self.o2, s2, s1, at(3, 8), 1, action="move_back")
        self.move(self.o2, s1, s2, at(3, 10), 2)
        # o3: rep_a2, referral, lost after 1 day, reopened 2 days later, 4 days in s1, now s2 (300 at 80%)
        self.o3 = self.opp(org.rep_a2, self.cust_a2, s2, at(3, 5), amount="300", probability=80, source="referral",
                           expected=date(2026, 3, 25))
        self.move(self.o3, None, s1, at(3, 5), action="create")
        self.move(self.o3, s1, self.lost, at(3, 6), 1, action="lose")
        self.move(self.o3, self.lost, s1, at(3, 8), 2, action="reopen")
        self.move(self.o3, s1, s2, at(3, 12), 4)
        # o4: team B, won in 5 days, 30 days in s1 (must never show for team A)
        self.o4 = self.opp(org.rep_b, self.cust_b, self.won, at(3, 4), amount="1000", source="referral",
                           closed=at(3, 9), expected=date(2026, 3, 15))
        self.move(self.o4, None, s1, at(3, 4), action="create")
        self.move(self.o4, s1, s2, at(3, 6), 30)
        # o5: rep_a, created in February, won at 17:30 UTC on 28 Feb = 01:30 on 1 March in Shanghai (19 days)
        self.o5 = self.opp(org.rep_a, self.cust_a, self.won, at(2, 10, 1, 30), amount="400",
                           closed=at(2, 28, 17, 30, tz=UTC))
        # o6: rep_a, old and open in s1 (50 at 10%), no activities, closes in April
        self.o6 = self.opp(org.rep_a, self.cust_a, s1, at(1, 10), amount="50", expected=date(2026, 4, 10))

    def _activities(self):
        org, call, visit = self.org, kind("call"), kind("visit")

        def act(owner, kind_, status, planned=None, done=None, customer=None):
            return Activity.objects.create(
                kind=kind_, subject="x", customer=customer or self.cust_a, owner=owner, status=status,
                planned_at=planned, done_at=done,
            )

        act(org.rep_a, call, ActivityStatus.DONE, at(3, 5), at(3, 5, 11))  # planned and done in March
        act(org.rep_a, call, ActivityStatus.PLANNED, at(3, 6))  # planned in March, overdue on 15 March
        act(org.rep_a, visit, ActivityStatus.DONE, at(2, 27), at(3, 2))  # done in March, planned in Feb
        act(org.rep_a, call, ActivityStatus.CANCELLED, at(3, 8))  # cancelled: not counted
        act(org.rep_a2, visit, ActivityStatus.PLANNED, at(3, 31, 23, 30), customer=self.cust_a2)  # not overdue
        # done 16:30 UTC on 31 March = 00:30 on 1 April in Shanghai: April's
        act(org.rep_a, call, ActivityStatus.DONE, at(3, 31, 16, 30, tz=UTC), at(3, 31, 16, 30, tz=UTC))
        act(org.rep_b, call, ActivityStatus.DONE, at(3, 5), at(3, 5), customer=self.cust_b)

    def _contracts(self):
        org = self.org

        def contract(owner, customer, total, signed_on, number):
            return Contract.objects.create(
                number=f"{number}-{Contract.objects.count()}", title="C", customer=customer, owner=owner, total_amount=Decimal(total),
                subtotal=Decimal(total), signed_on=signed_on, status="signed",
            )

        def receipt(c, amount, on):
            inst = PaymentInstalment.objects.create(contract=c, due_date=on, amount=Decimal(amount))
            PaymentReceipt.objects.create(instalment=inst, contract=c, received_on=on, amount=Decimal(amount),
                                          recorded_by=c.owner)

        c1 = contract(org.rep_a, self.cust_a, "1000", date(2026, 3, 5), "T-1")
        receipt(c1, "300", date(2026, 3, 10))
        receipt(c1, "200", date(2026, 4, 1))
        c2 = contract(org.rep_a2, self.cust_a2, "500", date(2026, 2, 20), "T-2")
        receipt(c2, "500", date(2026, 3, 1))
        c3 = contract(org.rep_b, self.cust_b, "9999", date(2026, 3, 6), "T-3")
        receipt(c3, "9999", date(2026, 3, 6))
