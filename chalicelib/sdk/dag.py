"""The DAG object users build in a DAG file, and the ``@dag`` decorator.

A DAG collects tasks and groups while the file is imported; :meth:`DAG.to_spec`
turns it into the spec the control plane reads. Problems found while building
(duplicate ids, bad values) are recorded rather than raised, so validation can
report every problem of a file at once, each with its line.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import os
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from chalicelib.core.errors import (
    DagValidationError,
    Problem,
    ScheduleError,
    SlipstreamError,
    UnknownTask,
)
from chalicelib.core.events import EventPattern, S3Event
from chalicelib.core.spec import DagSpec
from chalicelib.core.timetable_base import NullTimetable
from chalicelib.core.timetables import timetable_from_schedule
from chalicelib.sdk import contexts
from chalicelib.sdk.assets import BaseAsset, schedule_condition
from chalicelib.sdk.dag_options import (
    UNSET,
    choose_schedule,
    flag,
    mapping_of,
    refuse_sla,
    search_path,
)
from chalicelib.sdk.deadline import deadline_alerts
from chalicelib.sdk.dependencies import TaskNode
from chalicelib.sdk.params import DagParam, Param, as_param
from chalicelib.sdk.scheduler_settings import (
    SchedulerSettingError,
    SchedulerSettings,
    scheduler_settings,
)
from chalicelib.sdk.setup_teardown import note_task
from chalicelib.sdk.source import Site, caller_site, display_path
from chalicelib.sdk.taskgroup import TaskGroup

if TYPE_CHECKING:
    from chalicelib.core.assets import Condition
    from chalicelib.core.events import EventTrigger
    from chalicelib.core.timetables import Timetable

_SUFFIXED_ID = re.compile(r"^(.*)__(\d+)$")


class DAG:
    """``with DAG("etl", schedule="@hourly", start_date=pendulum.datetime(2024, 1, 1)):``

    ``timezone`` defaults to the zone of an aware ``start_date`` (as Airflow does),
    else UTC; naive ``start_date``/``end_date`` are wall-clock times in that zone.
    """

    def __init__(
        self,
        dag_id: str,
        *,
        schedule: Any = UNSET,
        start_date: dt.datetime | dt.date | str | None = None,
        end_date: dt.datetime | dt.date | str | None = None,
        catchup: bool | None = None,
        timezone: str | dt.tzinfo | None = None,
        default_args: Mapping[str, Any] | None = None,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        display_name: str | None = None,
        description: str | None = None,
        doc_md: str | None = None,
        dagrun_timeout: dt.timedelta | float | None = None,
        on_success_callback: Callable[..., Any] | None = None,
        on_failure_callback: Callable[..., Any] | None = None,
        schedule_interval: Any = UNSET,
        is_paused_upon_creation: bool | None = None,
        user_defined_macros: Mapping[str, Any] | None = None,
        user_defined_filters: Mapping[str, Callable[..., Any]] | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: type | None = None,
        jinja_environment_kwargs: Mapping[str, Any] | None = None,
        render_template_as_native_obj: bool = False,
        sla_miss_callback: Any = None,
        deadline: Any = None,
    ):
        if not isinstance(dag_id, str) or not dag_id:
            raise TypeError(f"DAG needs a dag_id (a non-empty str), got {dag_id!r}")
        site = caller_site(1)
        self.fileloc_raw: str | None = site[0]
        self.fileloc: str | None = os.path.abspath(site[0]) if site[0] else None
        self.line: int | None = site[1]
        self._problems: list[Problem] = []
        self.dag_id = dag_id
        self.display_name = display_name
        self.description = description
        self.doc_md = doc_md
        self.default_args: dict[str, Any] = dict(default_args or {})
        self.task_dict: dict[str, TaskNode] = {}
        self.task_group_dict: dict[str, TaskGroup] = {}
        self._suffixes: dict[str, int] = {}

        # As in Airflow: params in default_args are DAG params; default_args may carry
        # the DAG's start and end dates.
        merged_params = dict(self.default_args.pop("params", None) or {})
        merged_params.update(params or {})
        self.params: dict[str, Param] = {str(k): as_param(v) for k, v in merged_params.items()}
        start_date = start_date if start_date is not None else self.default_args.get("start_date")
        end_date = end_date if end_date is not None else self.default_args.get("end_date")

        self.timezone = self._choose_timezone(timezone, start_date)
        self.start_date = self._aware(start_date, "start_date")
        self.end_date = self._aware(end_date, "end_date")
        self.schedule = choose_schedule(schedule, schedule_interval, self.record_problem)
        refuse_sla(
            {"sla_miss_callback": sla_miss_callback, "default_args": self.default_args},
            self.record_problem,
        )
        self.is_paused_upon_creation = flag(
            "is_paused_upon_creation", is_paused_upon_creation, self.record_problem, None
        )
        # Read by the worker's template environment (runtime/templating.py).
        self.user_defined_macros = mapping_of(
            "user_defined_macros", user_defined_macros, self.record_problem
        )
        self.user_defined_filters = mapping_of(
            "user_defined_filters", user_defined_filters, self.record_problem, callables=True
        )
        self.template_searchpath = search_path(template_searchpath, self.record_problem)
        self.template_undefined = template_undefined
        self.jinja_environment_kwargs = mapping_of(
            "jinja_environment_kwargs", jinja_environment_kwargs, self.record_problem
        )
        self.render_template_as_native_obj = bool(
            flag(
                "render_template_as_native_obj",
                render_template_as_native_obj,
                self.record_problem,
                False,
            )
        )
        # Read at construction: the settings of the import that built the DAG are
        # the ones its spec records (see sdk/scheduler_settings.py).
        self.scheduler_settings = self._read_scheduler_settings()
        self.catchup = (
            self.scheduler_settings.catchup_by_default if catchup is None else bool(catchup)
        )
        self.max_active_runs = self._whole_number("max_active_runs", max_active_runs, 16)
        self.max_active_tasks = self._whole_number("max_active_tasks", max_active_tasks, 16)
        self.tags = _tags(tags)
        self.dagrun_timeout = self._duration("dagrun_timeout", dagrun_timeout)
        self.on_success_callback = self._callback("on_success_callback", on_success_callback)
        self.on_failure_callback = self._callback("on_failure_callback", on_failure_callback)
        self.deadline = deadline_alerts(deadline, self.record_problem)  # sdk/deadline.py
        self._schedule_parts: tuple[Timetable, list[EventTrigger]] | None = None
        self._asset_condition: Condition | None = None
        self.task_group = TaskGroup(None, dag=self)

    # -- construction helpers ---------------------------------------------
    def record_problem(
        self, message: str, site: Site | None = None, task_id: str | None = None
    ) -> None:
        file, line = site if site is not None else (self.fileloc_raw, self.line)
        self._problems.append(
            Problem(
                message, file=display_path(file), line=line, dag_id=self.dag_id, task_id=task_id
            )
        )

    def _choose_timezone(self, timezone: str | dt.tzinfo | None, start_date: Any) -> str:
        if timezone is None:
            tzinfo = start_date.tzinfo if isinstance(start_date, dt.datetime) else None
            if tzinfo is None:
                return "UTC"
            name = _zone_name(tzinfo, start_date)
            if name is None:
                self.record_problem(
                    f"start_date has a fixed UTC offset ({tzinfo!r}) that is not a whole number "
                    "of hours; pass timezone= with a zone name such as 'Asia/Kolkata'"
                )
                return "UTC"
            return name
        if isinstance(timezone, str):
            return timezone
        name = _zone_name(timezone, None)
        if name is None:
            self.record_problem(f"timezone {timezone!r} has no IANA name; pass its name as a str")
            return "UTC"
        return name

    def _read_scheduler_settings(self) -> SchedulerSettings:
        try:
            return scheduler_settings()
        except SchedulerSettingError as exc:
            self.record_problem(str(exc))
            return SchedulerSettings()

    def _zone(self) -> dt.tzinfo:
        try:
            return zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return dt.UTC  # validation reports the bad timezone itself

    def _aware(self, value: Any, name: str) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                self.record_problem(f"{name} {value!r} is not an ISO date or datetime")
                return None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if not isinstance(value, dt.datetime):
            self.record_problem(f"{name} must be a datetime, got {type(value).__name__}")
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=self._zone())
        return value

    def _whole_number(self, name: str, value: Any, fallback: int) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.record_problem(f"{name} must be an int, got {value!r}")
        return fallback

    def _duration(self, name: str, value: Any) -> dt.timedelta | None:
        if value is None or isinstance(value, dt.timedelta):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return dt.timedelta(seconds=value)
        self.record_problem(f"{name} must be a timedelta or seconds, got {value!r}")
        return None

    def _callback(self, name: str, value: Any) -> Any:
        callbacks = value if isinstance(value, (list, tuple)) else [value]
        if value is not None and not all(callable(c) for c in callbacks):
            self.record_problem(f"{name} must be a callable or a list of callables")
            return None
        return value

    # -- schedule ---------------------------------------------------------
    @property
    def timetable(self) -> Timetable:
        return self.schedule_parts()[0]

    @property
    def asset_condition(self) -> Condition | None:
        """The assets ``schedule`` waits for (all of a list; an ``&``/``|`` expression)."""
        self.schedule_parts()
        return self._asset_condition

    def schedule_parts(self) -> tuple[Timetable, list[EventTrigger]]:
        """The time-based timetable and the event triggers the ``schedule`` argument declares."""
        if self._schedule_parts is None:
            self._schedule_parts = self._split_schedule()
        return self._schedule_parts

    def _split_schedule(self) -> tuple[Timetable, list[EventTrigger]]:
        items = list(self.schedule) if isinstance(self.schedule, (list, tuple)) else [self.schedule]
        events: list[EventTrigger] = [i for i in items if isinstance(i, (S3Event, EventPattern))]
        self._asset_condition = schedule_condition(items)
        times = [
            i
            for i in items
            if i is not None and not isinstance(i, (S3Event, EventPattern, BaseAsset))
        ]
        if times and self._asset_condition is not None:
            self.record_problem(
                "schedule cannot mix assets with a time-based schedule "
                "(Airflow's AssetOrTimeSchedule is not supported)"
            )
            return NullTimetable(), events
        if len(times) > 1:
            self.record_problem(
                "schedule may combine event triggers with at most one time-based schedule; "
                f"got {len(times)}: {times!r}"
            )
        if not times:
            return NullTimetable(), events
        schedule = times[0]
        zone = self.timezone if isinstance(self._zone(), zoneinfo.ZoneInfo) else "UTC"
        try:
            timetable: Timetable = timetable_from_schedule(
                schedule,
                zone,
                cron_data_intervals=self.scheduler_settings.create_cron_data_intervals,
                delta_data_intervals=self.scheduler_settings.create_delta_data_intervals,
            )
        except (ScheduleError, ValueError, TypeError) as exc:
            self.record_problem(f"bad schedule {schedule!r}: {exc}")
            return NullTimetable(), events
        return timetable, events

    # -- tasks and groups -------------------------------------------------
    def add_task(self, node: TaskNode, group: TaskGroup | None = None) -> None:
        """Register ``node``; a second task with the same id is recorded as a problem."""
        if node._dag is not None and node._dag is not self:
            where = f"{display_path(node._site[0])}:{node._site[1]}: " if node._site[0] else ""
            raise SlipstreamError(
                f"{where}task {node.task_id!r} already belongs to DAG {node._dag.dag_id!r}; "
                f"it cannot also join DAG {self.dag_id!r}"
            )
        existing = self.task_dict.get(node.task_id)
        if existing is node:
            return
        node._dag = self
        group = group or node.task_group or self.task_group
        node.task_group = group
        if existing is not None or node.task_id in self.task_group_dict:
            what = "task" if existing is not None else "task group"
            first = existing._site[1] if existing is not None else None
            where = f" (first defined at line {first})" if first else ""
            self.record_problem(
                f"duplicate task id {node.task_id!r}: a {what} with this id exists{where}",
                node._site,
                node.task_id,
            )
            return
        group.add(node)
        self.task_dict[node.task_id] = node
        self._note_suffix(node.task_id)
        note_task(node)

    def add_task_group(self, group: TaskGroup) -> None:
        assert group.group_id is not None
        if group.group_id in self.task_group_dict or group.group_id in self.task_dict:
            self.record_problem(f"duplicate task group id {group.group_id!r}", group._site)
            return
        self.task_group_dict[group.group_id] = group
        self._note_suffix(group.group_id)

    def _note_suffix(self, full_id: str) -> None:
        match = _SUFFIXED_ID.match(full_id)
        if match:
            core, number = match.group(1), int(match.group(2))
            self._suffixes[core] = max(self._suffixes.get(core, 0), number)

    def is_id_taken(self, full_id: str) -> bool:
        return full_id in self.task_dict or full_id in self.task_group_dict

    def unique_label(self, label: str, group: TaskGroup | None = None) -> str:
        """Airflow's de-duplication: ``name``, then ``name__1``, ``name__2``... per group."""
        group = group or self.task_group
        if not self.is_id_taken(group.child_id(label)):
            return label
        core = re.sub(r"__\d+$", "", label)
        number = self._suffixes.get(group.child_id(core), 0) + 1
        return f"{core}__{number}"

    @property
    def tasks(self) -> list[TaskNode]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def roots(self) -> list[TaskNode]:
        return [t for t in self.task_dict.values() if not t._upstream]

    @property
    def leaves(self) -> list[TaskNode]:
        return [t for t in self.task_dict.values() if not t._downstream]

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> Any:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise UnknownTask(f"DAG {self.dag_id!r} has no task {task_id!r}") from None

    # -- spec, validation, runs --------------------------------------------
    def to_spec(self, bundle_root: str | None = None, *, validate: bool = True) -> DagSpec:
        """The serialized DAG. ``fileloc`` is made relative to ``bundle_root`` (default: the
        working directory when the file is inside it, else just the file name).

        Raises DagValidationError listing every problem unless ``validate=False``.
        """
        from chalicelib.sdk.serialize import dag_to_spec

        spec = dag_to_spec(self, bundle_root)
        if validate:
            problems = self._problems_of(spec)
            if problems:
                raise DagValidationError(problems)
        return spec

    def problems(self) -> list[Problem]:
        """Every problem of this DAG: those found while building it, then the spec checks."""
        from chalicelib.sdk.serialize import dag_to_spec

        return self._problems_of(dag_to_spec(self, None))

    def _problems_of(self, spec: DagSpec) -> list[Problem]:
        from chalicelib.core.validation import validate_spec

        found = list(self._problems)
        for node in self.task_dict.values():
            for message in node._problems:
                found.append(
                    Problem(
                        message,
                        file=display_path(node._site[0] or self.fileloc),
                        line=node._site[1],
                        dag_id=self.dag_id,
                        task_id=node.task_id,
                    )
                )
        found.extend(validate_spec(spec, file=display_path(self.fileloc)))
        return found

    def validate(self) -> None:
        """Raise DagValidationError listing every problem at once (Airflow's dag.validate())."""
        problems = self.problems()
        if problems:
            raise DagValidationError(problems)

    def resolve_params(self, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Param defaults overridden by the run conf, checked against each Param's schema."""
        from chalicelib.core.validation import resolve_params
        from chalicelib.sdk.params import params_to_spec

        return resolve_params(params_to_spec(self.params), conf)

    def test(
        self,
        logical_date: dt.datetime | None = None,
        conf: Mapping[str, Any] | None = None,
        real_time: bool = False,
        *,
        run_conf: Mapping[str, Any] | None = None,
        conn_file_path: str | None = None,
        variable_file_path: str | None = None,
    ) -> Any:
        """Run one DAG run to the end in this process (Airflow's dag.test()).

        ``run_conf`` is Airflow's name for ``conf``; the two files (Airflow's
        JSON, YAML or .env formats) supply connections and variables ahead of
        the environment, so a test needs no AWS.
        """
        from chalicelib.local.runner import run_dag_test

        return run_dag_test(
            self,
            logical_date=logical_date,
            conf=conf if conf is not None else run_conf,
            real_time=real_time,
            variables_file=variable_file_path,
            connections_file=conn_file_path,
        )

    # -- context manager ----------------------------------------------------
    def __enter__(self) -> DAG:
        contexts.push_dag(self)
        return self

    def __exit__(self, *exc: object) -> None:
        contexts.pop_dag()

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"


def _tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        return [tags]
    values = sorted(tags) if isinstance(tags, (set, frozenset)) else list(tags)
    return list(dict.fromkeys(str(t) for t in values))


def _zone_name(tzinfo: dt.tzinfo, when: dt.datetime | None) -> str | None:
    """An IANA name for ``tzinfo``: ZoneInfo/pendulum zones by key, fixed offsets as Etc/GMT."""
    key = getattr(tzinfo, "key", None)
    if isinstance(key, str) and key:
        return key
    name = getattr(tzinfo, "name", None)
    if isinstance(name, str) and "/" in name:
        return name
    offset = tzinfo.utcoffset(when)
    if offset is None:
        return None
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "UTC"
    if seconds % 3600:
        return None
    hours = seconds // 3600
    return f"Etc/GMT{-hours:+d}"  # POSIX sign: Etc/GMT-5 is five hours east of UTC


# ------------------------------------------------------------------ @dag
@overload
def dag(function: Callable[..., Any], /) -> Callable[..., DAG]: ...
@overload
def dag(
    dag_id: str | None = None, /, **dag_kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., DAG]]: ...


