"""A task that floods its output neither stalls ``dags test`` nor the live table:
under the table the backlog is bounded and what is dropped is counted; without
one every line is written, as plain text."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console
from rich.live import Live
from rich.text import Text

from chalicelib.local import task_output
from chalicelib.local.display import TableReporter
from chalicelib.local.runner import run_dag_test
from chalicelib.local.task_output import LiveLineHandler
from chalicelib.sdk import DAG
from operators.bash import BashOperator

LINES = 30_000
PAD = "x" * 80
COMMAND = f"seq -f 'output line %g {PAD}' 1 {LINES}"  # about 3 MB


@pytest.fixture(autouse=True)
def no_log_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest's own log capture would keep and format every one of the lines."""
    monkeypatch.setattr(logging.getLogger("slipstream.task"), "propagate", False)


def record(n: int) -> logging.LogRecord:
    return logging.LogRecord("slipstream.task", logging.INFO, __file__, 1, "line %d", (n,), None)


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_the_backlog_is_bounded_and_dropped_lines_are_counted() -> None:
    console, out = terminal()
    live = Live(Text("table"), console=console, auto_refresh=False)
    handler = LiveLineHandler(live, capacity=100)

    for n in range(10_000):
        handler.emit(record(n))

    assert handler.pending() == 100
    assert out.getvalue() == ""  # emitting never writes: the task does not wait on the terminal
    handler.flush()
    shown = out.getvalue()
    assert "… 9,900 lines of task output not shown" in shown
    assert "line 9999" in shown and "line 9899" not in shown  # the latest lines are kept
    assert handler.pending() == 0 and handler.dropped_total == 9_900


def flood_dag(dag_id: str) -> DAG:
    with DAG(dag_id) as dag:
        BashOperator(task_id="flood", bash_command=COMMAND)
    return dag


def test_dags_test_under_the_live_table_shows_a_bounded_tail_of_a_flood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The printer thread never fires on its own here: what the run shows is
    # decided by the bound alone, not by how fast this machine is.
    monkeypatch.setattr(task_output, "FLUSH_SECONDS", 3600.0)
    console, out = terminal()

    result = run_dag_test(flood_dag("flood_live"), reporter=TableReporter(console))

    assert result.succeeded
    shown = out.getvalue()
    assert "lines of task output not shown" in shown
    assert f"output line {LINES} " in shown  # the tail of the output made it to the screen
    assert len(shown) < 300_000  # not the 3 MB the task printed


def test_dags_test_without_a_terminal_writes_every_line() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)

    result = run_dag_test(flood_dag("flood_plain"), reporter=TableReporter(console))

    assert result.succeeded
    numbers = [
        int(line.split("output line ")[1].split()[0])
        for line in out.getvalue().splitlines()
        if "output line " in line and "%g" not in line  # not the logged command
    ]
    assert numbers == list(range(1, LINES + 1))
