"""Small stand-ins that follow the SDK's contract with the runtime.

The runtime reads operators, DAGs, XComArgs and mapped operators only through
the attributes the contract names; these doubles have exactly those, so the
runtime's tests pin the contract rather than one SDK implementation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from chalicelib.core.runs import DagRun, RunType
from chalicelib.core.spec import DagSpec, MappingSpec, MapSource, TaskSpec
from chalicelib.runtime import InMemoryXComStore, TryRequest, TryResult, execute_try
from chalicelib.sdk.xcom_arg import ResolvableArg

UTC = dt.timezone.utc


class FakeDag:
    def __init__(
        self,
        dag_id: str = "d",
        *,
        params: dict[str, Any] | None = None,
        fileloc: str | None = None,
        timezone: str = "UTC",
        **settings: Any,
    ):
        self.dag_id = dag_id
        self.params = params or {}
        self.fileloc = fileloc
        self.timezone = timezone
        self.tasks: dict[str, Any] = {}
        for name, value in settings.items():
            setattr(self, name, value)

    def get_task(self, task_id: str) -> Any:
        return self.tasks[task_id]


class FakeOperator:
    template_fields: tuple[str, ...] = ()
    template_ext: tuple[str, ...] = ()

    def __init__(
        self,
        task_id: str,
        dag: FakeDag,
        fn: Callable[..., Any] | None = None,
        *,
        retries: int = 0,
        execution_timeout: dt.timedelta | None = None,
        multiple_outputs: bool = False,
        params: dict[str, Any] | None = None,
        on_success_callback: Any = None,
        on_failure_callback: Any = None,
        on_retry_callback: Any = None,
        template_fields: tuple[str, ...] | None = None,
        register: bool = True,
        **attributes: Any,
    ):
        self.task_id = task_id
        self.dag = dag
        self.fn = fn or (lambda context, op: None)
        self.retries = retries
        self.execution_timeout = execution_timeout
        self.multiple_outputs = multiple_outputs
        self.params = params or {}
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.on_retry_callback = on_retry_callback
        self.downstream_task_ids: set[str] = set()
        self.kills: list[str] = []  # shared with the runtime's copies of this operator
        if template_fields is not None:
            self.template_fields = template_fields
        for name, value in attributes.items():
            setattr(self, name, value)
        if register:
            dag.tasks[task_id] = self

    def execute(self, context: Any) -> Any:
        return self.fn(context, self)

    def on_kill(self) -> None:
        self.kills.append(self.task_id)


class FakeXComArg(ResolvableArg):
    """A reference the runtime cannot take a shortcut for: it must call ``resolve``."""

    def __init__(self, operator: Any, key: str = "return_value"):
        self.operator = operator
        self.key = key
        self.resolved = 0

    def resolve(self, context: Any) -> Any:
        self.resolved += 1
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)


class FakeMapped:
    """A mapped operator: ``unmap`` builds one concrete operator per index."""

    def __init__(
        self,
        task_id: str,
        dag: FakeDag,
        fn: Callable[..., Any],
        expand_input: dict[str, Any],
        *,
        expand_kind: str = "expand",
        **partial: Any,
    ):
        self.task_id = task_id
        self.dag = dag
        self.fn = fn
        self.expand_input = expand_input
        self.expand_kind = expand_kind
        self.partial = partial
        self.unmapped: list[dict[str, Any]] = []
        dag.tasks[task_id] = self

    def unmap(self, kwargs: dict[str, Any]) -> FakeOperator:
        self.unmapped.append(kwargs)
        arguments = {**self.partial, **kwargs}
        return FakeOperator(self.task_id, self.dag, self.fn, register=False, **arguments)


def make_spec(dag_id: str = "d", tasks: list[TaskSpec] | None = None) -> DagSpec:
    tasks = tasks or []
    by_id = {t.task_id: t for t in tasks}
    # Fill in downstream lists from upstream ones, as the SDK's serializer does.
    downstream: dict[str, list[str]] = {t.task_id: [] for t in tasks}
    for t in tasks:
        for up in t.upstream:
            downstream[up].append(t.task_id)
    fixed = {tid: t.model_copy(update={"downstream": downstream[tid]}) for tid, t in by_id.items()}
    return DagSpec(dag_id=dag_id, tasks=fixed, sdk_version="test")


def task_spec(task_id: str, **fields: Any) -> TaskSpec:
    return TaskSpec(task_id=task_id, operator="tests.FakeOperator", **fields)


def mapped_spec(task_id: str, sources: dict[str, str | None], kind: str = "expand", **fields: Any):
    """A mapped task; ``sources`` maps argument name to upstream task id (None: literal)."""
    return task_spec(
        task_id,
        mapping=MappingSpec(
            kind=kind,  # type: ignore[arg-type]
            sources={
                name: MapSource(xcom_task_id=up) if up else MapSource(literal_length=1)
                for name, up in sources.items()
            },
        ),
        **fields,
    )


def scheduled_run(
    dag_id: str = "d",
    logical: dt.datetime = dt.datetime(2024, 1, 1, tzinfo=UTC),
    end: dt.datetime | None = None,
    conf: dict[str, Any] | None = None,
) -> DagRun:
    end = end or logical + dt.timedelta(days=1)
    return DagRun(
        dag_id=dag_id,
        run_id=f"scheduled__{logical.isoformat()}",
        run_type=RunType.SCHEDULED,
        logical_date=logical,
        data_interval_start=logical,
        data_interval_end=end,
        run_after=end,
        conf=conf or {},
    )


class Clock:
    """A clock that moves only when told; every call returns the current time."""

    def __init__(self, start: dt.datetime = dt.datetime(2024, 1, 2, 0, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def run_try(
    dag: FakeDag,
    spec: DagSpec,
    task_id: str,
    *,
    run: DagRun | None = None,
    xcoms: InMemoryXComStore | None = None,
    map_index: int = -1,
    try_number: int = 1,
    clock: Clock | None = None,
) -> TryResult:
    request = TryRequest(
        dag=dag,
        spec=spec,
        run=run or scheduled_run(dag.dag_id),
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
    )
    return execute_try(request, xcoms or InMemoryXComStore(), clock=clock or Clock())
