"""Setup and teardown tasks in the pure core: Airflow 3's trigger rule for
teardowns, the implicit all-success constraint on a scope's setups, the run
state that ignores teardowns, clearing, and validation of misuse."""

from __future__ import annotations

import pytest

from chalicelib.core.selection import tasks_to_clear
from chalicelib.core.spec import DagSpec
from chalicelib.core.states import DagRunState, TaskState
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.core.validation import validate_spec
from tests.core.simulation import Outcome, make_spec, simulate

TR = TriggerRule
TEARDOWN = {"is_teardown": True, "trigger_rule": TR.ALL_DONE_SETUP_SUCCESS}
SETUP = {"is_setup": True}


def outcomes(**states: TaskState):
    """Each named task ends in the given state; every other task succeeds."""

    def outcome(task: str, _index: int, _try: int) -> Outcome:
        return Outcome(states.get(task, TaskState.SUCCESS), non_retryable=True)

    return outcome


def cluster(**extra: dict) -> DagSpec:
    """create >> query >> delete, delete a teardown of create (the Airflow docs' example)."""
    edges = {"create": ["query", "delete"], "query": ["delete"]}
    return make_spec(edges, create=SETUP, delete={**TEARDOWN, **extra.get("delete", {})})


S, F, K, UF = "success", "failed", "skipped", "upstream_failed"


def test_all_succeed() -> None:
    result = simulate(cluster())
    assert result.states == {"create": S, "query": S, "delete": S}
    assert result.run_state is DagRunState.SUCCESS


def test_setup_fails_work_upstream_failed_teardown_upstream_failed_run_failed() -> None:
    result = simulate(cluster(), outcomes(create=TaskState.FAILED))
    # No setup succeeded: the teardown does not run (Airflow's ALL_DONE_SETUP_SUCCESS).
    assert result.states == {"create": F, "query": UF, "delete": UF}
    assert result.run_state is DagRunState.FAILED


def test_setup_skipped_skips_work_and_teardown_run_succeeds() -> None:
    result = simulate(cluster(), outcomes(create=TaskState.SKIPPED))
    assert result.states == {"create": K, "query": K, "delete": K}
    assert result.run_state is DagRunState.SUCCESS


def test_work_fails_teardown_still_runs_and_run_fails() -> None:
    result = simulate(cluster(), outcomes(query=TaskState.FAILED))
    assert result.states == {"create": S, "query": F, "delete": S}
    assert result.run_state is DagRunState.FAILED


def test_teardown_failure_alone_does_not_fail_the_run() -> None:
    result = simulate(cluster(), outcomes(delete=TaskState.FAILED))
    assert result.states == {"create": S, "query": S, "delete": F}
    assert result.run_state is DagRunState.SUCCESS


def test_teardown_failure_fails_the_run_with_on_failure_fail_dagrun() -> None:
    spec = cluster(delete={"on_failure_fail_dagrun": True})
    result = simulate(spec, outcomes(delete=TaskState.FAILED))
    assert result.run_state is DagRunState.FAILED


def test_on_failure_fail_dagrun_makes_the_teardown_the_only_leaf() -> None:
    # Airflow's _tis_for_dagrun_state: the work task above a counted teardown is no
    # longer a leaf, so a failed query with a successful teardown is a successful run.
    spec = cluster(delete={"on_failure_fail_dagrun": True})
    assert spec.run_state_leaves == frozenset({"delete"})
    assert cluster().run_state_leaves == frozenset({"query"})
    result = simulate(spec, outcomes(query=TaskState.FAILED))
    assert result.states["delete"] == S
    assert result.run_state is DagRunState.SUCCESS


def test_a_dag_of_teardowns_only_counts_its_plain_leaves() -> None:
    spec = make_spec({"t1": ["t2"]}, t1=TEARDOWN, t2=TEARDOWN)
    assert spec.run_state_leaves == frozenset({"t2"})


