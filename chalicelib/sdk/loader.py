"""Import DAG files and collect their DAGs, turning every failure into a located Problem.

Each file is imported as a fresh module under a private name derived from its
path (so two ``etl.py`` in different folders never collide), with its folder
on ``sys.path`` during the import so sibling helper modules import as they
would under Airflow. Nothing here raises for a broken DAG file, and none can
hang it: each import has Airflow's ``dagbag_import_timeout`` (see
``import_timeout``), past which the file is reported like any broken one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType

from chalicelib.core.errors import DagValidationError, Problem, SlipstreamError
from chalicelib.core.spec import DagSpec
from chalicelib.sdk import contexts
from chalicelib.sdk.airflow_imports import AirflowNameMissing, airflow_imports, dag_file_builtins
from chalicelib.sdk.dag import DAG
from chalicelib.sdk.import_timeout import ImportTimedOut, call_with_timeout, import_timeout_seconds
from chalicelib.sdk.serialize import DAG_FILE_ATTRIBUTE
from chalicelib.sdk.source import display_path

MODULE_PREFIX = "slipstream_dag_"


@dataclass
class LoadResult:
    """The DAGs found (by id), every problem, and which file each DAG came from."""

    dags: dict[str, DAG] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    dag_files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_dags(
    paths: Sequence[str], *, check: bool = True, import_timeout: float | None = None
) -> LoadResult:
    """Import every DAG file under ``paths`` (files, or folders searched recursively for
    ``*.py`` not starting with ``_``).

    With ``check`` each DAG's own problems (:meth:`DAG.problems`) are included too.
    ``import_timeout`` overrides the configured dagbag_import_timeout (0: none).
    """
    result = LoadResult()
    seconds = import_timeout_seconds(import_timeout)
    for path in _dag_files(paths, result):
        result.files.append(path)
        dags, problems = _import_file(path, seconds)
        result.problems.extend(problems)
        for dag in dags:
            first = result.dags.get(dag.dag_id)
            if first is not None:
                where = display_path(result.dag_files[dag.dag_id]) or dag.dag_id
                if first.line:
                    where += f":{first.line}"
                result.problems.append(
                    Problem(
                        f"duplicate DAG id {dag.dag_id!r}: already defined at {where}",
                        file=display_path(dag.fileloc or path),
                        line=dag.line,
                        dag_id=dag.dag_id,
                    )
                )
                continue
            result.dags[dag.dag_id] = dag
            result.dag_files[dag.dag_id] = path
            if check:
                result.problems.extend(dag.problems())
    return result


def load_dag(path: str, dag_id: str, *, import_timeout: float | None = None) -> DAG:
    """The DAG ``dag_id`` of the file (or folder) ``path``, for workers and ``dags test``.

    Import errors of that file raise DagValidationError; the DAG's own problems do not.
    """
    result = load_dags([path], check=False, import_timeout=import_timeout)
    return _pick(result, path, dag_id)


def load_dag_spec(path: str, dag_id: str, bundle_root: str | None = None) -> DagSpec:
    """The validated spec of ``dag_id``; raises DagValidationError with every problem
    of the file when it has any."""
    result = load_dags([path], check=True)
    if dag_id in result.dags:
        problems = [p for p in result.problems if p.dag_id in (None, dag_id)]
        if problems:
            raise DagValidationError(problems)
    dag = _pick(result, path, dag_id)
    return dag.to_spec(bundle_root, validate=False)


def _pick(result: LoadResult, path: str, dag_id: str) -> DAG:
    if dag_id in result.dags:
        return result.dags[dag_id]
    import_problems = [p for p in result.problems if p.dag_id is None]
    if import_problems:
        raise DagValidationError(import_problems)
    found = ", ".join(sorted(result.dags)) or "none"
    raise SlipstreamError(f"no DAG {dag_id!r} in {path}; found: {found}")


def _dag_files(paths: Sequence[str], result: LoadResult) -> Iterator[str]:
    for raw in paths:
        path = os.path.abspath(raw)
        if os.path.isfile(path):
            yield path
        elif os.path.isdir(path):
            for folder, subfolders, names in os.walk(path):
                subfolders[:] = sorted(
                    d for d in subfolders if not d.startswith(("_", ".")) and d != "__pycache__"
                )
                for name in sorted(names):
                    if name.endswith(".py") and not name.startswith("_"):
                        yield os.path.join(folder, name)
        else:
            result.problems.append(Problem("no such file or directory", file=raw))


def module_name_for(path: str) -> str:
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(path))[0]
    safe = "".join(c if c.isalnum() else "_" for c in stem)
    return f"{MODULE_PREFIX}{digest}_{safe}"


def _import_file(path: str, timeout: float | None) -> tuple[list[DAG], list[Problem]]:
    name = module_name_for(path)
    try:
        with airflow_imports():  # Airflow DAG files' import lines, for this file only
            return call_with_timeout(lambda: _exec_file(path, name), timeout, name=name)
    except ImportTimedOut as exc:
        sys.modules.pop(name, None)  # half-imported; its thread may never unwind
        return [], [Problem(str(exc), file=display_path(path))]


def _exec_file(path: str, name: str) -> tuple[list[DAG], list[Problem]]:
    folder = os.path.dirname(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return [], [Problem("cannot be imported as a Python module", file=display_path(path))]
    module = importlib.util.module_from_spec(spec)
    setattr(module, DAG_FILE_ATTRIBUTE, path)
    # Its functions' own ``import airflow...`` at run time resolve like the file's.
    module.__builtins__ = dag_file_builtins()  # type: ignore[attr-defined]
    sys.modules[name] = module
    sys.path.insert(0, folder)
    depths = contexts.snapshot()
    collected = contexts.start_collecting()
    # Loading is read-only: no __pycache__ next to the user's DAG files.
    wrote_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        where = exc.filename if exc.filename and exc.filename != "<unknown>" else path
        return [], [Problem(f"syntax error: {exc.msg}", file=display_path(where), line=exc.lineno)]
    except DagValidationError as exc:
        sys.modules.pop(name, None)
        return [], exc.problems
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        return [], [_import_problem(path, exc)]
    finally:
        sys.dont_write_bytecode = wrote_bytecode
        contexts.stop_collecting(collected)
        contexts.restore(depths)
        _remove_first(sys.path, folder)
    return _dags_of(module, collected), []


def _dags_of(module: ModuleType, opened: list[DAG]) -> list[DAG]:
    """DAGs in the module's globals, then DAGs opened with ``with`` but kept nowhere."""
    found: list[DAG] = []
    for value in list(vars(module).values()) + opened:
        if isinstance(value, DAG) and not any(value is d for d in found):
            found.append(value)
    return found