def dag(dag_id_or_function: str | Callable[..., Any] | None = None, /, **dag_kwargs: Any) -> Any:
    """``@dag(schedule=..., start_date=...)`` on a function that builds the tasks.

    Calling the function returns the DAG (id: the function name unless given).
    The function's own arguments become DAG params with their defaults; inside
    the function they are DagParam references resolved per run, as in Airflow.
    """
    if callable(dag_id_or_function):
        return _dag_factory(dag_id_or_function, None, dag_kwargs)
    dag_id = dag_id_or_function or dag_kwargs.pop("dag_id", None)

    def decorate(function: Callable[..., Any]) -> Callable[..., DAG]:
        return _dag_factory(function, dag_id, dag_kwargs)

    return decorate


def _dag_factory(
    function: Callable[..., Any], dag_id: str | None, dag_kwargs: dict[str, Any]
) -> Callable[..., DAG]:
    signature = inspect.signature(function)

    @functools.wraps(function)
    def factory(*args: Any, **kwargs: Any) -> DAG:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        options = dict(dag_kwargs)
        params = dict(options.pop("params", None) or {})
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            existing = params.get(name)
            if isinstance(existing, Param):
                params[name] = Param(value, existing.description, **existing.schema)
            else:
                params[name] = value
        if options.get("doc_md") is None and function.__doc__:
            options["doc_md"] = inspect.cleandoc(function.__doc__)
        with DAG(dag_id or function.__name__, params=params, **options) as built:
            references = {
                name: DagParam(built, name, built.params[name].value)
                for name in bound.arguments
                if name in built.params
            }
            function(**references)
        return built

    return factory


__all__: Sequence[str] = ("DAG", "dag")
