"""Pure rules of the models: line and contract arithmetic, currency rounding, number patterns."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from contracts.models import ContractLine, currency_round, validate_number_pattern


class TestCurrencyRound:
    def test_rounds_half_up_to_cents(self):
        """0.005 goes up (commercial rounding), not to the even neighbour."""
        assert currency_round(Decimal("2.675"), "CNY") == Decimal("2.68")
        assert currency_round(Decimal("2.665"), "CNY") == Decimal("2.67")
        assert currency_round(Decimal("0.004"), "USD") == Decimal("0.00")

    def test_yen_has_no_minor_unit(self):
        assert currency_round(Decimal("1234.5"), "JPY") == Decimal("1235")


class TestContractLineAmounts:
    def test_discount_then_tax_each_rounded(self):
        """3 × 33.33 = 99.99; 10 % off = 89.991 → 89.99; 13 % VAT = 11.6987 → 11.70; total 101.69."""
        line = ContractLine(name="x", quantity=Decimal("3"), unit_price=Decimal("33.33"),
                            discount_percent=Decimal("10"), tax_rate=Decimal("13"))
        assert line.amounts("CNY") == (Decimal("89.99"), Decimal("11.70"), Decimal("101.69"))

    def test_no_float_error(self):
        """0.1 + 0.2 style inputs stay exact with Decimal."""
        line = ContractLine(name="x", quantity=Decimal("3"), unit_price=Decimal("0.10"),
                            discount_percent=Decimal("0"), tax_rate=Decimal("0"))
        assert line.amounts("CNY")[2] == Decimal("0.30")


class TestNumberPattern:
    @pytest.mark.parametrize("pattern", ["HT-{year}-{seq:06d}", "C{year}{seq:04d}", "{year}/{seq}"])
    def test_valid(self, pattern):
        validate_number_pattern(pattern)

    @pytest.mark.parametrize("pattern", ["HT-{seq:06d}", "HT-{year}", "HT-{year}-{seq:06d}-{month}", "{year}-{seq:zz}"])
    def test_invalid(self, pattern):
        """Without the year the per-year counter would repeat numbers; unknown fields cannot format."""
        with pytest.raises(ValidationError):
            validate_number_pattern(pattern)
