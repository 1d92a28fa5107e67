"""The hostile-input suite's ``tally`` fixture; the summary lines are printed by tests/conftest.py."""

import pytest

from tests.harness.tally import PROPERTY, Tally


@pytest.fixture
def tally(request):
    """A Tally for this test: record cases with ``tally.case(category, held, detail)``; the test
    fails if a case did not hold or none was tried."""
    counter = Tally()
    yield counter
    request.node.user_properties.append((PROPERTY, counter.counts()))
    counter.check()
