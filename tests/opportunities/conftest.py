import pytest

from opportunities import rules


@pytest.fixture
def pipeline(db):
    """The default pipeline (recreated if a transactional test flushed the tables)."""
    from tests.opportunities.factories import default_pipeline

    return default_pipeline()


@pytest.fixture
def signed_contract():
    """A registered signed-contract check that says yes for the opportunity ids in the returned set."""
    signed: set[int] = set()

    def check(opportunity_id: int) -> bool:
        return opportunity_id in signed

    rules.register_signed_contract_check(check)
    yield signed
    rules.unregister_signed_contract_check(check)
