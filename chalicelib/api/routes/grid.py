"""``GET /api/v2/slipstream/dags/{dag_id}/grid``: the grid of the last runs in
one compact answer.

Airflow's grid reads every task instance of every shown run as a full object;
at 10,000 tasks over 25 runs that is 250,000 objects for the browser to parse
and keep, which is what made the UI's grid take a minute and most of a
gigabyte. This answer is the runs' heads, the task ids once, and per task one
string with a letter per run (``core.grid``), plus state counts per run for
mapped tasks: a few hundred kilobytes for that grid. The reads are bounded: one
page of the runs index, then one Query per shown run on its own partition
(keys and states only), never a scan.
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
from chalicelib.core.grid import ABSENT, STATE_CODES, code_of, count_states, summary_state
from chalicelib.core.spec import DagSpec
from chalicelib.store.grid_reads import runs_states

bp = Blueprint(__name__)
TAG = "Slipstream"
MAX_GRID_RUNS = 100
"""Runs per answer: 100 runs of a 10,000-task DAG is still one megabyte of letters."""


class GridQuery(QueryModel):
    limit: Annotated[int, Field(ge=1, le=MAX_GRID_RUNS)] = 25
    offset: Annotated[int, Field(ge=0)] = 0
    expand: list[str] = Field(default_factory=list)
    """Mapped tasks whose instances to list one by one (a grid row unfolded)."""


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
    task_ids: list[str]
    states: list[str]
    """Per task (as ``task_ids``): one letter per run, see ``codes``."""
    mapped: dict[str, GridMapped]
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
    specs: list[DagSpec] = [deps.specs().get(dag_id, run.version) for run in runs]
    tasks: dict[str, bool] = {}  # task id -> mapped, in any shown version or the current one
    for spec in [*specs, current_spec(record)] if record.current_version else specs:
        for task_id, task in spec.tasks.items():
            tasks[task_id] = tasks.get(task_id, False) or task.mapping is not None
    unknown = [name for name in query.expand if not tasks.get(name)]
    if unknown:
        raise BadRequest(f"expand names tasks of {dag_id} that are not mapped: {unknown}")
    task_ids = sorted(tasks)
    columns = runs_states(catalog.models, dag_id, [run.run_id for run in runs])
    rows: dict[str, list[str]] = {task_id: [] for task_id in task_ids}
    mapped = {t: GridMapped(counts=[]) for t in task_ids if tasks[t]}
    indices: dict[str, list[dict[int, str]]] = {t: [] for t in query.expand}
    for spec, states in zip(specs, columns, strict=True):
        by_task: dict[str, dict[int, str | None]] = {t: {} for t in mapped}
        for (task_id, index), state in states.items():
            if task_id in by_task and index >= 0:
                by_task[task_id][index] = state
        for task_id in task_ids:
            if task_id not in spec.tasks:
                rows[task_id].append(ABSENT)
                if task_id in mapped:
                    mapped[task_id].counts.append({})
            elif task_id in mapped and by_task[task_id]:
                counts = count_states(by_task[task_id].values())
                mapped[task_id].counts.append(counts)
                rows[task_id].append(code_of(summary_state(counts)))
            else:  # a plain task, or a mapped one not expanded yet (its -1 record)
                rows[task_id].append(code_of(states.get((task_id, -1))))
                if task_id in mapped:
                    mapped[task_id].counts.append({})
        for task_id in query.expand:
            indices[task_id].append({i: code_of(s) for i, s in by_task[task_id].items()})
    for task_id, per_run in indices.items():
        width = max((max(column, default=-1) for column in per_run), default=-1) + 1
        mapped[task_id].instances = [
            "".join(column.get(i, ABSENT) for column in per_run) for i in range(width)
        ]
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
        task_ids=task_ids,
        states=["".join(rows[task_id]) for task_id in task_ids],
        mapped=mapped,
        codes={letter: name for name, letter in STATE_CODES.items()} | {ABSENT: "absent"},
    )
