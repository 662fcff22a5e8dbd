"""Bodies of clear and mark requests, with Airflow 3's fields and defaults
(a clear is a dry run that touches only failed instances unless told otherwise)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chalicelib.api.datamodels.common import BodyModel, Instant, QueryModel

TaskRef = str | tuple[str, int]


class ClearTaskInstancesBody(BodyModel):
    dry_run: bool = True
    only_failed: bool = True
    only_running: bool = False
    reset_dag_runs: bool = True
    task_ids: list[TaskRef] | None = None
    dag_run_id: str | None = None
    start_date: Instant | None = None
    end_date: Instant | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    run_on_latest_version: bool = False
    prevent_running_task: bool = False
    note: Annotated[str, Field(max_length=1000)] | None = None


class DagRunClearBody(BodyModel):
    dry_run: bool = True
    only_failed: bool = False
    only_new: bool = False
    run_on_latest_version: bool = False
    note: Annotated[str, Field(max_length=1000)] | None = None


class PatchTaskInstanceBody(BodyModel):
    new_state: Literal["success", "failed", "skipped"] | None = None
    note: Annotated[str, Field(max_length=1000)] | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False


class PatchTaskInstanceQuery(QueryModel):
    map_index: int | None = None
    update_mask: list[str] = Field(default_factory=list)
