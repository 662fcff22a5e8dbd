"""BaseOperator: what every task is, with Airflow's argument handling.

Every subclass ``__init__`` is wrapped (as Airflow's apply_defaults does) so
that, for the outermost call only:
- positional arguments become keyword arguments (so they can be recorded),
- ``default_args`` fill every argument the operator accepts and the caller did
  not pass (precedence: explicit > operator default_args > innermost task
  group > outer groups > DAG),
- the final arguments are kept for the spec, and XComArgs found in them add
  upstream edges.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import datetime as dt
import functools
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

from chalicelib.core.spec import DEFAULT_POOL
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.sdk import contexts
from chalicelib.sdk.assets import outlet_refs
from chalicelib.sdk.dag_options import SLA_MESSAGE
from chalicelib.sdk.dependencies import TaskNode, link
from chalicelib.sdk.executor import DEFAULT_EXECUTOR, as_executor_config
from chalicelib.sdk.params import as_param
from chalicelib.sdk.source import user_site
from chalicelib.sdk.xcom_arg import iter_xcom_args

if TYPE_CHECKING:
    from chalicelib.sdk.dag import DAG
    from chalicelib.sdk.mapped import OperatorPartial
    from chalicelib.sdk.taskgroup import TaskGroup

# BaseOperator's own arguments with their defaults (Airflow's where Airflow has one).
TASK_ARG_DEFAULTS: dict[str, Any] = {
    "display_name": None,
    "owner": "airflow",
    "email": None,
    "email_on_failure": True,
    "email_on_retry": True,
    "depends_on_past": False,
    "wait_for_downstream": False,
    "ignore_first_depends_on_past": False,  # Airflow 3's task SDK default
    "wait_for_past_depends_before_skipping": False,
    "retries": 0,
    "retry_delay": dt.timedelta(seconds=300),
    "retry_exponential_backoff": False,
    "max_retry_delay": None,
    "execution_timeout": None,
    "trigger_rule": TriggerRule.ALL_SUCCESS,
    "pool": None,
    "pool_slots": 1,
    "max_active_tis_per_dag": None,
    "max_active_tis_per_dagrun": None,
    "priority_weight": 1,
    "weight_rule": "downstream",
    "executor": None,
    "on_success_callback": None,
    "on_failure_callback": None,
    "on_retry_callback": None,
    "on_execute_callback": None,
    "on_skipped_callback": None,
    "queue": None,
    "map_index_template": None,
    "sla": None,
    "params": None,
    "doc_md": None,
    "multiple_outputs": False,
    "inlets": None,
    "outlets": None,
}
PLACEMENT_ARGS = frozenset({"task_id", "dag", "task_group", "default_args"})
BASE_OPERATOR_ARGS = frozenset(TASK_ARG_DEFAULTS) | PLACEMENT_ARGS
CALLBACK_ARGS = (
    "on_success_callback",
    "on_failure_callback",
    "on_retry_callback",
    "on_execute_callback",
    "on_skipped_callback",
)
# Refused once for the DAG (sdk/dag_options.py) rather than once per task.
_NOT_FROM_DEFAULT_ARGS = frozenset({"sla"})

_unmapping: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "slipstream_unmapping", default=False
)


@contextlib.contextmanager
def building_unmapped() -> Iterator[None]:
    """Build an operator for one map index: no DAG registration, no default_args again."""
    token = _unmapping.set(True)
    try:
        yield
    finally:
        _unmapping.reset(token)


def is_unmapping() -> bool:
    return _unmapping.get()


# --------------------------------------------------------------- argument shapes
@dataclass(frozen=True)
class _InitShape:
    positional: tuple[str, ...]
    accepted: frozenset[str]
    required: tuple[str, ...]


_shapes: dict[type, _InitShape] = {}


def _init_shape(cls: type) -> _InitShape:
    shape = _shapes.get(cls)
    if shape is not None:
        return shape
    own = inspect.signature(inspect.unwrap(cls.__init__))  # type: ignore[misc]
    positional: list[str] = []
    required: list[str] = []
    for param in list(own.parameters.values())[1:]:
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            positional.append(param.name)
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.default is param.empty:
            required.append(param.name)
    accepted: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or not issubclass(klass, BaseOperator):
            continue
        for param in list(inspect.signature(inspect.unwrap(init)).parameters.values())[1:]:
            if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                accepted.add(param.name)
    shape = _InitShape(tuple(positional), frozenset(accepted), tuple(required))
    _shapes[cls] = shape
    return shape


def accepted_init_args(cls: type) -> frozenset[str]:
    """Every keyword argument some ``__init__`` in the operator's class chain accepts."""
    return _init_shape(cls).accepted