def test_teardown_runs_when_one_of_several_setups_succeeded() -> None:
    edges = {"s1": ["w", "t"], "s2": ["w", "t"], "w": ["t"]}
    spec = make_spec(edges, s1=SETUP, s2=SETUP, t=TEARDOWN)
    result = simulate(spec, outcomes(s1=TaskState.FAILED))
    assert result.states == {"s1": F, "s2": S, "w": UF, "t": S}
    assert result.run_state is DagRunState.FAILED


def test_teardown_skipped_when_every_setup_skipped() -> None:
    edges = {"s1": ["w", "t"], "s2": ["w", "t"], "w": ["t"]}
    spec = make_spec(edges, s1=SETUP, s2=SETUP, t=TEARDOWN)
    result = simulate(spec, outcomes(s1=TaskState.SKIPPED, s2=TaskState.SKIPPED))
    assert result.states == {"s1": K, "s2": K, "w": K, "t": K}


def test_indirect_setup_failure_wins_over_an_all_done_rule() -> None:
    # s >> w1 >> w2 (all_done) >> t: w2 is in the setup's scope, so Airflow's implicit
    # all-success constraint on s marks it upstream_failed although all_done would run.
    edges = {"s": ["w1", "t"], "w1": ["w2"], "w2": ["t"]}
    spec = make_spec(edges, s=SETUP, w2={"trigger_rule": TR.ALL_DONE}, t=TEARDOWN)
    assert spec.indirect_setups == {"w2": ("s",)}
    result = simulate(spec, outcomes(s=TaskState.FAILED))
    assert result.states == {"s": F, "w1": UF, "w2": UF, "t": UF}
    # Without the setup flag all_done runs, as for any task.
    plain = make_spec(edges, w2={"trigger_rule": TR.ALL_DONE})
    assert simulate(plain, outcomes(s=TaskState.FAILED)).states["w2"] == S


def test_indirect_setup_skip_skips_an_all_done_task() -> None:
    edges = {"s": ["w1", "t"], "w1": ["w2"], "w2": ["t"]}
    spec = make_spec(edges, s=SETUP, w2={"trigger_rule": TR.ALL_DONE}, t=TEARDOWN)
    result = simulate(spec, outcomes(s=TaskState.SKIPPED))
    assert result.states == {"s": K, "w1": K, "w2": K, "t": K}


def test_task_outside_the_scope_has_no_setup_constraint() -> None:
    # s1 >> w1 >> w2 >> t1 >> w3; w2 >> w4 (the docs' scope example): w3 and w4 are
    # not between s1 and t1.
    edges = {"s1": ["w1", "t1"], "w1": ["w2"], "w2": ["t1", "w4"], "t1": ["w3"]}
    spec = make_spec(edges, s1=SETUP, t1=TEARDOWN)
    assert spec.setup_scopes == {"w1": frozenset({"s1"}), "w2": frozenset({"s1"})}


def test_a_setup_without_teardown_scopes_everything_below() -> None:
    spec = make_spec({"create": ["run"], "run": ["other"]}, create=SETUP)
    assert spec.setup_scopes == {"run": frozenset({"create"}), "other": frozenset({"create"})}


def test_task_waiting_only_on_its_setup_hears_when_the_setup_finishes() -> None:
    # a (always) starts with the run, so w's only direct upstream can finish before
    # the setup does; w must be evaluated again when s finishes, or the run sticks.
    edges = {"s": ["x", "t"], "x": ["a"], "a": ["w"], "w": ["t"]}
    spec = make_spec(edges, s=SETUP, a={"trigger_rule": TR.ALWAYS}, t=TEARDOWN)
    assert spec.setup_watchers == {"s": ("w",)}
    for seed in range(5):
        result = simulate(spec, seed=seed)
        assert result.states == {"s": S, "x": S, "a": S, "w": S, "t": S}
        assert result.violations == []


