"""Deadline alerts as DAG files write them (Airflow 3.1's ``airflow.sdk.definitions.deadline``).

``DAG(deadline=DeadlineAlert(reference=..., interval=timedelta(...), callback=...))``:
if a run has not finished by reference + interval, the callback runs once.
Checked as the alert is built, so a mistake fails the DAG file where it is
written, with what is wrong; serialized into the spec as ``DeadlineSpec``.
"""

from __future__ import annotations

import datetime
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.core.deadlines import DeadlineSpec, Reference

__all__ = [
    "AsyncCallback",
    "Callback",
    "DeadlineAlert",
    "DeadlineReference",
    "SyncCallback",
    "deadline_specs",
]

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class Callback:
    """A callable (or the dotted path of one) and the keyword arguments it gets.

    As in Airflow, the callable is called with ``kwargs`` plus ``context`` (so
    ``context`` is reserved). Slipstream runs it in a worker, never in the
    scheduler; the DAG file is loaded there, so a function of the DAG file works.
    """

    kind = "async"

    def __init__(
        self, callback_callable: Callable[..., Any] | str, kwargs: Mapping[str, Any] | None = None
    ) -> None:
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise TypeError(
                f"{type(self).__name__} kwargs must be a dict, got {type(kwargs).__name__}"
            )
        if kwargs and "context" in kwargs:
            raise ValueError(
                f"{type(self).__name__}: 'context' is a reserved kwarg (the callback gets it)"
            )
        self.kwargs: dict[str, Any] = dict(kwargs or {})
        self.callable: Callable[..., Any] | None = None
        if isinstance(callback_callable, str):
            path = callback_callable.strip()
            if not _DOTTED.match(path):
                raise ValueError(
                    f"{type(self).__name__}: {callback_callable!r} is not a dotted path to a "
                    "callable (module.function)"
                )
            self.path = path
        elif callable(callback_callable):
            self.verify_callable(callback_callable)
            self.callable = callback_callable
            module = getattr(callback_callable, "__module__", None) or "builtins"
            qualname = getattr(callback_callable, "__qualname__", type(callback_callable).__name__)
            self.path = f"{module}.{qualname}"
        else:
            raise TypeError(
                f"{type(self).__name__} needs a callable or a dotted path to one, got "
                f"{type(callback_callable).__name__} {callback_callable!r}"
            )

    def verify_callable(self, callback: Callable[..., Any]) -> None:
        """Subclasses refuse callables they cannot run."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Callback):
            return NotImplemented
        return (type(self), self.path, self.kwargs) == (type(other), other.path, other.kwargs)

    def __hash__(self) -> int:
        return hash((type(self), self.path))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, kwargs={self.kwargs!r})"


class AsyncCallback(Callback):
    """An ``async def`` callback. Airflow runs it in the triggerer; Slipstream runs
    it in a worker (``asyncio.run``), where DAG callbacks run."""

    kind = "async"

    def verify_callable(self, callback: Callable[..., Any]) -> None:
        if not (inspect.iscoroutinefunction(callback) or hasattr(callback, "__await__")):
            raise TypeError(
                f"AsyncCallback needs an async callable; {callback!r} is not awaitable "
                "(use SyncCallback for a plain function)"
            )


class SyncCallback(Callback):
    """A plain function callback, run in a worker. ``executor`` is accepted as
    in Airflow; the callback runs on the executor DAG callbacks use."""

    kind = "sync"

    def __init__(
        self,
        callback_callable: Callable[..., Any] | str,
        kwargs: Mapping[str, Any] | None = None,
        executor: str | None = None,
    ) -> None:
        super().__init__(callback_callable, kwargs)
        self.executor = executor


class _Reference:
    """Where a deadline counts from (see ``DeadlineReference``)."""

    def __init__(self, kind: Reference, fixed: datetime.datetime | None = None) -> None:
        self.kind = kind
        self.fixed = fixed

    @property
    def reference_name(self) -> str:
        return self.kind.value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Reference):
            return NotImplemented
        return (self.kind, self.fixed) == (other.kind, other.fixed)

    def __hash__(self) -> int:
        return hash((self.kind, self.fixed))

    def __repr__(self) -> str:
        suffix = "" if self.fixed is None else f"({self.fixed.isoformat()})"
        return f"DeadlineReference.{self.kind.name}{suffix}"


class DeadlineReference:
    """The references Slipstream has: ``DAGRUN_LOGICAL_DATE``, ``DAGRUN_QUEUED_AT``
    and ``FIXED_DATETIME(datetime)``. ``AVERAGE_RUNTIME`` (Airflow 3.1) is refused
    with a message: it needs statistics over past runs the tick does not keep."""

    DAGRUN_LOGICAL_DATE = _Reference(Reference.DAGRUN_LOGICAL_DATE)
    DAGRUN_QUEUED_AT = _Reference(Reference.DAGRUN_QUEUED_AT)

    @classmethod
    def FIXED_DATETIME(cls, dt: datetime.datetime) -> _Reference:
        if not isinstance(dt, datetime.datetime):
            raise TypeError(
                f"DeadlineReference.FIXED_DATETIME needs a datetime, got {type(dt).__name__}"
            )
        aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=datetime.UTC)
        return _Reference(Reference.FIXED_DATETIME, aware.astimezone(datetime.UTC))

    @classmethod
    def AVERAGE_RUNTIME(cls, *args: Any, **kwargs: Any) -> _Reference:
        raise NotImplementedError(
            "DeadlineReference.AVERAGE_RUNTIME is not available in Slipstream: use "
            "DAGRUN_QUEUED_AT or DAGRUN_LOGICAL_DATE with a fixed interval"
        )


class DeadlineAlert:
    """A deadline: ``reference`` + ``interval``, and what to call if a run misses it."""

    def __init__(
        self,
        reference: Any,
        interval: datetime.timedelta,
        callback: Callback,
        name: str | None = None,
    ) -> None:
        if not isinstance(reference, _Reference):
            raise TypeError(
                "DeadlineAlert reference must be DeadlineReference.DAGRUN_LOGICAL_DATE, "
                f"DAGRUN_QUEUED_AT or FIXED_DATETIME(datetime), got {reference!r}"
            )
        if not isinstance(interval, datetime.timedelta):
            raise TypeError(
                f"DeadlineAlert interval must be a timedelta, got {type(interval).__name__} "
                f"{interval!r}"
            )
        if interval < datetime.timedelta(0) and reference.kind is not Reference.FIXED_DATETIME:
            # Airflow accepts it, and the deadline is then always missed (it falls
            # before the run exists): refused here (docs/porting.md, differences).
            raise ValueError(
                f"DeadlineAlert interval {interval} is negative: with {reference!r} the "
                "deadline would fall before the run is queued and always be missed; a "
                "negative interval is only meaningful with FIXED_DATETIME"
            )
        if not isinstance(callback, Callback):
            raise TypeError(
                "DeadlineAlert callback must be AsyncCallback(...) or SyncCallback(...), got "
                f"{type(callback).__name__} {callback!r}"
            )
        self.reference = reference
        self.interval = interval
        self.callback = callback
        self.name = name

    def to_spec(self, callback_ref: str | None = None) -> DeadlineSpec:
        return DeadlineSpec(
            reference=self.reference.kind,
            fixed=self.reference.fixed,
            interval=self.interval.total_seconds(),
            callback=callback_ref or self.callback.path,
            callback_kind="sync" if isinstance(self.callback, SyncCallback) else "async",
            name=self.name,
        )

    def __repr__(self) -> str:
        return f"DeadlineAlert({self.reference!r}, {self.interval!r}, {self.callback!r})"


def deadline_alerts(value: Any, record: Callable[[str], None]) -> list[DeadlineAlert]:
    """``DAG(deadline=...)``: one alert or a list of them, as Airflow 3.1 accepts."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    bad = [item for item in items if not isinstance(item, DeadlineAlert)]
    if bad:
        record(
            "deadline must be a DeadlineAlert or a list of them, got "
            + ", ".join(f"{type(b).__name__} {b!r}" for b in bad)
        )
    return [item for item in items if isinstance(item, DeadlineAlert)]


def deadline_specs(
    alerts: list[DeadlineAlert], name_of: Callable[[Any], str] | None = None
) -> list[DeadlineSpec]:
    """The spec of each alert; ``name_of`` names a callable as the bundle knows
    it (a DAG file's functions get their stable module name, see sdk/serialize)."""
    return [
        alert.to_spec(
            None
            if alert.callback.callable is None or name_of is None
            else name_of(alert.callback.callable)
        )
        for alert in alerts
    ]
