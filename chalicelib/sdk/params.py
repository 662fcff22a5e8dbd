"""DAG and task params: Airflow's ``Param`` (a default plus a JSON-schema fragment).

The schema is checked by :mod:`chalicelib.core.validation` so the control plane,
which never imports DAG files, validates run conf the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.core.spec import ParamSpec
from chalicelib.core.values import OPAQUE_TAG, encode
from chalicelib.sdk.xcom_arg import ResolvableArg

if TYPE_CHECKING:
    from chalicelib.sdk.dag import DAG


class _NoDefault:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NoDefault()


class Param:
    """``Param(5, type="integer", minimum=0, description="...")``.

    Schema keywords (``type``, ``enum``, ``minimum``, ``maximum``, ``minLength``,
    ``maxLength``, ``format``, ...) are kept as given.
    """

    def __init__(self, default: Any = NOTSET, description: str | None = None, **schema: Any):
        self.value = default
        self.description = description
        self.schema = schema

    @property
    def has_default(self) -> bool:
        return self.value is not NOTSET

    def resolve(self) -> Any:
        return None if self.value is NOTSET else self.value

    def __repr__(self) -> str:
        return f"Param({self.value!r}, schema={self.schema!r})"

    def to_spec(self) -> ParamSpec:
        return ParamSpec(
            default=encode(self.value) if self.has_default else None,
            has_default=self.has_default,
            description=self.description,
            schema_=dict(self.schema),
        )


def as_param(value: Any) -> Param:
    """A bare value in ``params={"x": 1}`` is a Param with that default and no schema."""
    return value if isinstance(value, Param) else Param(value)


def params_to_spec(params: Mapping[str, Param]) -> dict[str, ParamSpec]:
    return {name: param.to_spec() for name, param in params.items()}


class DagParam(ResolvableArg):
    """What a ``@dag`` function receives for each of its own arguments.

    Passed on to a task it resolves at run time to the run's value of that
    param (its default overridden by the trigger conf), as in Airflow.
    """

    def __init__(self, dag: DAG, name: str, default: Any = NOTSET):
        self.dag = dag
        self.name = name
        self.default = default

    def resolve(self, context: Mapping[str, Any]) -> Any:
        params = context.get("params") or {}
        if self.name in params:
            return params[self.name]
        if self.default is not NOTSET:
            return self.default
        raise KeyError(f"param {self.name!r} has no value in this run")

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"

    def __slipstream_encode__(self) -> dict[str, Any]:
        return {OPAQUE_TAG: f"param:{self.name}"}
