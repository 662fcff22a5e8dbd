"""execute_try: outcomes, retries, results, mapping, timeouts and callbacks."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.core.states import TaskState
from chalicelib.runtime import InMemoryXComStore, TryResult
from chalicelib.sdk.context import get_current_context
from chalicelib.sdk.exceptions import TaskFailed, TaskSkipped
from chalicelib.sdk.xcom_arg import XComArg
from tests.runtime.runtime_doubles import (
    Clock,
    FakeDag,
    FakeMapped,
    FakeOperator,
    make_spec,
    mapped_spec,
    run_try,
    scheduled_run,
    task_spec,
)

UTC = dt.timezone.utc
FAILED_AT = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def single(fn: Any, **op_args: Any) -> tuple[FakeDag, FakeOperator]:
    dag = FakeDag("d")
    return dag, FakeOperator("t", dag, fn, **op_args)


def raise_(exc: BaseException) -> Any:
    def fn(context: Any, op: Any) -> Any:
        raise exc

    return fn


class TestSuccess:
    def test_result_is_pushed_and_its_length_reported(self) -> None:
        dag, _ = single(lambda ctx, op: [1, 2, 3])
        store = InMemoryXComStore()
        clock = Clock(FAILED_AT)
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t", xcoms=store, clock=clock)
        assert result == TryResult(
            state=TaskState.SUCCESS, start_date=FAILED_AT, end_date=FAILED_AT, result_length=3
        )
        assert store.pull("t", -1, "return_value") == (True, [1, 2, 3])

    def test_none_is_not_pushed_like_airflow(self) -> None:
        dag, _ = single(lambda ctx, op: None)
        store = InMemoryXComStore()
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t", xcoms=store)
        assert result.state is TaskState.SUCCESS and result.result_length is None
        assert store.pull("t", -1, "return_value") == (False, None)

    def test_do_xcom_push_false_pushes_nothing(self) -> None:
        dag, _ = single(lambda ctx, op: "value", do_xcom_push=False)
        store = InMemoryXComStore()
        assert run_try(dag, make_spec("d", [task_spec("t")]), "t", xcoms=store).state == "success"
        assert store.pull("t", -1, "return_value") == (False, None)

    def test_multiple_outputs_pushes_each_key_and_the_whole_dict(self) -> None:
        dag, _ = single(lambda ctx, op: {"a": 1, "b": [2]}, multiple_outputs=True)
        store = InMemoryXComStore()
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t", xcoms=store)
        assert result.state is TaskState.SUCCESS and result.result_length == 2
        assert store.pull("t", -1, "a") == (True, 1)
        assert store.pull("t", -1, "b") == (True, [2])
        assert store.pull("t", -1, "return_value") == (True, {"a": 1, "b": [2]})

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                [1],
                "TypeError: Returned output was type <class 'list'> expected dictionary "
                "for multiple_outputs",
            ),
            (
                {1: "x"},
                "TypeError: Returned dictionary keys must be strings when using "
                "multiple_outputs, found 1 (<class 'int'>) instead",
            ),
        ],
    )
    def test_multiple_outputs_needs_a_dict_with_str_keys(self, value: Any, message: str) -> None:
        dag, _ = single(lambda ctx, op: value, multiple_outputs=True)
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t")
        assert result.state is TaskState.FAILED
        assert result.error == message

    def test_a_result_without_json_form_fails_the_try_naming_the_task(self) -> None:
        dag, _ = single(lambda ctx, op: object())
        result = run_try(dag, make_spec("d", [task_spec("t", retries=1)]), "t")
        assert result.state is TaskState.UP_FOR_RETRY
        assert result.error is not None and result.error.startswith("XComValueError: task 't'")
        assert "builtins.object" in result.error

    def test_context_is_current_during_execute(self) -> None:
        seen: dict[str, Any] = {}

        def fn(ctx: Any, op: Any) -> None:
            seen["same"] = get_current_context() is ctx
            seen["task_is_running_copy"] = ctx["task"] is op and ctx["ti"].task is op

        dag, _ = single(fn)
        run_try(dag, make_spec("d", [task_spec("t")]), "t")
        assert seen == {"same": True, "task_is_running_copy": True}

    def test_previous_try_xcoms_are_cleared(self) -> None:
        store = InMemoryXComStore()
        store.push("t", -1, "leftover", "from try 1")
        dag, _ = single(lambda ctx, op: None)
        run_try(dag, make_spec("d", [task_spec("t")]), "t", xcoms=store, try_number=2)
        assert store.pull("t", -1, "leftover") == (False, None)

    def test_skip_downstream_requests_reach_the_result(self) -> None:
        def branch(ctx: Any, op: Any) -> str:
            ctx["ti"].skip_downstream(["b", "c"])
            return "a"

        dag, _ = single(branch)
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t")
        assert result.skip_downstream == ("b", "c")


class TestTemplatesAndReferences:
    def test_template_fields_and_references_are_ready_before_execute(self) -> None:
        dag = FakeDag("d", params={"p": "dagparam"})
        up = FakeOperator("up", dag)
        store = InMemoryXComStore()
        store.push("up", -1, "return_value", {"rows": 3})
        seen: dict[str, Any] = {}

        def fn(ctx: Any, op: Any) -> None:
            seen.update(cmd=op.cmd, op_kwargs=op.op_kwargs, op_args=op.op_args)

        FakeOperator(
            "t",
            dag,
            fn,
            template_fields=("cmd",),
            cmd="{{ ds }} {{ params.p }} {{ dag_run.conf['c'] }}",
            op_kwargs={"data": XComArg(up), "raw": "{{ ds }}"},
            op_args=[XComArg(up, "missing")],
        )
        run = scheduled_run("d", conf={"c": "C"})
        spec = make_spec("d", [task_spec("up"), task_spec("t", upstream=["up"])])
        assert run_try(dag, spec, "t", xcoms=store, run=run).state is TaskState.SUCCESS
        assert seen == {
            "cmd": "2024-01-01 dagparam C",
            "op_kwargs": {"data": {"rows": 3}, "raw": "{{ ds }}"},
            "op_args": [None],
        }
        assert isinstance(dag.tasks["t"].op_kwargs["data"], XComArg)

    def test_a_template_error_fails_the_try_and_still_calls_callbacks(self) -> None:
        calls: list[Any] = []
        dag, _ = single(
            lambda ctx, op: None,
            template_fields=("cmd",),
            cmd="{{ nope }}",
            on_failure_callback=lambda ctx: calls.append(ctx["exception"]),
        )
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t")
        assert result.state is TaskState.FAILED
        assert result.error == "TemplateRenderError: task 't' field 'cmd': 'nope' is undefined"
        assert len(calls) == 1 and "nope" in str(calls[0])


class TestFailures:
    def test_task_skipped_skips_without_callbacks(self) -> None:
        calls: list[str] = []
        dag, _ = single(
            raise_(TaskSkipped("nothing to do")),
            on_success_callback=lambda ctx: calls.append("success"),
            on_failure_callback=lambda ctx: calls.append("failure"),
        )
        result = run_try(dag, make_spec("d", [task_spec("t", retries=2)]), "t")
        assert result.state is TaskState.SKIPPED
        assert result.error is None and result.next_try_at is None
        assert calls == []

    def test_non_retryable_failure_fails_at_once_whatever_the_retries(self) -> None:
        dag, _ = single(raise_(TaskFailed("bad input")))
        result = run_try(dag, make_spec("d", [task_spec("t", retries=5)]), "t")
        assert result.state is TaskState.FAILED
        assert result.error == "TaskFailed: bad input"
        assert result.next_try_at is None
        assert result.traceback is not None and "bad input" in result.traceback

    def test_retryable_task_failed_goes_up_for_retry(self) -> None:
        dag, _ = single(raise_(TaskFailed("flaky", non_retryable=False)))
        spec = make_spec("d", [task_spec("t", retries=1, retry_delay=30)])
        result = run_try(dag, spec, "t", clock=Clock(FAILED_AT))
        assert result.state is TaskState.UP_FOR_RETRY
        assert result.next_try_at == FAILED_AT + dt.timedelta(seconds=30)
        assert result.retry_delay_seconds == 30

    def test_plain_exception_retries_with_the_fixed_delay_then_fails(self) -> None:
        dag, _ = single(raise_(ValueError("boom\nsecond line")))
        spec = make_spec("d", [task_spec("t", retries=2)])  # retry_delay 300 s by default
        first = run_try(dag, spec, "t", try_number=1, clock=Clock(FAILED_AT))
        assert first.state is TaskState.UP_FOR_RETRY
        assert first.next_try_at == dt.datetime(2024, 1, 2, 3, 9, 5, tzinfo=UTC)
        assert first.error == "ValueError: boom second line"
        second = run_try(dag, spec, "t", try_number=2, clock=Clock(FAILED_AT))
        assert second.state is TaskState.UP_FOR_RETRY
        third = run_try(dag, spec, "t", try_number=3, clock=Clock(FAILED_AT))
        assert third.state is TaskState.FAILED and third.next_try_at is None

    def test_exponential_backoff_matches_airflows_formula(self) -> None:
        dag, _ = single(raise_(RuntimeError("x")))
        spec = make_spec(
            "d", [task_spec("t", retries=3, retry_delay=10, retry_exponential_backoff=True)]
        )
        run = scheduled_run("d")
        result = run_try(dag, spec, "t", run=run, try_number=3, clock=Clock(FAILED_AT))
        # Airflow: min_backoff = ceil(delay * 2 ** (try_number - 1)) = 40, then a
        # jitter from sha1("dag_id#task_id#logical_date#try_number").
        seed = f"d#t#{run.logical_date}#3"
        jitter = int(hashlib.sha1(seed.encode()).hexdigest(), 16) % 40
        expected = 40 + jitter
        assert math.ceil(10 * 2**2) == 40
        assert result.retry_delay_seconds == expected
        assert result.next_try_at == FAILED_AT + dt.timedelta(seconds=expected)

    def test_system_exit_in_task_code_is_a_failure_not_a_crash(self) -> None:
        dag, _ = single(raise_(SystemExit(3)))
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t")
        assert result.state is TaskState.FAILED and result.error == "SystemExit: 3"


def spin(ctx: Any, op: Any) -> None:
    n = 0
    while True:
        n += 1


class TestExecutionTimeout:
    def test_main_thread(self) -> None:
        dag, op = single(spin, execution_timeout=dt.timedelta(seconds=0.2))
        result = run_try(dag, make_spec("d", [task_spec("t", retries=1)]), "t")
        assert result.state is TaskState.UP_FOR_RETRY
        assert result.error == "TaskTimeout: Task exceeded its execution_timeout of 0.2s"
        assert op.kills == ["t"]

    def test_worker_thread(self) -> None:
        dag, op = single(spin, execution_timeout=dt.timedelta(seconds=0.2))
        spec = make_spec("d", [task_spec("t")])
        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(run_try, dag, spec, "t").result()
        assert result.state is TaskState.FAILED
        assert result.error is not None and result.error.startswith("TaskTimeout: ")
        assert op.kills == ["t"]

    def test_spec_timeout_applies_when_the_operator_has_none(self) -> None:
        dag, op = single(spin)
        spec = make_spec("d", [task_spec("t", execution_timeout=0.2)])
        assert run_try(dag, spec, "t").state is TaskState.FAILED
        assert op.kills == ["t"]


class TestCallbacks:
    def test_success_callback_gets_the_context(self) -> None:
        seen: list[Any] = []
        dag, _ = single(
            lambda ctx, op: 1,
            on_success_callback=lambda ctx: seen.append(
                (ctx["ti"].task_id, ctx["ti"].state, ctx["ds"], "exception" in ctx)
            ),
        )
        run_try(dag, make_spec("d", [task_spec("t")]), "t")
        assert seen == [("t", TaskState.SUCCESS, "2024-01-01", False)]

    def test_retry_then_failure_callbacks_get_the_exception(self) -> None:
        seen: list[Any] = []
        error = KeyError("k")
        dag, _ = single(
            raise_(error),
            on_retry_callback=lambda ctx: seen.append(("retry", ctx["exception"])),
            on_failure_callback=[
                lambda ctx: seen.append(("failure", ctx["exception"])),
                lambda ctx: seen.append(("second", ctx["ti"].state)),
            ],
        )
        spec = make_spec("d", [task_spec("t", retries=1)])
        run_try(dag, spec, "t", try_number=1)
        run_try(dag, spec, "t", try_number=2)
        assert seen == [("retry", error), ("failure", error), ("second", TaskState.FAILED)]

    def test_a_failing_callback_is_logged_and_changes_nothing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        seen: list[str] = []

        def broken(ctx: Any) -> None:
            raise RuntimeError("callback bug")

        dag, _ = single(
            lambda ctx, op: "ok", on_success_callback=[broken, lambda ctx: seen.append("next")]
        )
        result = run_try(dag, make_spec("d", [task_spec("t")]), "t")
        assert result.state is TaskState.SUCCESS and result.error is None
        assert seen == ["next"]
        assert "callback bug" in caplog.text


class TestMapping:
    def make(self, upstream_value: Any) -> tuple[FakeDag, Any, InMemoryXComStore]:
        dag = FakeDag("d")
        up = FakeOperator("up", dag, lambda ctx, op: upstream_value)
        FakeMapped(
            "m",
            dag,
            lambda ctx, op: f"{op.x}-{op.label}-{ctx['expanded_ti_count']}",
            {"x": XComArg(up), "label": ["{{ ds }}", "b"]},
            template_fields=("x", "label"),
        )
        spec = make_spec(
            "d",
            [task_spec("up"), mapped_spec("m", {"x": "up", "label": None}, upstream=["up"])],
        )
        return dag, spec, InMemoryXComStore()

    def test_an_instance_runs_with_its_own_arguments(self) -> None:
        dag, spec, store = self.make(["{{ a }}", "{{ b }}"])
        assert run_try(dag, spec, "up", xcoms=store).result_length == 2
        results = [run_try(dag, spec, "m", xcoms=store, map_index=i) for i in range(4)]
        assert all(r.state is TaskState.SUCCESS for r in results)
        assert store.pull_mapped("m", "return_value") == [
            "{{ a }}-2024-01-01-4",
            "{{ a }}-b-4",
            "{{ b }}-2024-01-01-4",
            "{{ b }}-b-4",
        ]

    @pytest.mark.parametrize(
        ("value", "error"),
        [
            ("not a list", "UnmappableXComTypePushed: unmappable return type 'str'"),
            (5, "UnmappableXComTypePushed: unmappable return type 'int'"),
            (None, "XComForMappingNotPushed: did not push XCom for task mapping"),
        ],
    )
    def test_upstream_of_a_map_must_return_a_list_or_dict(self, value: Any, error: str) -> None:
        dag, spec, store = self.make(value)
        result = run_try(dag, spec, "up", xcoms=store)
        assert result.state is TaskState.FAILED
        assert result.error == error

    def test_many_instances_in_threads(self) -> None:
        dag, spec, store = self.make(list(range(100)))
        run_try(dag, spec, "up", xcoms=store)
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(lambda i: run_try(dag, spec, "m", xcoms=store, map_index=i), range(200))
            )
        assert {r.state for r in results} == {TaskState.SUCCESS}
        values = store.pull_mapped("m", "return_value")
        assert values[0] == "0-2024-01-01-200" and values[199] == "99-b-200"
        assert len(values) == 200
