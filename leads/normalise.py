"""Pure functions that put phones, emails and company names into one comparable form.

- phones: `+86` by default. `138 1234 5678`, `(0086) 138-1234-5678`, `+86 13812345678` and
  `8613812345678` all become `+8613812345678`; a landline `010-6552 1234` becomes `+861065521234`
  (the trunk 0 dropped); a number with another country code (`+1 415 555 0100`) keeps it.
- emails: trimmed and lower-cased.
- company names (`name_key`): full-width forms folded (NFKC), lower-cased, legal suffixes such as
  有限公司 / 股份有限公司 / Co., Ltd. / Inc. removed, spacing and punctuation removed. Two names with
  the same key are the same company for duplicate warnings; similar keys are compared by trigrams.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_COUNTRY_CODE = "86"

_NON_DIGITS = re.compile(r"\D+")
# Longest first: "股份有限公司" must go before "有限公司".
LEGAL_SUFFIXES = [
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "责任公司",
    "company limited",
    "co ltd",
    "co limited",
    "corporation",
    "limited",
    "company",
    "corp",
    "gmbh",
    "inc",
    "llc",
    "ltd",
    "plc",
    "公司",
    "co",
]
_PUNCT = re.compile(r"[\s\.,，。、·\-_'\"()（）\[\]【】&/]+")


def normalise_phone(raw: str | None) -> str:
    """The phone in international form (+<country><number>), +86 unless another code is given.
    Text that is not a phone number (fewer than 5 digits) is returned trimmed, unchanged."""
    if not raw:
        return ""
    text = raw.strip()
    digits = _NON_DIGITS.sub("", text)
    if len(digits) < 5:
        return text
    if text.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith(DEFAULT_COUNTRY_CODE) and len(digits) >= 12 and digits[2] in "123456789":
        # 86 followed by a full mobile (11 digits) or an area code + number
        return "+" + digits
    if digits.startswith("0"):
        digits = digits[1:]  # domestic trunk prefix of a landline: 010-..., 021-...
    return f"+{DEFAULT_COUNTRY_CODE}{digits}"


def normalise_email(raw: str | None) -> str:
    return (raw or "").strip().lower()


def search_digits(phone: str | None) -> str:
    """The digits of a phone without the country code, for the search box (users type 138...)."""
    digits = _NON_DIGITS.sub("", phone or "")
    if phone and phone.startswith("+" + DEFAULT_COUNTRY_CODE):
        digits = digits[len(DEFAULT_COUNTRY_CODE):]
    return digits


def name_key(raw: str | None) -> str:
    """The company name without legal suffixes, case, spacing and punctuation."""
    text = unicodedata.normalize("NFKC", raw or "").lower().strip()
    # "(中国)" / "(China)" in a name is a legal detail too
    text = re.sub(r"[(（]\s*(中国|china)\s*[)）]", "", text)
    spaced = _PUNCT.sub(" ", text).strip()
    changed = True
    while changed and spaced:
        changed = False
        for suffix in LEGAL_SUFFIXES:
            if spaced.endswith(suffix) and spaced != suffix:
                before = spaced[: -len(suffix)]
                # Latin suffixes must stand as a word ("co" must not eat "Costco"); CJK ones need not
                if suffix.isascii() and before and not before.endswith(" "):
                    continue
                spaced = before.strip()
                changed = True
                break
    return spaced.replace(" ", "")


def normalise_search(term: str) -> str:
    """What a search term is compared with: lower-cased; a phone-looking term reduced to digits."""
    term = term.strip().lower()
    if re.fullmatch(r"[\d\s\-+()]{5,}", term):
        digits = _NON_DIGITS.sub("", term)
        if digits.startswith("0086"):
            digits = digits[4:]
        elif digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        return digits
    return term
