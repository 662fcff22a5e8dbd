"""Seeded AWS faults for code running on in-process moto (``mock_aws``).

Two faults, the ones AWS really produces:

- ``refuse``: the request never reaches moto; the caller sees a throttling
  error (HTTP 400), which botocore retries. Nothing was applied.
- ``ambiguous``: moto applies the request, then the caller sees HTTP 500 as if
  the answer were lost on the way back. botocore retries the very same
  request, which now meets the state its own first attempt left behind.

moto answers ``mock_aws`` requests from a botocore ``before-send`` handler
(``BotocoreStubber``); ``FaultInjector`` wraps that handler, so the fault sits
exactly where the network would be, and botocore's own retry logic runs
unchanged (with its backoff set to zero, so tests never sleep). Which calls
fail is decided by ``Fault`` rules: the first N matching calls, or a seeded
rate. Everything is recorded in ``injected`` for assertions.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped]
from botocore.retries import standard  # type: ignore[import-untyped]
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

FaultKind = Literal["ambiguous", "refuse"]
Params = Mapping[str, Any]


@dataclass
class Fault:
    """Fail calls of ``service``/``operation`` (botocore names: "dynamodb",
    "UpdateItem") whose request parameters pass ``when``.

    ``times`` matching calls fail (the first ones); with ``rate`` set instead,
    each matching call fails with that probability, drawn from the injector's
    seeded generator, so a run is repeatable call for call. A rate never fails
    the retry of a request it has just failed (the next identical request goes
    through), so botocore's retries are never exhausted by chance alone.
    """

    operation: str
    kind: FaultKind = "ambiguous"
    service: str = "dynamodb"
    when: Callable[[Params], bool] | None = None
    times: int = 1
    rate: float | None = None
    fired: int = field(default=0, init=False)
    _failed: set[str] = field(default_factory=set, init=False, repr=False)

    def matches(self, service: str, operation: str, params: Params) -> bool:
        if (service, operation) != (self.service, self.operation):
            return False
        return self.when is None or bool(self.when(params))


@dataclass(frozen=True)
class Injected:
    """One fault that happened: what was called and what it was made to see."""

    kind: FaultKind
    service: str
    operation: str
    params: Params


class FaultInjector:
    """Install with ``with FaultInjector(rules, seed=...) as faults:`` inside
    ``mock_aws``; calls outside the block are untouched."""

    def __init__(self, faults: list[Fault] | Fault, *, seed: int = 0):
        self.faults = [faults] if isinstance(faults, Fault) else list(faults)
        self.injected: list[Injected] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._stack = contextlib.ExitStack()

    def count(self, kind: FaultKind | None = None, operation: str | None = None) -> int:
        return sum(
            1
            for i in self.injected
            if (kind is None or i.kind == kind) and (operation is None or i.operation == operation)
        )

    def _decide(self, service: str, operation: str, params: Params) -> FaultKind | None:
        with self._lock:
            for fault in self.faults:
                if not fault.matches(service, operation, params):
                    continue
                if fault.rate is not None:
                    body = json.dumps(params, sort_keys=True)
                    if body in fault._failed:
                        fault._failed.discard(body)  # the retry of one we failed: let it through
                        return None
                    hit = self._random.random() < fault.rate
                    if hit:
                        fault._failed.add(body)
                else:
                    hit = fault.fired < fault.times
                if hit:
                    fault.fired += 1
                    self.injected.append(Injected(fault.kind, service, operation, params))
                    return fault.kind
            return None

    def __enter__(self) -> FaultInjector:
        original = BotocoreStubber.__call__
        injector = self

        def faulty(
            stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any
        ) -> AWSResponse | None:
            if not stubber.enabled:
                return original(stubber, event_name, request, **kwargs)
            service, operation = _names(event_name)
            kind = injector._decide(service, operation, _params(request))
            if kind == "refuse":
                return _error(request, 400, "ThrottlingException", "Rate exceeded (injected)")
            answer = original(stubber, event_name, request, **kwargs)
            if kind == "ambiguous":
                return _error(request, 500, "InternalServerError", "answer lost (injected)")
            return answer

        self._stack.enter_context(_patched(BotocoreStubber, "__call__", faulty))
        # botocore's standard retry mode (pynamodb's) sleeps between attempts.
        self._stack.enter_context(
            _patched(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    saved = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def _names(event_name: str) -> tuple[str, str]:
    """("dynamodb", "UpdateItem") from "before-send.dynamodb.UpdateItem"."""
    parts = event_name.split(".")
    return (parts[1], parts[2]) if len(parts) >= 3 else ("", "")


def _params(request: Any) -> Params:
    """The request's JSON body (DynamoDB, SQS, Lambda speak JSON); {} otherwise."""
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _error(request: Any, status: int, code: str, message: str) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": code}
    return AWSResponse(request.url, status, headers, MockRawResponse(body.encode()))
