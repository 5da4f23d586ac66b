import pytest
from report_run import make_report_run


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    return make_report_run(tmp_path_factory.mktemp("report-run"))
