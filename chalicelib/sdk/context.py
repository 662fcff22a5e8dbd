"""The running task's context, reachable from anywhere in its call stack."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib.core.errors import SlipstreamError

Context = Mapping[str, Any]

_CURRENT: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "slipstream_task_context", default=None
)


def get_current_context() -> Context:
    """Airflow's get_current_context: the context of the task running now."""
    ctx = _CURRENT.get()
    if ctx is None:
        raise SlipstreamError(
            "get_current_context() was called outside a running task; "
            "call it inside a task's callable"
        )
    return ctx


@contextlib.contextmanager
def current_context(ctx: Context) -> Iterator[Context]:
    """Set by the runtime around one try; nested tries restore the outer one."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)
