"""dag.test() with XComArg.map / .zip: the function runs in the mapped instance's own try."""

from __future__ import annotations

from typing import Any

from chalicelib.sdk import DAG, TaskFailed, task


def test_map_function_runs_per_instance_and_its_errors_are_that_instances() -> None:
    calls: list[str] = []
    tries: dict[str, int] = {}

    def checked(name: str) -> str:
        calls.append(name)
        if name == "bad":
            raise ValueError("bad input")
        if name == "fatal":
            raise TaskFailed("no retries for this one")
        if name == "flaky":
            tries[name] = tries.get(name, 0) + 1
            if tries[name] == 1:
                raise RuntimeError("first try fails")
        return name.upper()

    with DAG("map_errors", default_args={"retries": 1, "retry_delay": 0}) as dag:

        @task
        def names() -> list[str]:
            return ["ok", "bad", "fatal", "flaky"]

        @task
        def use(name: str) -> str:
            return name

        use.expand(name=names().map(checked))

    result = dag.test()

    assert result.task_states == {
        "names": "success",
        "use[0]": "success",
        "use[1]": "failed",
        "use[2]": "failed",
        "use[3]": "success",
    }
    assert result.tries["use[1]"] == 2  # an error in the function is the task's: retried
    assert result.tries["use[2]"] == 1  # AirflowFailException: no retry
    assert result.tries["use[3]"] == 2
    assert "bad input" in result.errors["use[1]"]
    # each instance applied the function to its own element only (plus its retries)
    assert sorted(calls) == sorted(["ok", "bad", "bad", "fatal", "flaky", "flaky"])


def test_map_over_a_dict_mapped_upstream_and_in_a_plain_argument() -> None:
    seen: dict[str, Any] = {}

    with DAG("map_shapes") as dag:

        @task
        def settings() -> dict[str, int]:
            return {"a": 1, "b": 2}

        @task
        def square(x: int) -> int:
            return x * x

        @task
        def pair(item: Any) -> str:
            return f"{item[0]}={item[1]}"

        @task
        def keep(label: str) -> str:
            seen.setdefault("labels", []).append(label)
            return label

        @task
        def collect(values: Any) -> None:
            seen["collected"] = list(values)

        squares = square.expand(x=[1, 2, 3])
        # a dict is mapped over as its (key, value) pairs, as expand() does
        keep.expand(label=settings().map(lambda kv: f"{kv[0]}:{kv[1]}"))
        # the results of a mapped task, mapped again
        pair.expand(item=squares.zip(squares.map(lambda v: v + 1)))
        # outside expand(): the task gets the lazy sequence
        collect(squares.map(str))

    result = dag.test()

    assert result.state == "success", result.errors
    assert sorted(seen["labels"]) == ["a:1", "b:2"]
    assert seen["collected"] == ["1", "4", "9"]
    assert [result.task_states[f"pair[{i}]"] for i in range(3)] == ["success"] * 3


def test_zip_of_an_upstream_that_returned_no_list_fails_the_mapped_task() -> None:
    with DAG("zip_not_list") as dag:

        @task
        def one() -> list[int]:
            return [1]

        @task
        def scalar() -> int:
            return 5

        @task
        def use(x: Any) -> Any:
            return x

        use.expand(x=one().zip(scalar()))

    result = dag.test()

    assert result.task_states["scalar"] == "failed"  # as with expand() over a scalar
    assert "unmappable return type 'int'" in result.errors["scalar"]
    assert result.task_states["use"] == "upstream_failed"
