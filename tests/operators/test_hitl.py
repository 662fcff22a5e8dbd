"""Human-in-the-loop operators: the request, the reschedule wait, the answer,
the timeout with and without defaults (on an injected clock), and what
``dags test`` does (answers from --hitl-responses, else defaults, else fail)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chalicelib.core.hitl import HitlKey, HitlRequest, HitlResponse
from chalicelib.runtime.hitl import HitlResponsesFileError, LocalHitl, answering_hitl, local_hitl
from chalicelib.sdk import DAG, task
from chalicelib.sdk.clock import task_clock
from chalicelib.sdk.exceptions import TaskRescheduled
from operators.empty import EmptyOperator
from operators.hitl import (
    WAIT_WITHOUT_TIMEOUT,
    ApprovalOperator,
    HITLBranchOperator,
    HITLEntryOperator,
    HITLOperator,
    HITLRejectException,
    HITLTimeoutError,
)

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


class FakePort:
    """The worker's port over a dict, answering like the hitl table."""

    can_wait = True

    def __init__(self) -> None:
        self.requests: dict[HitlKey, HitlRequest] = {}
        self.answers: dict[HitlKey, HitlResponse] = {}
        self.opened = 0

    def open(self, key: HitlKey, request: HitlRequest, now: dt.datetime) -> None:
        self.opened += 1
        self.requests[key] = request

    def response(self, key: HitlKey, try_number: int) -> HitlResponse | None:
        return self.answers.get(key)

    def close(self, key: HitlKey, try_number: int, response: HitlResponse) -> HitlResponse:
        return self.answers.setdefault(key, response)


class Ti:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "ask", -1, 1

    def __init__(self, first: dt.datetime | None = None) -> None:
        self.first = first
        self.skipped: list[str] | None = None

    def get_first_reschedule_date(self, context: Any = None) -> dt.datetime | None:
        return self.first

    def skip_downstream(self, task_ids: Any) -> None:
        self.skipped = sorted(task_ids)


KEY = HitlKey("d", "r", "ask", -1)


def _poke(op: HITLOperator, port: Any, ti: Ti, now: dt.datetime) -> Any:
    with answering_hitl(port), task_clock(lambda: now):
        return op.execute({"ti": ti})


def _answer(port: FakePort, *options: str, params: Any = None) -> None:
    port.answers[KEY] = HitlResponse(
        chosen_options=options,
        params_input=params or {},
        responded_at=T0 + dt.timedelta(minutes=5),
        responded_by={"id": "k1", "name": "alice"},
    )


def _in_dag(build: Any) -> Any:
    with DAG("d", start_date=T0, schedule=None):
        op = build()
        EmptyOperator(task_id="after") << op
    return op


def test_first_poke_records_the_request_and_waits_until_the_deadline() -> None:
    op = _in_dag(
        lambda: HITLOperator(
            task_id="ask",
            subject="Ship?",
            body="**now**",
            options=["yes", "no"],
            defaults="no",
            params={"note": "n/a"},
            execution_timeout=HOUR,
        )
    )
    port = FakePort()
    with pytest.raises(TaskRescheduled) as waited:
        _poke(op, port, Ti(), T0)
    assert waited.value.reschedule_date == T0 + HOUR
    request = port.requests[KEY]
    assert (request.subject, request.options, request.defaults) == ("Ship?", ("yes", "no"), ("no",))
    assert request.params["note"]["value"] == "n/a"
    # A later poke (rescheduled) does not ask again and keeps the first deadline.
    with pytest.raises(TaskRescheduled) as again:
        _poke(op, port, Ti(first=T0), T0 + dt.timedelta(minutes=30))
    assert again.value.reschedule_date == T0 + HOUR
    assert port.opened == 1


def test_without_execution_timeout_the_wait_has_no_deadline() -> None:
    op = _in_dag(lambda: HITLOperator(task_id="ask", subject="s", options=["a"]))
    with pytest.raises(TaskRescheduled) as waited:
        _poke(op, FakePort(), Ti(), T0)
    assert waited.value.reschedule_date == T0 + WAIT_WITHOUT_TIMEOUT


def test_an_answer_is_the_return_value() -> None:
    op = _in_dag(lambda: HITLOperator(task_id="ask", subject="s", options=["a", "b"]))
    port = FakePort()
    _answer(port, "b", params={"x": 1})
    result = _poke(op, port, Ti(first=T0), T0 + HOUR)
    assert result == {
        "chosen_options": ["b"],
        "params_input": {"x": 1},
        "responded_at": (T0 + dt.timedelta(minutes=5)).isoformat(),
        "responded_by_user": {"id": "k1", "name": "alice"},
    }


def test_timeout_with_defaults_takes_them() -> None:
    op = _in_dag(
        lambda: HITLOperator(
            task_id="ask", subject="s", options=["a", "b"], defaults=["b"], execution_timeout=HOUR
        )
    )
    port = FakePort()
    result = _poke(op, port, Ti(first=T0), T0 + HOUR)
    assert result["chosen_options"] == ["b"]
    assert result["responded_by_user"] is None
    assert port.answers[KEY].timed_out  # recorded, so the API shows the outcome


def test_timeout_prefers_an_answer_that_landed_first() -> None:
    op = _in_dag(
        lambda: HITLOperator(
            task_id="ask", subject="s", options=["a", "b"], defaults=["b"], execution_timeout=HOUR
        )
    )
    port = FakePort()
    port.response = lambda key, try_number: None  # type: ignore[method-assign]
    _answer(port, "a")  # the person's answer lands between the read and the close
    assert _poke(op, port, Ti(first=T0), T0 + HOUR)["chosen_options"] == ["a"]