def test_an_upstream_teardown_counts_like_any_upstream_task() -> None:
    # As in Airflow's TriggerRuleDep: a task below a teardown sees its failure; the
    # run fails because that task is a leaf.
    edges = {"s": ["w", "t"], "w": ["t"], "t": ["after"]}
    spec = make_spec(edges, s=SETUP, t=TEARDOWN)
    result = simulate(spec, outcomes(t=TaskState.FAILED))
    assert result.states["after"] == UF
    assert result.run_state is DagRunState.FAILED


def test_plain_specs_keep_their_hash() -> None:
    spec = make_spec({"a": ["b"]})
    assert "is_teardown" not in spec.canonical_json()
    assert "on_failure_fail_dagrun" not in spec.canonical_json()
    assert '"is_teardown":true' in cluster().canonical_json()


# ------------------------------------------------------------------ clearing
def docs_scope() -> DagSpec:
    edges = {"s1": ["w1", "t1"], "w1": ["w2"], "w2": ["t1", "w4"], "t1": ["w3"]}
    return make_spec(edges, s1=SETUP, t1=TEARDOWN)


@pytest.mark.parametrize(
    ("named", "upstream", "downstream", "expected"),
    [
        (["w1"], False, False, {"w1", "s1", "t1"}),
        (["w2"], False, False, {"w2", "s1", "t1"}),
        (["w3"], False, False, {"w3"}),
        (["w4"], False, False, {"w4"}),
        (["s1"], False, False, {"s1", "t1"}),
        (["t1"], False, False, {"t1"}),
        (["w1"], False, True, {"w1", "w2", "w4", "t1", "w3", "s1"}),
        (["w3"], True, False, {"w3", "t1", "w2", "w1", "s1"}),
        (["w4"], True, False, {"w4", "w2", "w1", "s1", "t1"}),
    ],
)
def test_clearing_takes_setups_and_teardowns_along(
    named: list[str], upstream: bool, downstream: bool, expected: set[str]
) -> None:
    assert tasks_to_clear(docs_scope(), named, upstream=upstream, downstream=downstream) == expected


def test_clearing_below_a_setup_without_teardown_clears_the_setup() -> None:
    spec = make_spec({"create": ["run"], "run": ["other"]}, create=SETUP)
    assert tasks_to_clear(spec, ["other"], upstream=False, downstream=False) == {"other", "create"}
    # With a teardown after run, other is out of scope (the docs' example).
    spec = make_spec(
        {"create": ["run", "delete"], "run": ["other", "delete"]}, create=SETUP, delete=TEARDOWN
    )
    assert tasks_to_clear(spec, ["other"], upstream=False, downstream=False) == {"other"}
    assert tasks_to_clear(spec, ["run"], upstream=False, downstream=False) == {
        "run",
        "create",
        "delete",
    }


# ------------------------------------------------------------------ validation
def messages(spec: DagSpec) -> list[str]:
    return [p.message for p in validate_spec(spec)]


def test_valid_setup_teardown_dag_has_no_problems() -> None:
    assert messages(cluster()) == []


def test_task_right_after_a_setup_must_be_all_success() -> None:
    edges = {"s": ["w", "t"], "w": ["t"]}
    spec = make_spec(edges, s=SETUP, w={"trigger_rule": TR.ALL_DONE}, t=TEARDOWN)
    assert any(
        "directly downstream of this setup" in m and "'all_done'" in m for m in messages(spec)
    )


def test_teardown_with_another_trigger_rule_is_refused() -> None:
    spec = make_spec({"s": ["t"]}, s=SETUP, t={"is_teardown": True, "trigger_rule": TR.ALL_DONE})
    assert any("teardown task has trigger rule 'all_done'" in m for m in messages(spec))


def test_task_both_setup_and_teardown_is_refused() -> None:
    spec = make_spec({"a": ["b"]}, b={**SETUP, **TEARDOWN})
    assert "a task cannot be both a setup and a teardown" in messages(spec)


def test_on_failure_fail_dagrun_needs_a_teardown() -> None:
    spec = make_spec({"a": ["b"]}, b={"on_failure_fail_dagrun": True})
    assert any("on_failure_fail_dagrun applies to teardown tasks only" in m for m in messages(spec))
