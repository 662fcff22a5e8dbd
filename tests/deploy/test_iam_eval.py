"""The test IAM evaluator (tests/deploy/iam_eval.py) against AWS's documented
semantics (IAM User Guide: policy evaluation logic, policy variables, condition
operators), before anything relies on it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.iam_eval import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Request,
    Unsupported,
    evaluate,
    evaluate_with_resource_policy,
)

CALLER = "arn:aws:sts::111122223333:assumed-role/worker/s"
BUCKET = "arn:aws:s3:::b"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _ask(action: str, resource: str, **context: Any) -> Request:
    return Request(CALLER, action, resource, {k.replace("__", ":"): v for k, v in context.items()})


def test_nothing_matching_is_an_implicit_deny() -> None:
    policy = _policy(_allow("s3:GetObject", f"{BUCKET}/a/*"))
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/b/x")) == IMPLICIT_DENY
    assert evaluate([policy], _ask("s3:PutObject", f"{BUCKET}/a/x")) == IMPLICIT_DENY
    assert evaluate([], _ask("s3:GetObject", f"{BUCKET}/a/x")) == IMPLICIT_DENY


@pytest.mark.parametrize("deny_first", [True, False])
def test_an_explicit_deny_wins_wherever_it_is(deny_first: bool) -> None:
    allow = _policy(_allow("s3:*", "*"))
    deny = _policy({"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{BUCKET}/x"})
    policies = [deny, allow] if deny_first else [allow, deny]
    assert evaluate(policies, _ask("s3:GetObject", f"{BUCKET}/x")) == EXPLICIT_DENY
    assert evaluate(policies, _ask("s3:GetObject", f"{BUCKET}/y")) == ALLOW


def test_actions_match_case_insensitively_with_wildcards() -> None:
    policy = _policy(_allow(["S3:Get*", "sqs:Send?essage"], "*"))
    assert evaluate([policy], _ask("s3:GetObject", "x")) == ALLOW
    assert evaluate([policy], _ask("sqs:SendMessage", "x")) == ALLOW
    assert evaluate([policy], _ask("s3:PutObject", "x")) == IMPLICIT_DENY
    assert evaluate([policy], _ask("sqs:SendMessageBatch", "x")) == IMPLICIT_DENY


def test_resources_match_case_sensitively_and_wholly() -> None:
    policy = _policy(_allow("s3:GetObject", f"{BUCKET}/tenants/*"))
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/tenants/a/b")) == ALLOW
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/Tenants/a")) == IMPLICIT_DENY
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}x/tenants/a")) == IMPLICIT_DENY


def test_not_action_and_not_resource_match_everything_else() -> None:
    policy = _policy({"Effect": "Allow", "NotAction": "iam:*", "NotResource": f"{BUCKET}/s/*"})
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/x")) == ALLOW
    assert evaluate([policy], _ask("iam:PassRole", f"{BUCKET}/x")) == IMPLICIT_DENY
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/s/x")) == IMPLICIT_DENY


def test_a_principal_tag_variable_is_replaced_by_its_literal_value() -> None:
    policy = _policy(_allow("s3:GetObject", f"{BUCKET}/tenants/${{aws:PrincipalTag/tenant}}/*"))
    acme = {"aws__PrincipalTag/tenant": "acme"}
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/tenants/acme/x", **acme)) == ALLOW
    other = _ask("s3:GetObject", f"{BUCKET}/tenants/globex/x", **acme)
    assert evaluate([policy], other) == IMPLICIT_DENY
    # a value is never a wildcard, and an absent key matches nothing
    star = {"aws__PrincipalTag/tenant": "*"}
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/tenants/acme/x", **star)) == (
        IMPLICIT_DENY
    )
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/tenants/acme/x")) == IMPLICIT_DENY


def test_the_escape_variables_are_literal_characters() -> None:
    policy = _policy(_allow("s3:GetObject", f"{BUCKET}/${{*}}"))
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/*")) == ALLOW
    assert evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/x")) == IMPLICIT_DENY


def test_unknown_variables_operators_and_elements_raise() -> None:
    cases = [
        _policy(_allow("s3:GetObject", f"{BUCKET}/${{aws:SourceIp}}")),
        _policy(_allow("s3:GetObject", f"{BUCKET}/${{aws:PrincipalTag/t, 'x'}}")),
        _policy(_allow("s3:GetObject", "*", Condition={"NumericLessThan": {"k": "1"}})),
        _policy(_allow("s3:GetObject", "*", Condition={"StringEqualsIfExists": {"k": "1"}})),
        _policy(_allow("s3:GetObject", "*", Principal="*")),
        _policy({"Effect": "Allow", "Action": "s3:GetObject"}),
    ]
    for policy in cases:
        with pytest.raises(Unsupported):
            evaluate([policy], _ask("s3:GetObject", f"{BUCKET}/x", k="0"))


def test_string_equals_is_exact_and_string_like_globs() -> None:
    equals = _policy(
        _allow("s3:ListBucket", BUCKET, Condition={"StringEquals": {"s3:prefix": "a*"}})
    )
    like = _policy(_allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": "a*"}}))
    assert evaluate([equals], _ask("s3:ListBucket", BUCKET, s3__prefix="abc")) == IMPLICIT_DENY
    assert evaluate([equals], _ask("s3:ListBucket", BUCKET, s3__prefix="a*")) == ALLOW
    assert evaluate([like], _ask("s3:ListBucket", BUCKET, s3__prefix="abc")) == ALLOW
    # a key the request lacks fails the condition
    assert evaluate([like], _ask("s3:ListBucket", BUCKET)) == IMPLICIT_DENY


def test_condition_values_or_keys_and_operators_and_and_keys_ignore_case() -> None:
    condition = {
        "StringEquals": {"AWS:RequestTag/tenant": ["acme", "globex"], "k": "v"},
        "StringLike": {"s3:prefix": "t/*"},
    }
    policy = _policy(_allow("s3:ListBucket", BUCKET, Condition=condition))
    good = {"aws__requesttag/tenant": "globex", "k": "v", "s3__prefix": "t/x"}
    assert evaluate([policy], _ask("s3:ListBucket", BUCKET, **good)) == ALLOW
    for key, value in (("k", "w"), ("s3__prefix", "u/x"), ("aws__requesttag/tenant", "x")):
        assert evaluate([policy], _ask("s3:ListBucket", BUCKET, **{**good, key: value})) == (
            IMPLICIT_DENY
        )


def test_null_tests_presence() -> None:
    present = _policy(
        _allow("sts:AssumeRole", "*", Condition={"Null": {"aws:RequestTag/t": False}})
    )
    absent = _policy(
        _allow("sts:AssumeRole", "*", Condition={"Null": {"aws:RequestTag/t": "true"}})
    )
    tagged = _ask("sts:AssumeRole", "r", **{"aws__RequestTag/t": "x"})
    untagged = _ask("sts:AssumeRole", "r")
    assert evaluate([present], tagged) == ALLOW and evaluate([present], untagged) == IMPLICIT_DENY
    assert evaluate([absent], untagged) == ALLOW and evaluate([absent], tagged) == IMPLICIT_DENY


def test_for_all_values_holds_for_an_empty_set_and_checks_each_member() -> None:
    policy = _policy(
        _allow(
            "sts:TagSession",
            "*",
            Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["tenant"]}},
        )
    )
    assert evaluate([policy], _ask("sts:TagSession", "r")) == ALLOW  # AWS: vacuously true
    assert evaluate([policy], _ask("sts:TagSession", "r", aws__TagKeys=[])) == ALLOW
    assert evaluate([policy], _ask("sts:TagSession", "r", aws__TagKeys=["tenant"])) == ALLOW
    both = _ask("sts:TagSession", "r", aws__TagKeys=["tenant", "team"])
    assert evaluate([policy], both) == IMPLICIT_DENY
    like = _policy(_allow("x:Y", "*", Condition={"ForAnyValue:StringLike": {"k": "a*"}}))
    assert evaluate([like], _ask("x:Y", "r", k=["b", "ab", "ax"])) == ALLOW
    assert evaluate([like], _ask("x:Y", "r", k=[])) == IMPLICIT_DENY


def test_arn_like_globs_and_string_not_equals_negates() -> None:
    arn = _policy(
        _allow("ecs:RunTask", "*", Condition={"ArnLike": {"ecs:cluster": "arn:aws:ecs:*:1:c/*"}})
    )
    assert evaluate([arn], _ask("ecs:RunTask", "t", ecs__cluster="arn:aws:ecs:r:1:c/x")) == ALLOW
    assert evaluate([arn], _ask("ecs:RunTask", "t", ecs__cluster="arn:aws:ecs:r:2:c/x")) == (
        IMPLICIT_DENY
    )
    deny = _policy(
        _allow("s3:*", "*"),
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalTag/tenant": "acme"}},
        },
    )
    tag = "aws__PrincipalTag/tenant"
    assert evaluate([deny], _ask("s3:GetObject", "o", **{tag: "acme"})) == ALLOW
    assert evaluate([deny], _ask("s3:GetObject", "o", **{tag: "x"})) == EXPLICIT_DENY


def test_a_trust_policy_naming_the_account_delegates_to_the_identity_policy() -> None:
    trust = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "sts:AssumeRole",
        }
    )
    role = "arn:aws:iam::111122223333:role/r"
    ask = _ask("sts:AssumeRole", role)
    assert evaluate_with_resource_policy([], trust, ask) == IMPLICIT_DENY
    granted = _policy(_allow("sts:AssumeRole", role))
    assert evaluate_with_resource_policy([granted], trust, ask) == ALLOW
    stranger = Request("arn:aws:iam::999999999999:role/x", "sts:AssumeRole", role)
    assert evaluate_with_resource_policy([granted], trust, stranger) == IMPLICIT_DENY


def test_a_trust_policy_naming_the_caller_suffices_and_its_deny_wins() -> None:
    role = "arn:aws:iam::111122223333:role/r"
    named = _policy({"Effect": "Allow", "Principal": {"AWS": CALLER}, "Action": "sts:AssumeRole"})
    assert evaluate_with_resource_policy([], named, _ask("sts:AssumeRole", role)) == ALLOW
    denied = _policy(
        {"Effect": "Allow", "Principal": {"AWS": CALLER}, "Action": "sts:AssumeRole"},
        {"Effect": "Deny", "Principal": "*", "Action": "sts:*"},
    )
    granted = _policy(_allow("sts:AssumeRole", role))
    ask = _ask("sts:AssumeRole", role)
    assert evaluate_with_resource_policy([granted], denied, ask) == EXPLICIT_DENY
