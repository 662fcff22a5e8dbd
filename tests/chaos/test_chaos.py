"""The chaos suite's short variant, run by ``make test``: 30 seeded runs of
the eight shapes on the local stack with every AWS call through the fault
proxy at the default mix, and one warm worker killed mid-try. ``make chaos``
runs 200; both must end with every run correct and no doubled, lost or
stuck try."""

from __future__ import annotations

import pytest

from tests.chaos.harness import run_chaos
from tests.chaos.proxy import FaultMix

pytestmark = pytest.mark.slow


def test_thirty_runs_under_faults_end_as_they_would_without() -> None:
    report = run_chaos(30, seed=11, mix=FaultMix(), kills=1, deadline_seconds=240.0)

    assert report.ok, report.summary()
    assert report.correct == 30
    # the faults really were given (a proxy that forwarded everything would pass too)
    assert report.faults_given("refused") > 50 and report.faults_given("ambiguous") > 50
    assert report.kills == 1
