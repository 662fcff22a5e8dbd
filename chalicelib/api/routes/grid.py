"""``GET /api/v2/slipstream/dags/{dag_id}/grid``: one window of the grid in
one compact answer.

Airflow's grid reads every task instance of every shown run as a full object;
at 10,000 tasks over 25 runs that is 250,000 objects, which took this UI's
first grid a minute on moto. This answer is a window: a page of runs
(``offset``/``limit``, newest first) times a window of rows
(``task_offset``/``task_limit``, see ``core.grid.grid_rows``: sorted task ids
with group headings, a folded group one row). Per row one string with a letter
per run (``core.grid``), state counts per run for mapped tasks and folded
groups. The reads follow the window: one page of the runs index, then per shown
run one Query of the key range of the window's task ids (keys and states
only), never a scan and never a task outside the window (a folded group's
members are in its row, so they are read).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from chalice import Blueprint
from pydantic import BaseModel, Field

from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.common import QueryModel
from chalicelib.api.errors import BadRequest
from chalicelib.api.routes.common import VersionLookup, current_spec, summary_of, visible_dag
from chalicelib.api.routes.dag_runs import RUN_TYPE_NAMES
from chalicelib.api.routing import Call, route
from chalicelib.core.grid import (
    ABSENT,
    FOLDED,
    MAPPED,
    STATE_CODES,
    TASK,
    fill_window,
    grid_rows,
    members,
)
from chalicelib.core.spec import DagSpec
from chalicelib.store.grid_reads import runs_states

bp = Blueprint(__name__)
TAG = "Slipstream"
MAX_GRID_RUNS = 100
"""Runs per answer: 100 runs of a 10,000-task DAG is still one megabyte of letters."""
MAX_GRID_ROWS = 1000
"""Rows per answer (also the default, so a small DAG is one answer): a screen
shows a few dozen; 1,000 rows over 25 runs is at most 25,000 instances read."""


class GridQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=MAX_GRID_RUNS)] = 25
    offset: Annotated[int, Field(ge=0)] = 0
    task_offset: Annotated[int, Field(ge=0)] = 0
    """First row of the window (rows as ``core.grid.grid_rows`` orders them)."""
    task_limit: Annotated[int, Field(ge=1, le=MAX_GRID_ROWS)] = MAX_GRID_ROWS
    expand: list[str] = Field(default_factory=list)
    """Mapped tasks whose instances to list one by one (a grid row unfolded)."""
    folded: list[str] = Field(default_factory=list)
    """Task groups shown as one row (their members hidden, their cells summarised)."""


class GridRun(BaseModel):
    dag_run_id: str
    state: str
    run_type: str
    run_after: dt.datetime
    logical_date: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    version_number: int | None


class GridMapped(BaseModel):
    counts: list[dict[str, int]]
    """Per run (as ``runs``): how many of the task's instances are in each state."""
    instances: list[str] | None = None
    """Only for tasks named in ``expand``: per map index, a letter per run."""


class GridResponse(BaseModel):
    dag_id: str
    runs: list[GridRun]
    """Newest first; letter ``i`` of every state string is ``runs[i]``."""
    total_entries: int
    total_rows: int
    """Rows of the whole grid with these groups folded (the window is a slice of them)."""
    task_offset: int
    task_ids: list[str]
    """The window's rows: task ids, or group ids for group rows (see ``kinds``)."""
    kinds: str
    """Per row a letter: t task, m mapped task, g group heading (no states of its
    own: its members are the rows below), f folded group (cells summarise members)."""
    states: list[str]
    """Per row (as ``task_ids``): one letter per run, see ``codes``."""
    mapped: dict[str, GridMapped]
    groups: dict[str, GridMapped]
    """Folded groups in the window: per run, how many member instances are in each state."""
    codes: dict[str, str]


@route(
    bp,
    "/slipstream/dags/{dag_id}/grid",
    "GET",
    role=Role.VIEWER,
    query=GridQuery,
    response=GridResponse,
    tag=TAG,
)
def get_grid(call: Call) -> GridResponse:
    """The last runs of a DAG and one state letter per task and run (the UI's grid)."""
    query: GridQuery = call.query
    record = visible_dag(call, call.path["dag_id"])
    dag_id = record.dag_id
    catalog = deps.catalog()
    page = catalog.list_runs(dag_id, limit=query.limit, offset=query.offset, descending=True)
    runs = [stored.run for stored in page.items]
    versions = VersionLookup(dag_id, summary_of(record).get("display_name") or dag_id)
    shown: dict[str, DagSpec] = {run.version: deps.specs().get(dag_id, run.version) for run in runs}
    if record.current_version:
        shown.setdefault(record.current_version, current_spec(record))
    mapped: set[str] = set()  # mapped in any shown version or the current one
    for spec in shown.values():
        mapped.update(task_id for task_id, task in spec.tasks.items() if task.mapping is not None)
    task_ids = sorted({task_id for spec in shown.values() for task_id in spec.tasks})
    unknown = sorted(set(query.expand) - mapped)
    if unknown:
        raise BadRequest(f"expand names tasks of {dag_id} that are not mapped: {unknown}")
    not_groups = sorted(group for group in set(query.folded) if not members(task_ids, group))
    if not_groups:
        raise BadRequest(f"folded names no task group of {dag_id}: {not_groups}")
    rows = grid_rows(task_ids, mapped, set(query.folded))
    window = rows[query.task_offset : query.task_offset + query.task_limit]
    read = [row.id for row in window if row.kind in (TASK, MAPPED)]
    for row in window:
        if row.kind == FOLDED:
            read.extend(members(task_ids, row.id))
    columns = (
        runs_states(catalog.models, dag_id, [run.run_id for run in runs], (min(read), max(read)))
        if read
        else [{} for _ in runs]
    )
    present = {version: set(spec.tasks) for version, spec in shown.items()}
    cells = fill_window(
        window, task_ids, [present[run.version] for run in runs], columns, query.expand
    )
    return GridResponse(
        dag_id=dag_id,
        runs=[
            GridRun(
                dag_run_id=run.run_id,
                state=run.state.value,
                run_type=RUN_TYPE_NAMES[run.run_type],
                run_after=run.run_after,
                logical_date=run.logical_date,
                start_date=run.start_date,
                end_date=run.end_date,
                version_number=(row.version_number if (row := versions(run.version)) else None),
            )
            for run in runs
        ],
        total_entries=page.total,
        total_rows=len(rows),
        task_offset=query.task_offset,
        task_ids=[row.id for row in window],
        kinds="".join(row.kind for row in window),
        states=cells.states,
        mapped={
            task_id: GridMapped(counts=counts, instances=cells.instances.get(task_id))
            for task_id, counts in cells.mapped.items()
        },
        groups={group: GridMapped(counts=counts) for group, counts in cells.groups.items()},
        codes={letter: name for name, letter in STATE_CODES.items()} | {ABSENT: "absent"},
    )
