"""The opportunity list's free-text search (opportunities.selectors.opportunity_list)."""

import pytest

from leads.models import Contact
from opportunities import selectors
from opportunities.selectors import OpportunityFilters, opportunity_list
from tests.factories import CustomerFactory
from tests.opportunities.factories import make_opportunity


@pytest.mark.django_db
class TestOpportunityListSearch:
    @pytest.fixture
    def deals(self, org, pipeline):
        precise = CustomerFactory(owner=org.rep_a, name="Shanghai Precise 精密机械 Co")
        other = CustomerFactory(owner=org.rep_a, name="Other Trading", phone="13800000000")
        Contact.objects.create(customer=other, name="精密机械 contact")  # in search_text, not in the name
        return {
            "by_title": make_opportunity(org.rep_a, customer=other, title="精密机械 line upgrade"),
            "by_customer": make_opportunity(org.rep_a, customer=precise, title="ERP"),
            "upper_title": make_opportunity(org.rep_a, customer=other, title="PRECISE parts"),
            "neither": make_opportunity(org.rep_a, customer=other, title="CRM rollout"),
            "unseen": make_opportunity(org.rep_b, customer=CustomerFactory(owner=org.rep_b, name="精密机械 B"), title="x"),
        }

    def found(self, user, term):
        return set(opportunity_list(user=user, filters=OpportunityFilters(search=term)).values_list("pk", flat=True))

    def test_matches_title_or_customer_name_case_insensitively(self, org, deals):
        """A deal matches when its title or its customer's name contains the term, in any case; a match
        on the customer's contacts or phone does not count; the scope still applies."""
        assert self.found(org.rep_a, "精密机械") == {deals["by_title"].pk, deals["by_customer"].pk}
        assert self.found(org.rep_a, "precise") == {deals["by_customer"].pk, deals["upper_title"].pk}
        assert self.found(org.rep_a, "13800000000") == set()
        assert self.found(org.admin, "精密机械") == {deals["by_title"].pk, deals["by_customer"].pk, deals["unseen"].pk}

    def test_many_matching_customers_give_the_same_result(self, org, deals, monkeypatch):
        """Past SEARCH_CUSTOMER_IDS_MAX customers the search passes them as a subquery: same deals."""
        few = self.found(org.admin, "精密机械")
        monkeypatch.setattr(selectors, "SEARCH_CUSTOMER_IDS_MAX", 0)
        assert self.found(org.admin, "精密机械") == few
        assert self.found(org.rep_a, "precise") == {deals["by_customer"].pk, deals["upper_title"].pk}

    def test_percent_and_underscore_are_literal(self, org, deals):
        """The term's % and _ are not wildcards."""
        assert self.found(org.rep_a, "%") == set()
        assert self.found(org.rep_a, "_") == set()
