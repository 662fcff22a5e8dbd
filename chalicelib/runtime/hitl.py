"""Where a human-in-the-loop task records its request and finds its answer,
without touching the store itself (the narrow port operators/hitl.py uses).

The worker sets a port backed by the hitl table for the try's tenant. Under
``dags test`` (and ``dag.test()``) there is nobody to ask: answers come from
a ``--hitl-responses`` file, else the task takes its ``defaults`` at once, else
it fails saying what to do (``LocalHitl``). A local run never waits for a person.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from chalicelib.core.errors import SlipstreamError
from chalicelib.core.hitl import HitlKey, HitlRequest, HitlResponse, check_response


class HitlResponsesFileError(SlipstreamError):
    """A --hitl-responses file that cannot be used (says which entry and why)."""


class HitlPort(Protocol):
    can_wait: bool
    """False where nobody can answer later (dags test): no answer now is final."""

    def open(self, key: HitlKey, request: HitlRequest, now: dt.datetime) -> None: ...

    def response(self, key: HitlKey, try_number: int) -> HitlResponse | None: ...

    def close(self, key: HitlKey, try_number: int, response: HitlResponse) -> HitlResponse:
        """Record the timeout's answer unless another landed first; the one that stands."""
        ...


class StoreHitl:
    """Backed by the hitl table (store/hitl.py) for one tenant: the worker's port.
    ``store`` may be a function building it, so a try that asks nobody costs nothing."""

    can_wait = True

    def __init__(self, store: Any, tenant: str | None):
        self._store = store
        self.tenant = tenant

    @property
    def store(self) -> Any:
        if callable(self._store) and not hasattr(self._store, "open"):
            self._store = self._store()
        return self._store

    def open(self, key: HitlKey, request: HitlRequest, now: dt.datetime) -> None:
        self.store.open(self.tenant, key, request, now)

    def response(self, key: HitlKey, try_number: int) -> HitlResponse | None:
        record = self.store.get(self.tenant, key)
        if record is None or record.request.try_number != try_number:
            return None
        return record.response

    def close(self, key: HitlKey, try_number: int, response: HitlResponse) -> HitlResponse:
        answer: HitlResponse = self.store.close(self.tenant, key, try_number, response)
        return answer


class LocalHitl:
    """``dags test``'s answers: ``{"task_id": {"chosen_options": [...], "params_input":
    {...}}}`` (``"task_id[2]"`` for one map index; a bare list is chosen_options)."""

    can_wait = False

    def __init__(self, answers: Mapping[str, Any] | None = None, source: str = "--hitl-responses"):
        self.answers = dict(answers or {})
        self.source = source
        self.requests: dict[HitlKey, HitlRequest] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> LocalHitl:
        where = str(path)
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise HitlResponsesFileError(f"{where}: cannot read: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise HitlResponsesFileError(f"{where}:{exc.lineno}: not JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise HitlResponsesFileError(f"{where}: expected an object of task id -> response")
        for task, answer in data.items():
            if isinstance(answer, list):
                continue
            if not isinstance(answer, dict) or not isinstance(answer.get("chosen_options"), list):
                raise HitlResponsesFileError(
                    f"{where}: {task!r}: expected a list of options or an object with "
                    "a chosen_options list"
                )
        return cls(data, source=where)

    def _answer(self, key: HitlKey) -> Any:
        if key.map_index >= 0 and f"{key.task_id}[{key.map_index}]" in self.answers:
            return self.answers[f"{key.task_id}[{key.map_index}]"]
        return self.answers.get(key.task_id)

    def open(self, key: HitlKey, request: HitlRequest, now: dt.datetime) -> None:
        self.requests[key] = request

    def response(self, key: HitlKey, try_number: int) -> HitlResponse | None:
        answer = self._answer(key)
        if answer is None:
            return None
        if isinstance(answer, list):
            answer = {"chosen_options": answer}
        request = self.requests[key]
        params = check_response(request, answer["chosen_options"], answer.get("params_input"))
        return HitlResponse(
            chosen_options=tuple(answer["chosen_options"]),
            params_input=params,
            responded_at=request.created_at or dt.datetime.now(dt.UTC),
            responded_by={"id": "dags-test", "name": self.source},
        )

    def close(self, key: HitlKey, try_number: int, response: HitlResponse) -> HitlResponse:
        return response


_PORT: contextvars.ContextVar[HitlPort | None] = contextvars.ContextVar(
    "slipstream_hitl", default=None
)
_LOCAL: list[HitlPort] = []  # dags test: the runner's pool threads see no context variable


def hitl_port() -> HitlPort:
    return _PORT.get() or (_LOCAL[-1] if _LOCAL else LocalHitl())


@contextlib.contextmanager
def answering_hitl(port: HitlPort) -> Iterator[None]:
    """The worker's port for one try (a context variable of its thread)."""
    token = _PORT.set(port)
    try:
        yield
    finally:
        _PORT.reset(token)


@contextlib.contextmanager
def local_hitl(port: HitlPort) -> Iterator[None]:
    """``dags test``'s port for every thread of the process, for the run's length."""
    _LOCAL.append(port)
    try:
        yield
    finally:
        _LOCAL.remove(port)
