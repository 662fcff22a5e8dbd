"""Task log lines on the terminal of ``dags test``, at any rate a task prints them.

A task that prints 50 MB sends about a million lines through the task logger.
Rendering each as its own rich log record (and, under the live table, redrawing
the table after each) cost about a millisecond a line: the run crawled for
minutes and the tasks waited on the terminal. So:

- without a live table (output to a file or a pipe) each line is written as
  plain text, all of it, at the speed of a file write;
- under the live table, lines go to a bounded buffer that a printer thread
  empties a few times a second in one write (one redraw per batch). When a
  task prints faster than that, the oldest waiting lines are dropped and
  counted, and a note says how many: the task never waits for the terminal,
  and memory stays bounded whatever it prints.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from rich.console import Console
from rich.live import Live
from rich.text import Text

LIVE_BUFFER_LINES = 1000  # at most this many lines wait for the terminal
FLUSH_SECONDS = 0.1
_LEVEL_STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}


def _plain(record: logging.LogRecord) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
    return f"[{stamp}] {record.levelname:<7} {record.getMessage()}"


class PlainLineHandler(logging.Handler):
    """Every line, as text, straight to the console's file (no live table)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self._write_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = _plain(record) + "\n"
            with self._write_lock:
                self.console.file.write(line)
        except Exception:
            self.handleError(record)


class LiveLineHandler(logging.Handler):
    """Lines above a live table, batched, with a bounded backlog (see the module doc)."""

    def __init__(self, live: Live, *, capacity: int = LIVE_BUFFER_LINES) -> None:
        super().__init__()
        self.live = live
        self._pending: collections.deque[logging.LogRecord] = collections.deque(maxlen=capacity)
        self._dropped = 0
        self.dropped_total = 0
        self._buffer_lock = threading.Lock()
        self._stop = threading.Event()
        self._printer: threading.Thread | None = None

    def start(self) -> None:
        self._printer = threading.Thread(
            target=self._print_batches, name="slipstream-task-output", daemon=True
        )
        self._printer.start()

    def emit(self, record: logging.LogRecord) -> None:
        with self._buffer_lock:
            if len(self._pending) == self._pending.maxlen:
                self._dropped += 1  # the deque drops its oldest line to take this one
            self._pending.append(record)

    def pending(self) -> int:
        with self._buffer_lock:
            return len(self._pending)

    def flush(self) -> None:
        """Print what waits, in one write: the lines, after a note of what was dropped."""
        with self._buffer_lock:
            records = list(self._pending)
            self._pending.clear()
            dropped, self._dropped = self._dropped, 0
            self.dropped_total += dropped
        if not records and not dropped:
            return
        text = Text()
        if dropped:
            text.append(
                f"… {dropped:,} lines of task output not shown "
                "(printed faster than the terminal shows them)\n",
                style="dim",
            )
        for record in records:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            text.append(f"[{stamp}] ", style="dim")
            text.append(f"{record.levelname:<7} ", style=_LEVEL_STYLES.get(record.levelname, ""))
            text.append(record.getMessage() + "\n")
        text.rstrip()
        self.live.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def stop(self) -> None:
        self._stop.set()
        if self._printer is not None:
            self._printer.join()
            self._printer = None
        self.flush()

    def _print_batches(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # the terminal went away; the run goes on
                logging.getLogger("slipstream.local").debug("task output", exc_info=True)
