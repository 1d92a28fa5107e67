"""The tally itself: counts reach the summary, and a case that did not hold fails the test."""

import pytest

from tests.harness.tally import Tally, add_report, summary_lines


def test_counts_add_up_over_reports():
    class Report:
        when = "teardown"
        user_properties = [("hostile_tally", {"tampering": (3, 3)})]

    totals = {}
    add_report(totals, Report())
    add_report(totals, Report())
    assert summary_lines(totals) == ["hostile tampering: 6 tried, 6 held"]


def test_a_case_that_did_not_hold_fails_the_check():
    tally = Tally()
    tally.case("tampering", True)
    tally.case("tampering", False, "offset 7 decrypted")
    with pytest.raises(AssertionError, match="offset 7 decrypted"):
        tally.check()
    with pytest.raises(AssertionError, match="tried no case"):
        Tally().check()