def test_timeout_without_defaults_fails() -> None:
    op = _in_dag(
        lambda: HITLOperator(task_id="ask", subject="s", options=["a"], execution_timeout=HOUR)
    )
    with pytest.raises(HITLTimeoutError, match="timeout has passed"):
        _poke(op, FakePort(), Ti(first=T0), T0 + HOUR)


def test_approval_reject_skips_the_direct_downstream_or_fails() -> None:
    op = _in_dag(lambda: ApprovalOperator(task_id="ask", subject="ok?"))
    assert op.options == ["Approve", "Reject"] and op.flow == "short_circuit"
    port, ti = FakePort(), Ti(first=T0)
    _answer(port, "Reject")
    assert _poke(op, port, ti, T0)["chosen_options"] == ["Reject"]
    assert ti.skipped == ["after"]
    strict = _in_dag(lambda: ApprovalOperator(task_id="ask", subject="ok?", fail_on_reject=True))
    with pytest.raises(HITLRejectException):
        _poke(strict, port, Ti(first=T0), T0)
    approved, ti2 = FakePort(), Ti(first=T0)
    _answer(approved, "Approve")
    _poke(op, approved, ti2, T0)
    assert ti2.skipped is None


def test_branch_follows_the_mapped_option() -> None:
    with DAG("d", start_date=T0, schedule=None):
        op = HITLBranchOperator(
            task_id="ask",
            subject="which?",
            options=["Left", "Right"],
            options_mapping={"Left": "left"},
        )
        op >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="Right")]
    port, ti = FakePort(), Ti(first=T0)
    _answer(port, "Left")
    assert _poke(op, port, ti, T0) == ["left"]
    assert ti.skipped == ["Right"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: HITLOperator(task_id="t", subject="s", options=[]), "cannot be empty"),
        (lambda: HITLOperator(task_id="t", subject="s", options=["a"], defaults="b"), "subset"),
        (
            lambda: HITLOperator(task_id="t", subject="s", options=["a", "b"], defaults=["a", "b"]),
            "More than one defaults",
        ),
        (lambda: ApprovalOperator(task_id="t", subject="s", options=["x"]), "not allowed"),
        (
            lambda: HITLBranchOperator(
                task_id="t", subject="s", options=["a"], options_mapping={"z": "a"}
            ),
            "not in `options`",
        ),
    ],
)
def test_bad_arguments_say_what_is_wrong(build: Any, message: str) -> None:
    with DAG("d", start_date=T0, schedule=None), pytest.raises(ValueError, match=message):
        build()


def test_entry_operator_defaults_to_ok() -> None:
    op = _in_dag(lambda: HITLEntryOperator(task_id="ask", subject="fill", params={"n": 1}))
    assert (op.options, op.defaults) == (["OK"], ["OK"])


# ------------------------------------------------------------------ dags test


def _approval_dag(**approval: Any) -> DAG:
    with DAG("approve", start_date=T0, schedule=None) as dag:
        ask = ApprovalOperator(task_id="ask", subject="Deploy?", **approval)

        @task
        def deploy(ti: Any = None) -> list[str]:
            return ti.xcom_pull(task_ids="ask")["chosen_options"]

        ask >> deploy()
    return dag


def test_dags_test_takes_the_answer_from_the_responses_file() -> None:
    with local_hitl(LocalHitl({"ask": ["Approve"]})):
        result = _approval_dag().test()
    assert result.task_states == {"ask": "success", "deploy": "success"}
    with local_hitl(LocalHitl({"ask": {"chosen_options": ["Reject"]}})):
        result = _approval_dag().test()
    assert result.task_states == {"ask": "success", "deploy": "skipped"}


def test_dags_test_without_an_answer_takes_defaults_or_fails() -> None:
    result = _approval_dag(defaults="Approve").test()
    assert result.task_states["deploy"] == "success"
    result = _approval_dag().test()
    assert result.task_states["ask"] == "failed"


def test_cli_hitl_responses_file(tmp_path: Path) -> None:
    from chalicelib.cli.main import _register_commands, app

    _register_commands()
    dag_file = tmp_path / "approve.py"
    dag_file.write_text(
        "import datetime as dt\n"
        "from airflow.sdk import DAG\n"
        "from airflow.providers.standard.operators.hitl import ApprovalOperator\n"
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "with DAG('approve', start_date=dt.datetime(2024, 1, 1), schedule=None):\n"
        "    ApprovalOperator(task_id='ask', subject='Deploy?') >> EmptyOperator(task_id='go')\n"
    )
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"ask": ["Reject"]}))
    cli = CliRunner()
    out = cli.invoke(
        app, ["dags", "test", str(dag_file), "approve", "--json", "--hitl-responses", str(answers)]
    )
    assert out.exit_code == 0, out.output
    states = json.loads(out.stdout)["task_states"]
    assert states == {"ask": "success", "go": "skipped"}
    answers.write_text(json.dumps({"ask": ["Maybe"]}))
    out = cli.invoke(
        app, ["dags", "test", str(dag_file), "approve", "--json", "--hitl-responses", str(answers)]
    )
    assert out.exit_code == 1
    assert json.loads(out.stdout)["task_states"]["ask"] == "failed"
    answers.write_text("{not json")
    out = cli.invoke(
        app, ["dags", "test", str(dag_file), "approve", "--hitl-responses", str(answers)]
    )
    assert out.exit_code == 2 and "not JSON" in out.stderr


def test_responses_file_errors_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"ask": {"options": ["x"]}}))
    with pytest.raises(HitlResponsesFileError, match="'ask'"):
        LocalHitl.from_file(bad)
