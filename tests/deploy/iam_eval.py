"""A small IAM policy evaluator for tests: enough of AWS's documented semantics to
show what Slipstream's own policies allow, and loud about anything else.

moto checks only some services' resources and ignores Conditions and policy
variables, so the tenant boundary (``${aws:PrincipalTag/tenant}``, session-tag
conditions) cannot be shown on moto alone. What this implements, after the IAM
User Guide's "Policy evaluation logic" and "IAM JSON policy elements":

- Effect Allow/Deny; an explicit Deny wins over any Allow; no matching Allow is
  an implicit deny.
- Action / NotAction, case-insensitive, with ``*`` and ``?`` wildcards.
- Resource / NotResource, case-sensitive wildcards, after policy variables
  (``${aws:PrincipalTag/k}``, ``${aws:PrincipalAccount}``, ``${aws:username}``,
  ``${aws:userid}``, and the escapes ``${*}``, ``${?}``, ``${$}``) are replaced by
  their literal value. A variable whose key the request lacks makes that
  resource or condition value match nothing.
- Principal in resource policies (trust policies): ``*``, an ARN, or an account
  (``arn:...:root`` or its id), which delegates to the caller's identity policy.
- Condition operators: StringEquals, StringNotEquals, StringLike, ArnEquals,
  ArnLike, Null, and the ForAllValues: / ForAnyValue: forms of the string
  operators. Keys are case-insensitive. Operators AND, keys AND, values OR.

An operator, variable or element it does not know raises ``Unsupported``
instead of guessing: a test that meets one must teach this module first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"

ContextValue = str | Sequence[str]

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}
_VARIABLE_KEYS = re.compile(
    r"^(aws:PrincipalTag/[\w+=,.@:/-]+|aws:PrincipalAccount|aws:username|aws:userid)$",
    re.IGNORECASE,
)
_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
}
_STRING_OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "ArnEquals", "ArnLike"}


class Unsupported(ValueError):
    """The policy or request uses something this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    """One authorization question: may ``principal`` do ``action`` on ``resource``?

    ``context`` holds the condition keys (``aws:PrincipalTag/tenant``,
    ``aws:RequestTag/tenant``, ``aws:TagKeys``, ``s3:prefix``...): a string for
    a single-valued key, a list for a multivalued one.
    """

    principal: str
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def value(self, key: str) -> ContextValue | None:
        lowered = key.lower()
        for name, value in self.context.items():
            if name.lower() == lowered:
                return value
        return None


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | bool) else list(value)


def _pattern(text: str, request: Request, *, case_sensitive: bool) -> re.Pattern[str] | None:
    """A regex for a policy value with ``*``/``?`` wildcards and variables
    substituted literally; None when a variable has no value in the request."""
    parts: list[str] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        parts.append(_glob(text[position : match.start()]))
        inner = match.group(1)
        if inner in _ESCAPES:
            parts.append(re.escape(_ESCAPES[inner]))
        else:
            if "," in inner:
                raise Unsupported(f"policy variable default values: ${{{inner}}}")
            if not _VARIABLE_KEYS.match(inner):
                raise Unsupported(f"unknown policy variable ${{{inner}}}")
            value = request.value(inner)
            if value is None:
                return None
            if not isinstance(value, str):
                raise Unsupported(f"multivalued key {inner} as a policy variable")
            parts.append(re.escape(value))
        position = match.end()
    parts.append(_glob(text[position:]))
    return re.compile("".join(parts), 0 if case_sensitive else re.IGNORECASE)


def _glob(text: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)


def _matches_any(values: Iterable[str], subject: str, request: Request, *, case: bool) -> bool:
    for value in values:
        pattern = _pattern(value, request, case_sensitive=case)
        if pattern is not None and pattern.fullmatch(subject):
            return True
    return False


def _string_test(operator: str, policy_value: str, actual: str, request: Request) -> bool:
    if operator == "StringEquals":  # wildcards are literal characters here
        policy_value = policy_value.replace("*", "${*}").replace("?", "${?}")
    # StringLike, ArnLike and ArnEquals (the two Arn operators are the same in IAM) glob
    pattern = _pattern(policy_value, request, case_sensitive=True)
    return pattern is not None and pattern.fullmatch(actual) is not None


