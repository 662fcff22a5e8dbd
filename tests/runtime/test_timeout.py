"""execution_timeout on the main thread (SIGALRM) and in worker threads (async exception)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.runtime import timeout as timeout_module
from chalicelib.runtime.timeout import TaskCancelled, TryCancel, execution_timeout
from chalicelib.sdk.exceptions import TaskTimeout


def spin_forever() -> None:
    n = 0
    while True:
        n += 1


def in_thread(work: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run ``work`` in a fresh thread; its result or the exception it raised."""
    outcome: dict[str, Any] = {"result": None, "error": None}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return outcome["result"], outcome["error"]


def test_main_thread_loop_is_interrupted_and_on_kill_called_first() -> None:
    assert threading.current_thread() is threading.main_thread()
    calls: list[str] = []
    before = signal.getsignal(signal.SIGALRM)
    stop = execution_timeout(0.2, on_timeout=lambda: calls.append("kill"))
    with pytest.raises(TaskTimeout, match=r"execution_timeout of 0\.2s"), stop:
        spin_forever()
    assert calls == ["kill"]
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_worker_thread_loop_is_interrupted_and_on_kill_called() -> None:
    calls: list[str] = []

    def work() -> None:
        with execution_timeout(0.2, on_timeout=lambda: calls.append("kill")):
            spin_forever()

    _, error = in_thread(work)
    assert isinstance(error, TaskTimeout)
    assert "execution_timeout of 0.2s" in str(error)
    assert calls == ["kill"]


def test_timeouts_in_many_threads_each_hit_their_own_thread() -> None:
    errors: list[BaseException | None] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            with execution_timeout(0.1):
                spin_forever()
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and all(isinstance(e, TaskTimeout) for e in errors)


def test_a_task_that_swallows_the_interruption_still_times_out() -> None:
    def work() -> str:
        with execution_timeout(0.1):
            with contextlib.suppress(TaskTimeout):
                spin_forever()
            return "kept going"

    result, error = in_thread(work)
    assert result is None and isinstance(error, TaskTimeout)


def test_a_finished_block_is_never_interrupted_later() -> None:
    guards: list[Any] = []
    original_watch = timeout_module._WATCHDOG.watch

    def capture(guard: Any) -> None:
        guards.append(guard)
        original_watch(guard)

    def work() -> str:
        timeout_module._WATCHDOG.watch = capture  # type: ignore[method-assign]
        try:
            with execution_timeout(60):
                value = "done"
        finally:
            timeout_module._WATCHDOG.watch = original_watch  # type: ignore[method-assign]
        # A watchdog that fires now (late) must leave this thread alone.
        timeout_module._expire(guards[0])
        total = 0
        for i in range(200_000):
            total += i
        return value

    result, error = in_thread(work)
    assert error is None and result == "done"
    assert guards[0].done and not guards[0].fired


def test_no_timeout_costs_nothing_and_raises_nothing() -> None:
    with execution_timeout(None) as guard:
        pass
    assert guard._guard is None


def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"), execution_timeout(0):
        pass


def test_a_cancel_interrupts_the_try_and_calls_on_kill() -> None:
    calls: list[str] = []
    cancel = TryCancel()
    entered = threading.Event()

    def work() -> None:
        with execution_timeout(None, on_timeout=lambda: calls.append("kill"), cancel=cancel):
            entered.set()
            spin_forever()

    outcome: dict[str, BaseException] = {}

    def target() -> None:
        try:
            work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    entered.wait()
    cancel.cancel("the run ended")
    thread.join()
    assert isinstance(outcome["error"], TaskCancelled)
    assert str(outcome["error"]) == "Task stopped: the run ended"
    assert calls == ["kill"]


def test_a_cancel_before_the_operator_runs_stops_it_at_once() -> None:
    cancel = TryCancel()
    cancel.cancel("interrupted")

    def work() -> None:
        with execution_timeout(None, cancel=cancel):
            spin_forever()

    _, error = in_thread(work)
    assert isinstance(error, TaskCancelled)


def test_a_cancel_after_the_try_finished_changes_nothing() -> None:
    cancel = TryCancel()

    def work() -> str:
        with execution_timeout(None, cancel=cancel):
            value = "done"
        cancel.cancel("too late")
        total = 0
        for i in range(200_000):
            total += i
        return value

    result, error = in_thread(work)
    assert error is None and result == "done"