def merge_default_args(accepted: frozenset[str], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Airflow's apply_defaults: fill unset accepted arguments from the default_args chain."""
    dag = kwargs.get("dag") or contexts.current_dag()
    group = kwargs.get("task_group") or contexts.current_group(dag)
    defaults: dict[str, Any] = {}
    if dag is not None:
        defaults.update(dag.default_args)
    if group is not None:
        defaults.update(group.default_args)
    defaults.update(kwargs.get("default_args") or {})
    if not defaults:
        return kwargs
    result = dict(kwargs)
    for name, value in defaults.items():
        if (
            name in accepted
            and name not in result
            and name not in PLACEMENT_ARGS
            and name not in _NOT_FROM_DEFAULT_ARGS
        ):
            result[name] = value
    if isinstance(defaults.get("params"), dict) and "params" in kwargs:
        result["params"] = {**defaults["params"], **(kwargs["params"] or {})}
    return result


def _with_default_args(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_in_init"):
            init(self, *args, **kwargs)  # a super().__init__ call: already prepared
            return
        cls = type(self)
        shape = _init_shape(cls)
        if args:
            if len(args) > len(shape.positional):
                raise TypeError(
                    f"{cls.__name__}() takes keyword arguments; got {len(args)} positional"
                )
            for name, value in zip(shape.positional, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
                kwargs[name] = value
        if not _unmapping.get():
            kwargs = merge_default_args(shape.accepted, kwargs)
        missing = [name for name in shape.required if name not in kwargs]
        if missing:
            raise TypeError(
                f"{cls.__name__} (task_id: {kwargs.get('task_id')!r}) is missing required "
                f"argument(s): {', '.join(missing)}"
            )
        self.__dict__["_in_init"] = True
        self.__dict__["_call_frame"] = sys._getframe(1)
        try:
            init(self, **kwargs)
        finally:
            self.__dict__.pop("_in_init", None)
            self.__dict__.pop("_call_frame", None)
        self._init_kwargs = kwargs
        if not _unmapping.get():
            self._link_xcom_args()

    return wrapper


# --------------------------------------------------------------- common attributes
def _as_list(value: Any) -> list[Any]:
    """Airflow accepts one inlet/outlet or a list of them."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def apply_task_attributes(node: TaskNode, values: Mapping[str, Any]) -> None:
    """Set the scheduling attributes every task has, recording bad values as problems.

    Shared by operators and mapped operators so both serialize the same way.
    Values keep Airflow's types (timedelta, TriggerRule) for code that reads them.
    """
    n: Any = node

    def get(name: str) -> Any:
        value = values.get(name)
        return TASK_ARG_DEFAULTS[name] if value is None else value

    n.display_name = get("display_name")
    n.inlets = _as_list(get("inlets"))
    n.outlets = _as_list(get("outlets"))
    try:
        n.outlet_refs = outlet_refs(n.outlets)
    except TypeError as exc:
        node.record_problem(str(exc))
        n.outlet_refs = []
    n.owner = get("owner")
    n.email = get("email")
    n.email_on_failure = bool(get("email_on_failure"))
    n.email_on_retry = bool(get("email_on_retry"))
    n.wait_for_downstream = bool(get("wait_for_downstream"))
    # As in Airflow, waiting for the previous run's downstream tasks implies
    # waiting for the previous run's own instance of this task.
    n.depends_on_past = bool(get("depends_on_past")) or n.wait_for_downstream
    n.ignore_first_depends_on_past = bool(get("ignore_first_depends_on_past"))
    n.wait_for_past_depends_before_skipping = bool(get("wait_for_past_depends_before_skipping"))
    n.retries = _whole_number(node, "retries", get("retries"), 0)
    n.retry_delay = _duration(
        node, "retry_delay", get("retry_delay"), TASK_ARG_DEFAULTS["retry_delay"]
    )
    n.retry_exponential_backoff = bool(get("retry_exponential_backoff"))
    n.max_retry_delay = _duration(node, "max_retry_delay", get("max_retry_delay"), None)
    n.execution_timeout = _duration(node, "execution_timeout", get("execution_timeout"), None)
    n.trigger_rule = _trigger_rule(node, get("trigger_rule"))
    pool = get("pool")
    if pool is None:
        pool = DEFAULT_POOL
    elif not isinstance(pool, str):
        node.record_problem(f"pool must be a pool name (str), got {pool!r}")
        pool = DEFAULT_POOL
    n.pool = pool
    n.pool_slots = _whole_number(node, "pool_slots", get("pool_slots"), 1)
    for name in ("max_active_tis_per_dag", "max_active_tis_per_dagrun"):
        limit = values.get(name)
        if limit is not None:
            limit = _whole_number(node, name, limit, 1)
            if limit < 1:
                node.record_problem(f"{name} must be at least 1, got {limit}")
                limit = None
        setattr(n, name, limit)
    n.priority_weight = _whole_number(node, "priority_weight", get("priority_weight"), 1)
    weight_rule = get("weight_rule")
    n.weight_rule = str(getattr(weight_rule, "value", weight_rule))
    try:
        n.executor = as_executor_config(get("executor"))
    except ValueError as exc:
        node.record_problem(str(exc))
        n.executor = DEFAULT_EXECUTOR
    for name in CALLBACK_ARGS:
        callback = get(name)
        callbacks = callback if isinstance(callback, (list, tuple)) else [callback]
        if callback is not None and not all(callable(c) for c in callbacks):
            node.record_problem(f"{name} must be a callable or a list of callables")
            callback = None
        setattr(n, name, callback)
    queue = get("queue")
    if queue is not None and not isinstance(queue, str):
        node.record_problem(f"queue must be a queue name (str), got {queue!r}")
        queue = None
    n.queue = queue  # accepted for Airflow files; the executor decides where a task runs
    template = get("map_index_template")
    if template is not None and not isinstance(template, str):
        node.record_problem(f"map_index_template must be a Jinja string, got {template!r}")
        template = None
    n.map_index_template = template
    if get("sla") is not None:
        node.record_problem(SLA_MESSAGE.format(what="sla"))
    params = get("params") or {}
    if not isinstance(params, Mapping):
        node.record_problem(f"params must be a dict, got {type(params).__name__}")
        params = {}
    n.params = {str(name): as_param(value) for name, value in params.items()}
    n.doc_md = get("doc_md")
    n.multiple_outputs = bool(get("multiple_outputs"))


def _whole_number(node: TaskNode, name: str, value: Any, fallback: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        if isinstance(value, (str, float)) and int(value) == float(value):
            return int(value)
    except ValueError:
        pass
    node.record_problem(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return fallback


def _duration(
    node: TaskNode, name: str, value: Any, fallback: dt.timedelta | None
) -> dt.timedelta | None:
    if value is None or isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.timedelta(seconds=value)
    node.record_problem(f"{name} must be a timedelta or seconds, got {type(value).__name__}")
    return fallback


def _trigger_rule(node: TaskNode, value: Any) -> TriggerRule | str:
    try:
        return TriggerRule(value)
    except ValueError:
        choices = ", ".join(r.value for r in TriggerRule)
        node.record_problem(f"unknown trigger rule {value!r}; choose one of: {choices}")
        return str(value)


# --------------------------------------------------------------- the operator
class BaseOperator(TaskNode):
    """Subclass it and implement :meth:`execute`; the return value is the task's result."""

    template_fields: Sequence[str] = ()
    template_ext: Sequence[str] = ()
    template_fields_renderers: dict[str, str] = {}
    # How the engine treats the task's result: "normal", "branch" or "short_circuit".
    flow: ClassVar[str] = "normal"
    # Where expand() values go when unmapping; None means the operator's own arguments.
    mapped_kwargs_field: ClassVar[str | None] = None
    custom_operator_name: ClassVar[str | None] = None
    is_mapped: ClassVar[bool] = False

    _init_kwargs: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not hasattr(init, "__wrapped__"):
            cls.__init__ = _with_default_args(init)  # type: ignore[method-assign]

    def __init__(
        self,
        task_id: str | None = None,
        *,
        display_name: str | None = None,
        owner: str = "airflow",
        email: str | Sequence[str] | None = None,
        email_on_failure: bool = True,
        email_on_retry: bool = True,
        depends_on_past: bool = False,
        wait_for_downstream: bool = False,
        ignore_first_depends_on_past: bool = False,
        wait_for_past_depends_before_skipping: bool = False,
        retries: int = 0,
        retry_delay: dt.timedelta | float = TASK_ARG_DEFAULTS["retry_delay"],
        retry_exponential_backoff: bool = False,
        max_retry_delay: dt.timedelta | float | None = None,
        execution_timeout: dt.timedelta | float | None = None,
        trigger_rule: TriggerRule | str = TriggerRule.ALL_SUCCESS,
        pool: str | None = None,
        pool_slots: int = 1,
        max_active_tis_per_dag: int | None = None,
        max_active_tis_per_dagrun: int | None = None,
        priority_weight: int = 1,
        weight_rule: str = "downstream",
        executor: Any = None,
        on_success_callback: Any = None,
        on_failure_callback: Any = None,
        on_retry_callback: Any = None,
        on_execute_callback: Any = None,
        on_skipped_callback: Any = None,
        queue: str | None = None,
        map_index_template: str | None = None,
        sla: Any = None,
        params: Mapping[str, Any] | None = None,
        doc_md: str | None = None,
        multiple_outputs: bool = False,
        inlets: Any = None,
        outlets: Any = None,
        dag: DAG | None = None,
        task_group: TaskGroup | None = None,
        default_args: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        name = type(self).__name__
        if kwargs:
            raise TypeError(
                f"Invalid arguments were passed to {name} (task_id: {task_id!r}). "
                f"Invalid arguments were: {', '.join(sorted(kwargs))}"
            )
        if not isinstance(task_id, str) or not task_id:
            raise TypeError(f"{name} needs a task_id (a non-empty str), got {task_id!r}")
        self._init_node()
        values = {key: value for key, value in locals().items() if key in TASK_ARG_DEFAULTS}
        apply_task_attributes(self, values)

        if not _unmapping.get():
            dag = dag or contexts.current_dag()
            task_group = task_group or contexts.current_group(dag)
        self.task_id = task_group.child_id(task_id) if task_group else task_id
        frame: FrameType | None = self.__dict__.get("_call_frame") or sys._getframe(1)
        self._site = user_site(frame, dag.fileloc_raw if dag else None)
        if dag is not None and not _unmapping.get():
            dag.add_task(self, task_group)

    def _link_xcom_args(self) -> None:
        """An XComArg passed anywhere in the arguments makes its task upstream of this one."""
        values: list[Any] = [v for k, v in self._init_kwargs.items() if k not in BASE_OPERATOR_ARGS]
        values.extend(getattr(self, field, None) for field in self.template_fields)
        for arg in iter_xcom_args(values):
            if arg.operator is not self:
                link(arg.operator, self)

    # -- Airflow's operator API ------------------------------------------
    def execute(self, context: Mapping[str, Any]) -> Any:
        """Do the task's work; the return value is its result (XCom ``return_value``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    def on_kill(self) -> None:
        """Called when the try is stopped (timeout, kill); release external resources here."""

    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        """``Op.partial(task_id=..., common=...).expand(mapped=[...])``: dynamic task mapping."""
        from chalicelib.sdk.mapped import OperatorPartial

        return OperatorPartial(cls, kwargs)

    def get_dag(self) -> DAG | None:
        return self._dag

    def prepare_for_execution(self) -> BaseOperator:
        """A shallow copy for one try: rendering templates replaces its attributes, not ours."""
        return copy.copy(self)

    def get_template_fields(self) -> Sequence[str]:
        return self.template_fields

    def callbacks(self, kind: str) -> list[Callable[..., Any]]:
        """The callables of ``on_<kind>_callback`` as a list (Airflow accepts one or a list)."""
        value = getattr(self, f"on_{kind}_callback")
        if value is None:
            return []
        return list(value) if isinstance(value, (list, tuple)) else [value]

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"


BaseOperator.__init__ = _with_default_args(BaseOperator.__init__)  # type: ignore[method-assign]