def _condition_holds(operator: str, key: str, values: list[str], request: Request) -> bool:
    actual = request.value(key)
    if operator == "Null":
        (expected,) = values
        if expected not in ("true", "false"):
            raise Unsupported(f"Null takes true or false, not {expected!r}")
        absent = actual is None
        return absent if expected == "true" else not absent
    qualifier, _, base = operator.rpartition(":")
    if base not in _STRING_OPERATORS or base.endswith("IfExists"):
        raise Unsupported(f"condition operator {operator}")
    if qualifier not in ("", "ForAllValues", "ForAnyValue"):
        raise Unsupported(f"condition set operator {qualifier}")
    negated = base == "StringNotEquals"
    positive = "StringEquals" if negated else base

    def one(item: str) -> bool:
        return any(_string_test(positive, v, item, request) for v in values)

    if qualifier == "":
        if actual is None:
            return False  # a missing key fails every operator but Null (and *IfExists)
        if not isinstance(actual, str):
            raise Unsupported(f"single-valued operator {operator} on multivalued key {key}")
        return not one(actual) if negated else one(actual)
    items = [actual] if isinstance(actual, str) else list(actual or [])
    if negated:
        raise Unsupported(f"{operator}: negated set operators")
    if qualifier == "ForAllValues":
        return all(one(item) for item in items)  # true for a missing or empty key
    return any(one(item) for item in items)


def _conditions_hold(statement: Mapping[str, Any], request: Request) -> bool:
    for operator, block in (statement.get("Condition") or {}).items():
        for key, values in block.items():
            strings = [str(v).lower() if isinstance(v, bool) else str(v) for v in _listed(values)]
            if not _condition_holds(operator, key, strings, request):
                return False
    return True


def _principal_matches(principal: Any, caller: str) -> tuple[bool, bool]:
    """(matches, names the caller itself): an account principal delegates to the
    caller's identity policy, a named one or ``*`` does not."""
    if principal == "*":
        return True, True
    if not isinstance(principal, Mapping) or set(principal) - {"AWS", "Service"}:
        raise Unsupported(f"principal {principal!r}")
    caller_account = caller.split(":")[4] if caller.startswith("arn:") else ""
    for value in _listed(principal.get("AWS", [])):
        if value == caller or value == "*":
            return True, True
        account = value.split(":")[4] if value.startswith("arn:") else value
        if (value.endswith(":root") or value.isdigit()) and account == caller_account:
            return True, False
    return any(v == caller for v in _listed(principal.get("Service", []))), True


def _statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - _STATEMENT_KEYS
    if unknown:
        raise Unsupported(f"statement elements {sorted(unknown)}")
    if "Action" in statement:
        if not _matches_any(_listed(statement["Action"]), request.action, request, case=False):
            return False
    elif "NotAction" not in statement or _matches_any(
        _listed(statement["NotAction"]), request.action, request, case=False
    ):
        return False
    if "Resource" in statement:
        if not _matches_any(_listed(statement["Resource"]), request.resource, request, case=True):
            return False
    elif "NotResource" in statement:
        if _matches_any(_listed(statement["NotResource"]), request.resource, request, case=True):
            return False
    elif "Principal" not in statement:
        raise Unsupported("an identity policy statement without Resource")
    return _conditions_hold(statement, request)


def _statements(policies: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    for policy in policies:
        statements = policy["Statement"]
        yield from [statements] if isinstance(statements, Mapping) else statements


def evaluate(policies: Iterable[Mapping[str, Any]], request: Request) -> str:
    """The identity-based decision: ``Allow``, ``ExplicitDeny`` or ``ImplicitDeny``."""
    decision = IMPLICIT_DENY
    for statement in _statements(policies):
        if "Principal" in statement:
            raise Unsupported("Principal in an identity policy")
        if _statement_applies(statement, request):
            if statement["Effect"] == "Deny":
                return EXPLICIT_DENY
            if statement["Effect"] != "Allow":
                raise Unsupported(f"Effect {statement['Effect']!r}")
            decision = ALLOW
    return decision


def evaluate_with_resource_policy(
    identity: Iterable[Mapping[str, Any]], resource_policy: Mapping[str, Any], request: Request
) -> str:
    """Within one account: a Deny in either wins; an Allow of the resource policy
    that names the caller (or ``*``) suffices; one that names only the account
    needs the identity policy's Allow too (how role trust policies delegate)."""
    identity_decision = evaluate(identity, request)
    if identity_decision == EXPLICIT_DENY:
        return EXPLICIT_DENY
    granted_alone = granted_with_identity = False
    for statement in _statements([resource_policy]):
        if "Principal" not in statement:
            raise Unsupported("a resource policy statement without Principal")
        matches, named = _principal_matches(statement["Principal"], request.principal)
        if not matches or not _statement_applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return EXPLICIT_DENY
        if named:
            granted_alone = True
        else:
            granted_with_identity = True
    if granted_alone or (granted_with_identity and identity_decision == ALLOW):
        return ALLOW
    return IMPLICIT_DENY
