"""Operator plugins: third-party packages that register operators under an entry point.

A package adds its operators to Slipstream by declaring, in its packaging
metadata, entries in the ``slipstream.operators`` group, one per operator::

    [project.entry-points."slipstream.operators"]
    ShoutOperator = "acme_ops.shout:ShoutOperator"

DAG files import the operator from its module as usual
(``from acme_ops.shout import ShoutOperator``); the entry point is what makes
the package known: ``slipstream operators list`` shows it, and
``slipstream dags deploy`` puts its code into the bundle (chalicelib/deploy/
plugin_files.py), so workers run the version the DAG was deployed with.

Nothing here imports a plugin: listing reads metadata only, and
:func:`load_operator` imports one entry when asked. Built-in operators are
found by importing the ``operators`` library's modules, also only when asked.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import inspect
import pkgutil
import re
from dataclasses import dataclass

from chalicelib.core.errors import SlipstreamError

ENTRY_POINT_GROUP = "slipstream.operators"
BUILTIN_PACKAGE = "slipstream"


class PluginError(SlipstreamError):
    """An operator plugin is broken: its entry point does not name an importable operator."""


@dataclass(frozen=True)
class OperatorEntry:
    """One operator Slipstream knows: built in, or registered by an installed distribution."""

    name: str
    module: str  # "package.module:Class"
    package: str  # the distribution that provides it
    version: str
    builtin: bool


def normalize(name: str) -> str:
    """A distribution name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_distributions() -> list[metadata.Distribution]:
    """Every installed distribution with a ``slipstream.operators`` entry, first one per name.

    The first on ``sys.path`` wins, as for imports, when a name is installed twice.
    """
    seen: set[str] = set()
    found: list[metadata.Distribution] = []
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        key = normalize(name)
        if not name or key in seen:
            continue
        seen.add(key)
        if any(ep.group == ENTRY_POINT_GROUP for ep in dist.entry_points):
            found.append(dist)
    return sorted(found, key=lambda d: normalize(d.metadata["Name"]))


def plugin_operators() -> list[OperatorEntry]:
    """The operators installed plugins register, read from metadata (nothing imported)."""
    entries: list[OperatorEntry] = []
    for dist in plugin_distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                entries.append(
                    OperatorEntry(ep.name, ep.value, dist.metadata["Name"], dist.version, False)
                )
    return sorted(entries, key=lambda e: (e.name, e.package))


def load_operator(name: str) -> type:
    """The operator class a plugin registered as ``name``; PluginError saying why not."""
    matches = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(sorted({e.name for e in plugin_operators()})) or "none installed"
        raise PluginError(
            f"no operator plugin {name!r} (group {ENTRY_POINT_GROUP}); known: {known}"
        )
    entry = matches[0]
    try:
        loaded = entry.load()
    except Exception as exc:  # any import error of third-party code
        raise PluginError(
            f"operator plugin {name!r} ({entry.value}) does not import: {type(exc).__name__}: {exc}"
        ) from exc
    from chalicelib.sdk.baseoperator import BaseOperator

    if not (inspect.isclass(loaded) and issubclass(loaded, BaseOperator)):
        raise PluginError(
            f"operator plugin {name!r} ({entry.value}) is not a BaseOperator subclass: {loaded!r}"
        )
    return loaded


def builtin_operators() -> list[OperatorEntry]:
    """The operators of the ``operators`` library, found by importing its modules."""
    from chalicelib import __version__
    from chalicelib.sdk.baseoperator import BaseOperator

    library = importlib.import_module("operators")
    entries: dict[str, OperatorEntry] = {}
    for info in pkgutil.iter_modules(library.__path__, "operators."):
        if info.ispkg:  # operators.hooks: hooks, not operators
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseOperator)
                and value.__module__ == info.name
                and not name.startswith(("_", "Decorated", "Base", "AwsBase"))
            ):
                entries[name] = OperatorEntry(
                    name, f"{info.name}:{value.__qualname__}", BUILTIN_PACKAGE, __version__, True
                )
    return sorted(entries.values(), key=lambda e: e.name)
