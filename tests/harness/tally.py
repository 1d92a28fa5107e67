"""Case counting for the hostile-input suite: each test records the cases it tried and which held,
and the run ends with one summary line per category ("hostile tampering: 1204 tried, 1204 held").

Counts travel on the test reports' ``user_properties``, so they add up under pytest-xdist too.
A case that did not hold also fails its test (``Tally.check`` asserts at the end), so the summary
is a report, never the verdict.
"""

from collections import Counter

PROPERTY = "hostile_tally"


class Tally:
    def __init__(self):
        self.tried = Counter()
        self.held = Counter()
        self.failures = []

    def case(self, category, held, detail=""):
        """Record one case of ``category``; ``held`` is whether the defence held."""
        self.tried[category] += 1
        if held:
            self.held[category] += 1
        else:
            self.failures.append(f"{category}: {detail}")
        return held

    def counts(self):
        return {category: (self.tried[category], self.held[category]) for category in self.tried}

    def check(self):
        assert self.tried, "a hostile test that tried no case proves nothing"
        assert not self.failures, f"{len(self.failures)} case(s) did not hold:\n" + "\n".join(self.failures[:40])


def add_report(totals, report):
    """Fold one test report's counts into ``totals`` (category -> [tried, held])."""
    for name, value in getattr(report, "user_properties", ()):
        if name == PROPERTY and report.when == "teardown":
            for category, (tried, held) in value.items():
                entry = totals.setdefault(category, [0, 0])
                entry[0] += tried
                entry[1] += held


def summary_lines(totals):
    return [f"hostile {category}: {tried} tried, {held} held" for category, (tried, held) in sorted(totals.items())]
