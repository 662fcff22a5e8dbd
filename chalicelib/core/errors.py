"""One error tree for the pure core; the API layer maps these to HTTP codes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class SlipstreamError(Exception):
    """Base of every error Slipstream raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a DAG, located as precisely as we know."""

    message: str
    file: str | None = None
    line: int | None = None
    dag_id: str | None = None
    task_id: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        subject = ""
        if self.dag_id:
            subject = f"DAG {self.dag_id!r}"
            if self.task_id:
                subject += f" task {self.task_id!r}"
            subject += ": "
        return f"{where}{subject}{self.message}"

    def to_json(self) -> dict[str, Any]:
        """The fields plus the located text, as ``--json`` output and the API show it."""
        return {**asdict(self), "text": str(self)}


class DagValidationError(SlipstreamError):
    """A DAG (or a file of DAGs) has problems; all of them are listed at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid DAG")


class ScheduleError(SlipstreamError):
    """A schedule (cron, preset, timedelta, timetable) cannot be understood."""


class IllegalTransition(SlipstreamError):
    """A task or run state change that the state machine does not allow."""

    def __init__(self, kind: str, source: str, target: str, subject: str = ""):
        self.kind = kind
        self.source = source
        self.target = target
        self.subject = subject
        what = f" for {subject}" if subject else ""
        super().__init__(f"illegal {kind} transition {source} -> {target}{what}")


class UnknownTask(SlipstreamError):
    """A task id that the DAG does not have."""


class MappingError(SlipstreamError):
    """A mapped task's input is not a list or dict, or is too long."""
