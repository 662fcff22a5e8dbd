"""The live task table of a local test run, and its closing summary.

One row per task (a mapped task shows counts of its instances), so a
10,000-way map or a 1,000-task chain stays readable; the live view shows the
busiest rows and a count of the rest.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from chalicelib.core.states import TaskState
from chalicelib.local.task_output import LiveLineHandler, PlainLineHandler

if TYPE_CHECKING:
    from chalicelib.local.runner import DagTestResult, LocalDagRun, TryRecord

STYLES = {
    "none": "dim",
    "scheduled": "cyan",
    "queued": "cyan",
    "running": "bold yellow",
    "success": "green",
    "failed": "bold red",
    "up_for_retry": "yellow",
    "up_for_reschedule": "blue",
    "upstream_failed": "red",
    "skipped": "magenta",
    "removed": "dim",
}
LIVE_ROWS = 25
SUMMARY_ROWS = 60


class TableReporter:
    """Feeds a rich Live view while the run goes on; prints the summary at the end."""

    def __init__(self, console: Console | None = None, *, live: bool = True):
        self.console = console or Console()
        self.live_enabled = live and self.console.is_terminal
        self._live: Live | None = None
        self._notes: dict[str, str] = {}
        self._handler: logging.Handler | None = None

    # reporter protocol used by LocalDagRun
    def start(self, run: LocalDagRun) -> None:
        # Task output goes through handlers that never make a task wait for the
        # terminal (task_output): one rich record a line crawled at a 50 MB print.
        if self.live_enabled:
            self._live = Live(
                _LiveView(self, run), console=self.console, refresh_per_second=8, transient=True
            )
            self._live.start()
            live_lines = LiveLineHandler(self._live)
            live_lines.start()
            self._handler = live_lines
        else:
            self._handler = PlainLineHandler(self.console)
        task_logger = logging.getLogger("slipstream.task")
        task_logger.addHandler(self._handler)
        self._previous_level = task_logger.level
        if task_logger.level == logging.NOTSET or task_logger.level > logging.INFO:
            task_logger.setLevel(logging.INFO)

    def try_finished(self, run: LocalDagRun, record: TryRecord) -> None:
        if record.state is TaskState.UP_FOR_RETRY and record.retry_delay is not None:
            note = f"try {record.try_number} failed, retry in {record.retry_delay:g}s"
            if not run.clock.real_time:
                note += " (not waited: pass real_time to wait)"
            self._notes[record.label.split("[")[0]] = note
        elif record.state is TaskState.UP_FOR_RESCHEDULE and record.retry_delay is not None:
            note = f"poke not satisfied, next poke in {record.retry_delay:g}s (no worker held)"
            self._notes[record.label.split("[")[0]] = note
        elif record.error:
            self._notes[record.label.split("[")[0]] = record.error

    def stop(self, run: LocalDagRun) -> None:
        task_logger = logging.getLogger("slipstream.task")
        if self._handler is not None:
            task_logger.removeHandler(self._handler)
            if isinstance(self._handler, LiveLineHandler):
                self._handler.stop()  # the last lines, above the table, before it goes
            self._handler = None
        task_logger.setLevel(self._previous_level)
        if self._live is not None:
            self._live.stop()
            self._live = None

    def rows(self, run: LocalDagRun, limit: int) -> tuple[list[list[Any]], int]:
        with run.lock:
            instances = run.state.task_instances()
        by_task: dict[str, list[Any]] = defaultdict(list)
        for ti in instances:
            by_task[ti.task_id].append(ti)
        rows = []
        for task_id in run.spec.topological_order:
            group = by_task.get(task_id, [])
            rows.append(_row(run.spec.tasks[task_id].label, group, self._notes.get(task_id, "")))
        if len(rows) <= limit:
            return rows, 0
        busy = [r for r in rows if r[1] not in ("success", "none")]
        rest = [r for r in rows if r[1] in ("success", "none")]
        shown = (busy + rest)[:limit]
        return shown, len(rows) - len(shown)

    def summary(self, result: DagTestResult, run: LocalDagRun) -> None:
        rows, hidden = self.rows(run, SUMMARY_ROWS)
        self.console.print(_table(f"DAG {result.dag_id} — run {result.run_id}", rows, hidden))
        counts = Counter(result.task_states.values())
        parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        style = "bold green" if result.succeeded else "bold red"
        self.console.print(
            Text.assemble(
                ("Run ", ""),
                (result.state, style),
                f" in {result.wall_seconds:.2f}s: "
                f"{len(result.task_states)} task instances ({parts})",
                (f": {result.reason}" if result.reason else "", style),
            )
        )
        for label, error in result.errors.items():
            self.console.print(Text(f"  {label}: {error}", style="red"))
        for missed in result.missed_deadlines:
            self.console.print(Text(f"  {missed}", style="yellow"))


class _LiveView:
    def __init__(self, reporter: TableReporter, run: LocalDagRun):
        self.reporter = reporter
        self.run = run

    def __rich__(self) -> RenderableType:
        rows, hidden = self.reporter.rows(self.run, LIVE_ROWS)
        progress = self.run.state.progress
        header = Text(f"{progress.finished}/{progress.total} task instances finished", style="bold")
        return Group(header, _table(f"DAG {self.run.spec.dag_id}", rows, hidden))


def _row(label: str, instances: list[Any], note: str) -> list[Any]:
    if not instances:
        return [label, "none", "", "", note]
    if len(instances) == 1 and instances[0].map_index < 0:
        ti = instances[0]
        return [label, ti.state.value, str(ti.try_number or ""), _duration(ti), note]
    counts = Counter(ti.state.value for ti in instances)
    dominant = _dominant(counts)
    detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    tries = max(ti.try_number for ti in instances)
    return [f"{label} [{len(instances)} mapped]", dominant, str(tries or ""), "", detail or note]


def _dominant(counts: Counter[str]) -> str:
    waiting = ("up_for_retry", "up_for_reschedule")
    for state in ("failed", "running", *waiting, "queued", "scheduled", "upstream_failed"):
        if counts.get(state):
            return state
    return counts.most_common(1)[0][0]


def _duration(ti: Any) -> str:
    if ti.start_date is None or ti.end_date is None:
        return ""
    return f"{(ti.end_date - ti.start_date).total_seconds():.2f}s"


def _table(title: str, rows: list[list[Any]], hidden: int) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("task")
    table.add_column("state")
    table.add_column("tries", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("note", overflow="fold", max_width=70)
    for label, state, tries, duration, note in rows:
        table.add_row(label, Text(state, style=STYLES.get(state, "")), tries, duration, note)
    if hidden:
        table.add_row(Text(f"… {hidden} more tasks", style="dim"), "", "", "", "")
    return table


def instances_table(title: str, spec: Any, instances: list[Any]) -> Table:
    """A task table from stored instances (the local stack's run, read from DynamoDB)."""
    by_task: dict[str, list[Any]] = defaultdict(list)
    for ti in instances:
        by_task[ti.task_id].append(ti)
    rows = [
        _row(spec.tasks[tid].label, by_task.get(tid, []), _note(by_task.get(tid, [])))
        for tid in spec.topological_order
    ]
    return _table(title, rows, 0)


def _note(instances: list[Any]) -> str:
    errors = [ti.error for ti in instances if getattr(ti, "error", None)]
    return errors[-1] if errors else ""
