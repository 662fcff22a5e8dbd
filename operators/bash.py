"""Airflow's BashOperator: run a templated shell command, its last output line is the result.

Behaviour follows Airflow 2: ``bash -c`` in a fresh temporary directory (or
``cwd``), stderr merged into stdout and streamed line by line to the task log,
``AIRFLOW_CTX_*`` variables added to the environment, exit code
``skip_on_exit_code`` (99 by default) skips the task, any other non-zero exit
fails the try (retries apply). The command runs in its own process group, so
``on_kill`` (execution timeout, cancellation) stops everything it started:
SIGTERM, then SIGKILL after a grace period for what ignored it
(``chalicelib.runtime.process_groups``), so a command that traps SIGTERM cannot
hold the try, or outlive it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Collection, Container, Mapping, Sequence
from typing import Any

from chalicelib.runtime import process_groups, templating
from chalicelib.sdk.baseoperator import BaseOperator
from chalicelib.sdk.exceptions import TaskFailed, TaskSkipped
from operators.python import determine_kwargs

_fallback_log = logging.getLogger("slipstream.task")
# Module-level rather than per operator: operators are copied (shallow and deep)
# by the SDK and the runtime, and a lock can be neither shared safely nor deep-copied.
_PROCESS_LOCK = threading.Lock()


class BashOperator(BaseOperator):
    template_fields: Sequence[str] = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        output_processor: Callable[[str], Any] = lambda output: output,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        self.skip_on_exit_code = skip_on_exit_code
        self.cwd = cwd
        self.output_processor = output_processor
        self._process: subprocess.Popen[bytes] | None = None

    def execute(self, context: Mapping[str, Any]) -> Any:
        if self.cwd is not None:
            if not os.path.exists(self.cwd):
                raise TaskFailed(f"Can not find the cwd: {self.cwd}", non_retryable=False)
            if not os.path.isdir(self.cwd):
                raise TaskFailed(f"The cwd {self.cwd} must be a directory", non_retryable=False)
        bash = shutil.which("bash") or "bash"
        log = _task_log(context)
        with contextlib.ExitStack() as stack:
            workdir = self.cwd or stack.enter_context(
                tempfile.TemporaryDirectory(prefix="airflowtmp")
            )
            exit_code, last_line = self._run([bash, "-c", self.bash_command], workdir, context, log)
        if self._skips(exit_code):
            raise TaskSkipped(f"Bash command returned exit code {exit_code}. Skipping.")
        if exit_code != 0:
            raise TaskFailed(
                f"Bash command failed. The command returned a non-zero exit code {exit_code}.",
                non_retryable=False,
            )
        return self.output_processor(last_line)

    def _run(
        self, command: list[str], workdir: str, context: Mapping[str, Any], log: Any
    ) -> tuple[int, str]:
        log.info("Running command: %s", command)
        with _PROCESS_LOCK:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=self.subprocess_env(context),
                start_new_session=True,  # own process group, for on_kill
            )
            self._process = process
            process_groups.register(process.pid)  # start_new_session: pgid == pid
        last_line = ""
        try:
            assert process.stdout is not None
            log.info("Output:")
            for raw in iter(process.stdout.readline, b""):
                last_line = raw.decode(self.output_encoding, errors="backslashreplace").rstrip()
                log.info("%s", last_line)
            process.wait()
        finally:
            if process.poll() is None:
                # Unwinding (a timeout, an interrupt) while the command still runs:
                # it gets the same grace as on_kill gives, then SIGKILL.
                process_groups.terminate(process.pid)
                process.wait()
            process_groups.unregister(process.pid)
            if process.stdout is not None:
                process.stdout.close()
        log.info("Command exited with return code %s", process.returncode)
        return process.returncode, last_line

    def subprocess_env(self, context: Mapping[str, Any]) -> dict[str, str]:
        """``env`` alone, or merged over os.environ with ``append_env``, plus AIRFLOW_CTX_*."""
        if self.env is None:
            env = dict(os.environ)
        elif self.append_env:
            env = {**os.environ, **self.env}
        else:
            env = dict(self.env)
        env.update(_context_variables(context))
        return env

    def _skips(self, exit_code: int) -> bool:
        codes = self.skip_on_exit_code
        if codes is None:
            return False
        if isinstance(codes, int):
            return exit_code == codes
        return exit_code in codes

    def on_kill(self) -> None:
        """Stop the command and everything it started (its whole process group):
        SIGTERM now, SIGKILL after the grace; returns at once."""
        with _PROCESS_LOCK:
            process = self._process
        if process is not None and process.returncode is None:
            process_groups.terminate(process.pid)


def _task_log(context: Mapping[str, Any]) -> Any:
    ti = context.get("ti")
    return getattr(ti, "log", None) or _fallback_log


def _context_variables(context: Mapping[str, Any]) -> dict[str, str]:
    """Airflow's AIRFLOW_CTX_* variables, which scripts use to know their run."""
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    logical_date = context.get("logical_date")
    values = {
        "AIRFLOW_CTX_DAG_ID": getattr(ti, "dag_id", None),
        "AIRFLOW_CTX_TASK_ID": getattr(ti, "task_id", None),
        "AIRFLOW_CTX_LOGICAL_DATE": logical_date.isoformat() if logical_date else None,
        "AIRFLOW_CTX_EXECUTION_DATE": logical_date.isoformat() if logical_date else None,
        "AIRFLOW_CTX_TRY_NUMBER": getattr(ti, "try_number", None),
        "AIRFLOW_CTX_DAG_RUN_ID": getattr(dag_run, "run_id", None) or context.get("run_id"),
    }
    return {name: str(value) for name, value in values.items() if value is not None}


class DecoratedBashOperator(BashOperator):
    """What ``@task.bash`` builds: the function returns the command, which runs as BashOperator.

    As in Airflow, the function is called with its ``op_args``/``op_kwargs`` and the
    context entries it names; it must return a non-empty string, which is then
    rendered as a template (``{{ ds }}`` in it works, a name ending ``.sh`` is
    read as a script file from the template search path) and run.
    """

    template_fields = ("op_args", "op_kwargs", "bash_command", "env", "cwd")
    custom_operator_name = "@task.bash"
    mapped_kwargs_field = "op_kwargs"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("bash_command", "")  # filled in by the function when the task runs
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})

    def execute(self, context: Mapping[str, Any]) -> Any:
        merged = {**context, **self.op_kwargs}
        kwargs = determine_kwargs(self.python_callable, self.op_args, merged)
        command = self.python_callable(*self.op_args, **kwargs)
        if not isinstance(command, str) or not command.strip():
            raise TypeError(
                "The returned value from the TaskFlow callable must be a non-empty string."
            )
        env = templating.template_env(self.get_dag())
        if self.template_ext and command.endswith(tuple(self.template_ext)):
            self.bash_command = env.render_file(command, context)
        else:
            self.bash_command = templating.render_value(command, context, env)
        return super().execute(context)
