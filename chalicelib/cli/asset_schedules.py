"""What ``dags next-runs`` and ``dags due`` say about a DAG scheduled on assets.

Such a DAG has no time-based runs: it runs when its condition holds over the
asset events queued for it. The commands read DAG files, not the deployed
stack, so the events queued are given with ``--queued URI`` (repeatable); the
answer names the assets with events queued and those still missing, using the
same pure decision the scheduler takes (``core.assets.is_met``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.core.assets import AssetError, describe, is_met, normalize_uri, waiting_for
from chalicelib.core.spec import DagSpec


def is_asset_scheduled(spec: DagSpec) -> bool:
    return spec.asset_condition is not None


def normalized(uris: Sequence[str]) -> set[str]:
    """``--queued`` values as the scheduler keys them; ``alias:<name>`` kept as is."""
    keys: set[str] = set()
    for uri in uris:
        if uri.startswith("alias:"):
            keys.add(uri)
            continue
        try:
            keys.add(normalize_uri(uri))
        except AssetError as exc:
            raise ValueError(f"--queued {uri!r}: {exc}") from None
    return keys


def asset_wait(spec: DagSpec, queued: set[str]) -> dict[str, Any]:
    """The condition, whether a run is due, and which assets have or lack events."""
    condition = spec.asset_condition
    assert condition is not None
    have, missing = waiting_for(condition, queued)
    return {
        "schedule": "asset",
        "condition": describe(condition),
        "due": is_met(condition, queued),
        "queued": have,
        "missing": missing,
    }


def asset_wait_text(spec: DagSpec, queued: set[str]) -> str:
    wait = asset_wait(spec, queued)
    lines = [f"{spec.dag_id} is scheduled on assets: it runs when {wait['condition']}."]
    if wait["due"]:
        lines.append("A run is due now (asset_triggered): the queued events meet the condition.")
    else:
        lines.append("Nothing is due: the queued events do not meet the condition yet.")
    lines.append("  events queued: " + (", ".join(wait["queued"]) or "none"))
    lines.append("  waiting for:   " + (", ".join(wait["missing"]) or "nothing"))
    return "\n".join(lines)
