"""EmptyOperator: a task that does nothing, for joins and structure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.sdk.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """Does nothing and succeeds; its trigger rule still applies (use it as a join)."""

    def execute(self, context: Mapping[str, Any]) -> None:
        return None
