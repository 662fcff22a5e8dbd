"""The rules a human-in-the-loop answer must pass (core/hitl.py), shared by the
REST API, the operator and dags test."""

from __future__ import annotations

import pytest

from chalicelib.core.hitl import HitlRequest, InvalidResponse, check_request, check_response

REQUEST = HitlRequest(
    subject="s",
    options=("a", "b"),
    params={
        "n": {"value": 1, "description": None, "schema": {"type": "integer", "minimum": 0}},
        "plain": "x",
    },
)


def test_a_good_answer_gives_the_params_with_defaults_filled_in() -> None:
    assert check_response(REQUEST, ["b"], {"n": 5}) == {"n": 5, "plain": "x"}
    assert check_response(REQUEST, ["a"], None) == {"n": 1, "plain": "x"}


@pytest.mark.parametrize(
    ("chosen", "params", "said"),
    [
        ([], None, "choose at least one"),
        (["c"], None, "'c' not in the options 'a', 'b'"),
        (["a", "b"], None, "takes one option"),
        (["a", "a"], None, "chosen twice"),
        (["a"], {"zz": 1}, "'zz' not among the task's params"),
        (["a"], {"n": -1}, "less than the minimum 0"),
        (["a"], {"n": "five"}, "is not of type integer"),
    ],
)
def test_bad_answers_say_what_is_wrong(chosen: list[str], params: dict | None, said: str) -> None:
    with pytest.raises(InvalidResponse, match=said):
        check_response(REQUEST, chosen, params)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidResponse) as bad:
        check_response(REQUEST, ["c"], {"zz": 1})
    assert "'c'" in str(bad.value) and "'zz'" in str(bad.value)


def test_multiple_allows_several() -> None:
    several = HitlRequest(subject="s", options=("a", "b"), multiple=True)
    assert check_response(several, ["a", "b"], None) == {}


def test_request_rules() -> None:
    with pytest.raises(ValueError, match='"_options" is not allowed'):
        check_request(["a"], None, False, {"_options": 1})
    with pytest.raises(ValueError, match="duplicates"):
        check_request(["a", "a"], None, False, {})
