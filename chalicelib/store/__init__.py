"""State of DAGs, versions, runs and task instances behind one interface.

``StateStore`` is the port; ``InMemoryStateStore`` and ``DynamoStateStore``
are its adapters. Everything here imports core; core never imports this.
"""

from chalicelib.store.base import (
    ActiveRun,
    DagRecord,
    DagVersionRecord,
    StateStore,
    TransitionResult,
)
from chalicelib.store.memory import InMemoryStateStore
from chalicelib.store.settings import StoreSettings

__all__ = [
    "ActiveRun",
    "DagRecord",
    "DagVersionRecord",
    "InMemoryStateStore",
    "StateStore",
    "StoreSettings",
    "TransitionResult",
]
