import pytest

from tests.dashboards.factories import DataSet


@pytest.fixture
def data(org, settings):
    settings.TIME_ZONE = "Asia/Shanghai"
    return DataSet(org)
