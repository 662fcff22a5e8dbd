"""What the API shows of a DAG in lists, kept on the DAG's row at deploy time.

A DAG list page shows a hundred DAGs; reading a hundred specs (some of them
megabytes, some in S3) to show their tags and schedules would make the list
cost grow with DAG size. The deployer writes this small summary beside the
current version instead, so one index query serves a whole page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.core.spec import DagSpec

DEFAULT_OWNER = "airflow"
"""Airflow's ``default_args`` owner when a DAG names none; Slipstream tasks carry none."""


def summarize(spec: DagSpec, *, git_commit: str | None, deployed_at: dt.datetime) -> dict[str, Any]:
    """The JSON-ready facts of one deployed version that lists and filters need."""
    timetable = spec.timetable
    summary, description = timetable.summary, timetable.description
    if spec.asset_condition is not None:  # Airflow's AssetTriggeredTimetable
        summary, description = "Asset", "Triggered by assets"
    limited = any(
        task.pool_slots != 1 or task.executor.kind == "ecs" for task in spec.tasks.values()
    )
    return {
        "display_name": spec.label,
        "description": spec.description,
        "tags": sorted(set(spec.tags)),
        "owners": [DEFAULT_OWNER],
        "fileloc": spec.fileloc or "",
        "timetable_summary": summary,
        "timetable_description": description,
        "timetable_periodic": bool(timetable.periodic),
        "schedulable": bool(timetable.can_be_scheduled)
        or bool(spec.events)
        or spec.asset_condition is not None,
        "max_active_runs": spec.max_active_runs,
        "max_active_tasks": spec.max_active_tasks,
        "has_task_concurrency_limits": limited,
        "git_commit": git_commit,
        "deployed_at": deployed_at.astimezone(dt.UTC).isoformat(),
        "tasks": len(spec.tasks),
        "event_triggers": event_triggers(spec),  # so the DAG list reads no spec
    }


def event_triggers(spec: DagSpec) -> list[dict[str, Any]]:
    """The events that start runs of ``spec``, each with the pattern it is routed by."""
    return [
        {
            "type": trigger.type,
            "description": trigger.model_dump(exclude={"type"}),
            "event_pattern": trigger.event_pattern(),
        }
        for trigger in spec.events
    ]
