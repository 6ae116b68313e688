"""Phones, emails and company names are compared in one normalised form."""

import pytest

from leads.normalise import name_key, normalise_email, normalise_phone, normalise_search


class TestNormalisePhone:
    @pytest.mark.parametrize(
        "raw",
        ["13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+86-13812345678",
         "8613812345678", "0086 13812345678", "(0086) 138-1234-5678", " +86 (138) 1234 5678 "],
    )
    def test_mobile_formats_become_one_number(self, raw):
        """Every way of writing a Chinese mobile number gives +86 and the 11 digits."""
        assert normalise_phone(raw) == "+8613812345678"

    def test_landline_drops_the_trunk_zero(self):
        assert normalise_phone("010-6552 1234") == "+861065521234"
        assert normalise_phone("021 5555 8888") == "+862155558888"

    def test_another_country_code_is_kept(self):
        assert normalise_phone("+1 415 555 0100") == "+14155550100"
        assert normalise_phone("00852 2345 6789") == "+85223456789"

    def test_text_that_is_not_a_phone_is_left_alone(self):
        assert normalise_phone("ext 12") == "ext 12"
        assert normalise_phone("") == ""
        assert normalise_phone(None) == ""


class TestNameKey:
    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("华为技术有限公司", "华为技术 有限公司"),
            ("华为技术有限公司", "华为技术"),
            ("上海联影医疗科技股份有限公司", "上海联影医疗科技有限公司"),
            ("上海联影医疗科技有限责任公司", "上海 联影 医疗科技"),
            ("ACME Co., Ltd.", "Acme Ltd"),
            ("ACME Co., Ltd.", "acme"),
            ("Acme Inc.", "ACME Corporation"),
            ("Apple (China) Co., Ltd.", "Apple Inc."),
            ("腾讯科技（深圳）有限公司", "腾讯科技(深圳)有限公司"),
            ("ＡＢＣ有限公司", "ABC"),
        ],
    )
    def test_same_company_same_key(self, a, b):
        """Legal suffixes (有限公司, 股份有限公司, Co., Ltd., Inc.), spacing, punctuation, case and
        full-width letters do not make two names different."""
        assert name_key(a) == name_key(b)

    @pytest.mark.parametrize(("a", "b"), [("Costco", "Cost"), ("华为技术", "华为软件"), ("Acme Co", "Acme Corp Asia")])
    def test_different_companies_differ(self, a, b):
        assert name_key(a) != name_key(b)

    def test_a_suffix_alone_is_not_emptied(self):
        assert name_key("公司") == "公司"


def test_email_is_trimmed_and_lower_cased():
    assert normalise_email("  Info@Example.CN ") == "info@example.cn"


def test_search_term_that_looks_like_a_phone_becomes_digits():
    assert normalise_search("138-1234 5678") == "13812345678"
    assert normalise_search("+86 138 1234 5678") == "13812345678"
    assert normalise_search("Acme") == "acme"