def _import_problem(path: str, exc: BaseException) -> Problem:
    """Locate an import-time exception at the deepest traceback frame in the DAG file."""
    frames = traceback.extract_tb(exc.__traceback__)
    in_file = [f for f in frames if os.path.abspath(f.filename) == path]
    line = in_file[-1].lineno if in_file else None
    if isinstance(exc, AirflowNameMissing):  # the message already says what and what instead
        return Problem(str(exc), file=display_path(path), line=line)
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # The import machinery (our airflow.* hook, importlib's frozen frames) is where
    # Python raises a failed import, which tells the author nothing: skip it.
    raisers = [f for f in frames if not _import_machinery(f.filename)]
    if raisers and in_file and raisers[-1] is not in_file[-1]:
        deepest = raisers[-1]
        deepest_file = display_path(os.path.abspath(deepest.filename))
        message += f" (raised at {deepest_file}:{deepest.lineno})"
    return Problem(f"error while importing: {message}", file=display_path(path), line=line)


_HOOK_FILE = os.path.abspath(sys.modules[dag_file_builtins.__module__].__file__ or "")


def _import_machinery(filename: str) -> bool:
    return filename.startswith("<frozen importlib") or os.path.abspath(filename) == _HOOK_FILE


def _remove_first(items: list[str], value: str) -> None:
    with contextlib.suppress(ValueError):
        items.remove(value)
