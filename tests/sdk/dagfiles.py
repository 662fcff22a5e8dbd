"""Writing small DAG files for tests, and finding the line of a marked statement."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_dag(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, marker: str) -> int:
    """1-based line of the only line containing ``marker`` (a trailing ``# name`` comment)."""
    lines = [
        number
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if marker in text
    ]
    assert len(lines) == 1, f"marker {marker!r} found on lines {lines}"
    return lines[0]
