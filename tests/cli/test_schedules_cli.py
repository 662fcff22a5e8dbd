"""``slipstream dags next-runs`` and ``slipstream dags due`` through the real typer app.

The DAG loader is replaced by a stub returning hand-built specs, so these
tests pin the commands' behaviour (fields, timezones, exit codes, messages)
independently of the SDK. Expected datetimes are written out literally.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import types
from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from chalicelib.cli import schedules
from chalicelib.cli.main import _register_commands, app
from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.errors import DagValidationError, Problem, SlipstreamError
from chalicelib.core.spec import DagSpec
from chalicelib.core.timetable_base import NullTimetable, OnceTimetable
from chalicelib.core.timetables import Timetable

UTC = dt.timezone.utc
NEW_YORK = "America/New_York"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def make_spec(
    timetable: Timetable | None = None,
    *,
    timezone: str = NEW_YORK,
    start_date: dt.datetime | None = utc(2024, 3, 1),
    end_date: dt.datetime | None = None,
    catchup: bool = False,
) -> DagSpec:
    return DagSpec(
        dag_id="nightly",
        sdk_version="test",
        timetable=timetable or CronDataIntervalTimetable("0 2 * * *", timezone=timezone),
        timezone=timezone,
        start_date=start_date,
        end_date=end_date,
        catchup=catchup,
    )


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """Run ``slipstream dags ...`` against whatever spec (or error) the test loads."""
    _register_commands()
    runner = CliRunner(env={"COLUMNS": "200"})

    def run(*args: str, spec: DagSpec | Exception | None = None) -> tuple[int, str, str]:
        loaded = make_spec() if spec is None else spec

        def fake_load(path: str, dag_id: str) -> DagSpec:
            assert path == "dags/nightly.py"
            if isinstance(loaded, Exception):
                raise loaded
            return loaded

        monkeypatch.setattr(schedules, "_load_spec", fake_load)
        result = runner.invoke(app, ["dags", *args])
        return result.exit_code, result.stdout, result.stderr

    return run


# --- next-runs


def test_next_runs_table_shows_dag_time_utc_and_the_cron_in_words(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, err = invoke(
        "next-runs", "dags/nightly.py", "nightly", "--after", "2024-03-08T12:00:00Z", "--count", "3"
    )
    assert (code, err) == (0, "")
    # The run that would have been at 02:00 on the spring-forward day runs at 03:00 EDT.
    assert "2024-03-10 03:00:00 EDT" in out
    assert "2024-03-10 07:00:00 UTC" in out
    assert "2024-03-09 02:00:00 EST" in out
    assert "At 02:00 AM" in out
    assert "America/New_York" in out
    assert "2024-03-12" not in out  # --count 3 stops at the 11th


def test_next_runs_json_lists_every_date_in_both_zones(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = invoke(
        "next-runs", "dags/nightly.py", "nightly", "--after", "2024-03-09T12:00:00Z",
        "--count", "2", "--json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == [
        {
            "run_after": "2024-03-10T03:00:00-04:00",
            "run_after_utc": "2024-03-10T07:00:00+00:00",
            "logical_date": "2024-03-09T02:00:00-05:00",
            "logical_date_utc": "2024-03-09T07:00:00+00:00",
            "data_interval_start": "2024-03-09T02:00:00-05:00",
            "data_interval_start_utc": "2024-03-09T07:00:00+00:00",
            "data_interval_end": "2024-03-10T03:00:00-04:00",
            "data_interval_end_utc": "2024-03-10T07:00:00+00:00",
            "timezone": "America/New_York",
            "schedule": "0 2 * * *",
            "schedule_description": "At 02:00 AM",
        },
        {
            "run_after": "2024-03-11T02:00:00-04:00",
            "run_after_utc": "2024-03-11T06:00:00+00:00",
            "logical_date": "2024-03-10T03:00:00-04:00",
            "logical_date_utc": "2024-03-10T07:00:00+00:00",
            "data_interval_start": "2024-03-10T03:00:00-04:00",
            "data_interval_start_utc": "2024-03-10T07:00:00+00:00",
            "data_interval_end": "2024-03-11T02:00:00-04:00",
            "data_interval_end_utc": "2024-03-11T06:00:00+00:00",
            "timezone": "America/New_York",
            "schedule": "0 2 * * *",
            "schedule_description": "At 02:00 AM",
        },
    ]


def test_next_runs_after_without_offset_is_read_in_the_dag_timezone(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    # 01:59 New York time on the 9th is 06:59Z: the next run ends at 02:00 EST that day.
    _, out, _ = invoke(
        "next-runs", "dags/nightly.py", "nightly", "--after", "2024-03-09T01:59", "--count", "1",
        "--json",
    )  # fmt: skip
    assert [r["run_after_utc"] for r in json.loads(out)] == ["2024-03-09T07:00:00+00:00"]


def test_next_runs_of_an_unscheduled_dag_says_why(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = invoke(
        "next-runs", "dags/nightly.py", "nightly", "--after", "2024-03-09",
        spec=make_spec(NullTimetable()),
    )  # fmt: skip
    assert code == 0
    assert "none" in out
    assert "schedule=None" in out


def test_next_runs_count_must_be_positive(invoke: Callable[..., tuple[int, str, str]]) -> None:
    code, _, err = invoke("next-runs", "dags/nightly.py", "nightly", "--count", "0")
    assert code == 2
    assert "--count" in err


# --- due


def test_due_with_catchup_lists_every_missed_interval_oldest_first(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = invoke(
        "due", "dags/nightly.py", "nightly", "--now", "2024-03-04T12:00:00Z", "--json",
        spec=make_spec(catchup=True),
    )  # fmt: skip
    assert code == 0
    # start_date 2024-03-01 00:00Z is Feb 29 19:00 EST: the first tick is Mar 1 02:00 EST.
    assert [r["logical_date_utc"] for r in json.loads(out)] == [
        "2024-03-01T07:00:00+00:00",
        "2024-03-02T07:00:00+00:00",
        "2024-03-03T07:00:00+00:00",
    ]


def test_due_without_catchup_only_the_latest_interval(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = invoke(
        "due", "dags/nightly.py", "nightly", "--now", "2024-03-04T12:00:00Z", "--json",
        "--last-logical-date", "2024-03-01T02:00:00-05:00",
    )  # fmt: skip
    assert code == 0
    runs = json.loads(out)
    assert [(r["data_interval_start"], r["data_interval_end"]) for r in runs] == [
        ("2024-03-03T02:00:00-05:00", "2024-03-04T02:00:00-05:00")
    ]


def test_due_table_for_a_trigger_timetable(invoke: Callable[..., tuple[int, str, str]]) -> None:
    spec = make_spec(CronTriggerTimetable("0 * * * *", timezone=NEW_YORK), catchup=False)
    code, out, _ = invoke(
        "due", "dags/nightly.py", "nightly", "--now", "2024-03-04T12:30:00Z", spec=spec
    )
    assert code == 0
    assert "2024-03-04 07:00:00 EST" in out  # the latest tick, 12:00Z
    assert "2024-03-04 12:00:00 UTC" in out
    assert "Every hour" in out


def test_due_explains_why_nothing_is_due(invoke: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = invoke(
        "due", "dags/nightly.py", "nightly", "--now", "2024-03-04T12:00:00Z",
        "--last-logical-date", "2024-03-03T07:00:00Z",
    )  # fmt: skip
    assert code == 0
    assert "none" in out
    assert "Nothing is due yet" in out
    assert "2024-03-05 02:00:00 EST (2024-03-05 07:00:00 UTC)" in out


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (make_spec(NullTimetable()), "runs only when triggered"),
        (make_spec(start_date=None, catchup=True), "no start_date"),
        (make_spec(end_date=utc(2024, 2, 1)), "end_date"),
    ],
)
def test_due_reasons_for_never_running(
    invoke: Callable[..., tuple[int, str, str]], spec: DagSpec, reason: str
) -> None:
    code, out, _ = invoke("due", "dags/nightly.py", "nightly", "--now", "2024-03-04", spec=spec)
    assert code == 0
    assert reason in out


def test_due_once_has_already_run(invoke: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = invoke(
        "due", "dags/nightly.py", "nightly", "--now", "2024-03-04",
        "--last-logical-date", "2024-03-01T00:00:00Z", spec=make_spec(OnceTimetable()),
    )  # fmt: skip
    assert code == 0
    assert "already run" in out


def test_due_json_is_an_empty_list_when_nothing_is_due(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    code, out, _ = invoke(
        "due", "dags/nightly.py", "nightly", "--now", "2024-03-01T01:00:00Z", "--json"
    )
    assert (code, json.loads(out)) == (0, [])


# --- errors


@pytest.mark.parametrize("option", ["--now", "--last-logical-date"])
def test_bad_iso_date_is_a_usage_error(
    invoke: Callable[..., tuple[int, str, str]], option: str
) -> None:
    args = ["due", "dags/nightly.py", "nightly", "--now", "2024-03-04"]
    if option == "--now":
        args[-1] = "yesterday"
    else:
        args += [option, "2024-13-45"]
    code, out, err = invoke(*args)
    assert code == 2
    assert out == ""
    assert option in err
    assert "not an ISO 8601 date" in err


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            SlipstreamError("dags/nightly.py: no DAG 'nightly' (found: other)"),
            2,
            "no DAG 'nightly'",
        ),
        (KeyError("nightly"), 2, "no DAG 'nightly'"),
        (FileNotFoundError(2, "No such file or directory"), 2, "cannot read DAG file"),
        (
            DagValidationError([Problem("cycle a -> b -> a", file="dags/nightly.py", line=7)]),
            1,
            "dags/nightly.py:7: cycle a -> b -> a",
        ),
    ],
)
def test_loader_errors_exit_with_a_clear_message(
    invoke: Callable[..., tuple[int, str, str]], error: Exception, code: int, message: str
) -> None:
    exit_code, out, err = invoke(
        "due", "dags/nightly.py", "nightly", "--now", "2024-03-04", spec=error
    )
    assert exit_code == code
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_invalid_schedule_in_the_spec_is_a_dag_problem(
    invoke: Callable[..., tuple[int, str, str]],
) -> None:
    spec = make_spec(CronDataIntervalTimetable("@fortnightly", timezone=NEW_YORK))
    code, _, err = invoke(
        "next-runs", "dags/nightly.py", "nightly", "--after", "2024-03-04", spec=spec
    )
    assert code == 1
    assert "unknown schedule preset '@fortnightly'" in err


def test_commands_load_the_dag_through_the_sdk_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def load_dag_spec(path: str, dag_id: str) -> DagSpec:
        calls.append((path, dag_id))
        return make_spec()

    loader = types.ModuleType("chalicelib.sdk.loader")
    loader.load_dag_spec = load_dag_spec  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chalicelib.sdk.loader", loader)
    _register_commands()

    result = CliRunner().invoke(
        app, ["dags", "due", "dags/nightly.py", "nightly", "--now", "2024-03-04", "--json"]
    )

    assert result.exit_code == 0
    assert calls == [("dags/nightly.py", "nightly")]


# --- the logic without the CLI


def test_plan_functions_take_a_spec() -> None:
    spec = make_spec(catchup=True, end_date=utc(2024, 3, 2, 7))
    due = schedules.plan_due_runs(spec, now=utc(2024, 3, 10))
    assert [r.logical_date for r in due] == [utc(2024, 3, 1, 7), utc(2024, 3, 2, 7)]
    upcoming = schedules.plan_next_runs(spec, after=utc(2024, 2, 1), count=5)
    assert [r.run_after for r in upcoming] == [utc(2024, 3, 2, 7), utc(2024, 3, 3, 7)]
