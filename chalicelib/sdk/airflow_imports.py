"""``airflow.*`` imports inside DAG files, resolved to Slipstream's objects.

Airflow DAG files run unchanged only if their import lines work. Installing a
package called ``airflow`` would break anyone who also has real Airflow, so
instead a meta-path finder is put first on ``sys.meta_path`` only while
Slipstream runs DAG-file code (:func:`airflow_imports`): the loader importing
a file, and an ``import airflow...`` statement that a function of that file
runs later (a task calling ``get_current_context``), through the file's own
``__import__`` (:func:`dag_file_builtins`). Real ``airflow`` modules already
imported are set aside meanwhile and put back after, so a process that uses
real Airflow sees no difference outside those moments.

The finder makes one module per Airflow module of ``airflow_names``; each
resolves its names on first use (PEP 562 ``__getattr__``). A module or name
Slipstream lacks raises :class:`AirflowNameMissing`, an ImportError whose one
line names the Airflow name and what to use instead (the loader shows it as
``file:line: message``); being an ImportError, a file's own
``try: ... except ImportError:`` fallback still works.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType, ModuleType
from typing import Any

from chalicelib.sdk.airflow_names import AIRFLOW_NAMES, MISSING_MODULES, Missing, provider_advice

ROOT = "airflow"
GENERIC_ADVICE = "Slipstream has no equivalent; see docs/porting.md for what to use"


class AirflowNameMissing(ImportError):
    """A DAG file imported an Airflow module or name that Slipstream does not have."""


class AirflowModuleMissing(AirflowNameMissing, ModuleNotFoundError):
    """The Airflow module itself has no Slipstream equivalent."""


def is_airflow_module(name: str) -> bool:
    return name == ROOT or name.startswith(ROOT + ".")


def _known_modules() -> frozenset[str]:
    """Every table module and each of its parents (``airflow.operators`` for ``...python``)."""
    known: set[str] = set()
    for module in AIRFLOW_NAMES:
        parts = module.split(".")
        known.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(known)


KNOWN_MODULES = _known_modules()


def module_advice(module: str) -> str:
    """What to use instead of anything from ``module``, most specific entry first."""
    parts = module.split(".")
    for i in range(len(parts), 1, -1):
        advice = MISSING_MODULES.get(".".join(parts[:i]))
        if advice:
            return advice
    return provider_advice(module) or GENERIC_ADVICE


def resolve_name(module: str, name: str) -> Any:
    """The Slipstream object behind Airflow's ``module.name``; AirflowNameMissing if none."""
    entry = AIRFLOW_NAMES.get(module, {}).get(name)
    if isinstance(entry, str):
        target_module, _, attribute = entry.partition(":")
        return getattr(importlib.import_module(target_module), attribute)
    if isinstance(entry, Missing):
        raise AirflowNameMissing(f"{module}.{name} is not available in Slipstream: {entry.advice}")
    if f"{module}.{name}" in KNOWN_MODULES:
        with airflow_imports():
            return importlib.import_module(f"{module}.{name}")
    raise AirflowNameMissing(f"{module}.{name} is not available in Slipstream: {GENERIC_ADVICE}")


class _ShimModule(ModuleType):
    """An Airflow module whose names are looked up in the table on first use."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # dunder probes by tools and the import system
            raise AttributeError(name)
        value = resolve_name(self.__name__, name)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(AIRFLOW_NAMES.get(self.__name__, {})))


class AirflowFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds every ``airflow.*`` module while active: a shim, or AirflowModuleMissing."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not is_airflow_module(fullname):
            return None
        if fullname not in KNOWN_MODULES:
            raise AirflowModuleMissing(_missing_module_message(fullname), name=fullname)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return _ShimModule(spec.name)

    def exec_module(self, module: ModuleType) -> None:
        names = AIRFLOW_NAMES.get(module.__name__, {})
        module.__all__ = [n for n, entry in names.items() if isinstance(entry, str)]  # type: ignore[attr-defined]
        module.__doc__ = f"Slipstream's stand-in for Airflow's {module.__name__}."


_FINDER = AirflowFinder()
_lock = threading.RLock()
_depth = 0
_set_aside: dict[str, ModuleType] = {}


@contextlib.contextmanager
def airflow_imports() -> Iterator[None]:
    """Within the block, ``import airflow...`` gives Slipstream's modules; nesting is fine.

    Process-wide while active (``sys.meta_path`` is), which is why the loader
    holds it only around one file's import: a thread importing real Airflow at
    that very moment would get the stand-ins.
    """
    _activate()
    try:
        yield
    finally:
        _deactivate()


def _activate() -> None:
    global _depth
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        # list() copies sys.modules in one step: another thread importing meanwhile
        # would make a comprehension over the live dict fail mid-iteration.
        for name in [n for n in list(sys.modules) if is_airflow_module(n)]:
            _set_aside[name] = sys.modules.pop(name)
        sys.meta_path.insert(0, _FINDER)


def _deactivate() -> None:
    global _depth
    with _lock:
        _depth -= 1
        if _depth > 0:
            return
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(_FINDER)
        for name in [n for n in list(sys.modules) if is_airflow_module(n)]:
            if isinstance(sys.modules.get(name), _ShimModule):
                sys.modules.pop(name, None)
        sys.modules.update(_set_aside)
        _set_aside.clear()


def _import_in_dag_file(
    name: str,
    globals: dict[str, Any] | None = None,
    locals: dict[str, Any] | None = None,
    fromlist: Sequence[str] = (),
    level: int = 0,
) -> ModuleType:
    """``__import__`` for DAG-file code: ``airflow...`` with the finder active, else as usual."""
    if level == 0 and is_airflow_module(name):
        with airflow_imports():
            return builtins.__import__(name, globals, locals, fromlist, level)
    return builtins.__import__(name, globals, locals, fromlist, level)


def dag_file_builtins() -> dict[str, Any]:
    """Builtins for a DAG file's module, so its functions' later airflow imports resolve too."""
    return {**vars(builtins), "__import__": _import_in_dag_file}


def _missing_module_message(fullname: str) -> str:
    """``airflow.x.y.Name is not available in Slipstream: advice``, naming what was imported.

    The import system asks for the first unknown parent (``airflow.providers.google``);
    the statement being run says which module and names the file wanted.
    """
    wanted = _names_being_imported(fullname) or [fullname]
    return f"{', '.join(wanted)} is not available in Slipstream: {module_advice(fullname)}"


def _names_being_imported(fullname: str) -> list[str]:
    frame = _importing_frame()
    if frame is None:
        return []
    try:
        with open(frame.f_code.co_filename, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        return []
    line = frame.f_lineno
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or line is None:
            continue
        if not node.lineno <= line <= (node.end_lineno or node.lineno):
            continue
        module = node.module if isinstance(node, ast.ImportFrom) and node.level == 0 else None
        if module and (module == fullname or module.startswith(fullname + ".")):
            return [f"{module}.{alias.name}" for alias in node.names]
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names if a.name.startswith(fullname)]
            if found:
                return found
    return []


def _importing_frame() -> FrameType | None:
    """The innermost frame outside the import system and this module: the import statement."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<frozen") and filename != __file__:
            return frame
        frame = frame.f_back
    return None
