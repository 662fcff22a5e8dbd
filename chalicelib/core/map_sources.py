"""The length of a mapped argument whose source is composed: ``XComArg.map`` / ``.zip``.

The scheduler never runs user code, so it sizes a map from lengths it already
has: a literal's length (recorded at deploy) and the result length an upstream
reported when it finished. ``map`` keeps its source's length (its functions run
on the worker, one element at a time); ``zip`` has the shortest of its inputs'
lengths, or the longest with a ``fillvalue`` (Airflow's get_task_map_length).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.core.spec import MapSource

LeafLength = Callable[["MapSource"], tuple[int, str | None]]


def leaf_sources(sources: Iterable[MapSource]) -> Iterator[MapSource]:
    """The literal and upstream-result sources, with zips opened up (depth first)."""
    for source in sources:
        if source.zip_sources:
            yield from leaf_sources(source.zip_sources)
        else:
            yield source


def source_length(source: MapSource, leaf_length: LeafLength) -> tuple[int, str | None]:
    """``(length, problem)`` of one mapped argument; ``leaf_length`` sizes a plain source."""
    if not source.zip_sources:
        return leaf_length(source)
    lengths: list[int] = []
    for inner in source.zip_sources:
        length, problem = source_length(inner, leaf_length)
        if problem is not None:
            return 0, problem
        lengths.append(length)
    return (max(lengths) if source.zip_longest else min(lengths)), None


def drop_unused_source_fields(source: dict[str, Any]) -> None:
    """Leave map/zip fields out of a source's hashed form while unused, so a DAG
    without them keeps the version id it had before they existed."""
    for inner in source.get("zip_sources") or ():
        drop_unused_source_fields(inner)
    for name, unused in (("map_callables", []), ("zip_sources", []), ("zip_longest", False)):
        if name in source and source[name] == unused:
            del source[name]
