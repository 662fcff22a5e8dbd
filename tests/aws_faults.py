"""AWS faults on demand, for tests (and a later chaos suite): refused calls
(throttling, 500), calls applied and then answered 500 as if the reply were
lost, and calls that fail to connect.

It sits at botocore's lowest level, ``Endpoint._do_get_response``, below the
retry handler: every HTTP attempt draws on its own, botocore's retries see the
fault as they would see AWS's, and it works the same in front of in-process
``mock_aws`` and of a ``ThreadedMotoServer``. Rules are counted and random
draws seeded, so a test gets the same faults on every run. Backoff sleeps are
skipped (recorded in ``slept``) unless ``skip_backoff=False``.

    with AwsFaults(seed=1) as faults:
        faults.refuse("sqs", "DeleteMessageBatch", times=5)
        faults.refuse("dynamodb", rate=0.1, code="ProvisionedThroughputExceededException")
        faults.ambiguous("dynamodb", "UpdateItem", times=1)
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore import endpoint as botocore_endpoint
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

REFUSE = "refuse"  # answered with an error before the service saw it
AMBIGUOUS = "ambiguous"  # applied by the service, then answered with an error
CONNECT = "connect"  # the connection failed: botocore raises, nothing applied

THROTTLED = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "s3": "SlowDown",
}


@dataclass
class Rule:
    service: str | None
    operation: str | None
    kind: str
    code: str | None
    status: int
    times: int | None
    rate: float | None
    when: Callable[[Any], bool] | None
    spare_retries: bool = False
    hits: int = 0
    failed_bodies: set[bytes] = field(default_factory=set)

    def matches(self, service: str, operation: str, request: Any) -> bool:
        if self.service is not None and self.service != service:
            return False
        if self.operation is not None and self.operation != operation:
            return False
        return self.when is None or bool(self.when(request))


@dataclass(frozen=True)
class Injected:
    service: str
    operation: str
    kind: str
    code: str


@dataclass
class AwsFaults:
    seed: int = 0
    skip_backoff: bool = True
    rules: list[Rule] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._patches: list[Any] = []

    # ------------------------------------------------------------- rules

    def refuse(
        self,
        service: str | None = None,
        operation: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        times: int | None = None,
        rate: float | None = None,
        when: Callable[[Any], bool] | None = None,
        spare_retries: bool = False,
    ) -> Rule:
        """Answer matching calls with ``code`` (throttling by default) unapplied.
        ``times`` bounds how many; ``rate`` draws each call with that chance.
        ``when`` sees the botocore request (``request_params`` reads its JSON).
        With ``spare_retries`` a rate never fails the retry of a request it has
        just failed, so botocore's retries are not exhausted by chance alone."""
        return self._add(service, operation, REFUSE, code, status, times, rate, when, spare_retries)

    def server_error(
        self,
        service: str | None = None,
        operation: str | None = None,
        *,
        times: int | None = None,
        rate: float | None = None,
        when: Callable[[Any], bool] | None = None,
    ) -> Rule:
        return self._add(service, operation, REFUSE, "InternalServerError", 500, times, rate, when)

    def ambiguous(
        self,
        service: str | None = None,
        operation: str | None = None,
        *,
        times: int | None = None,
        rate: float | None = None,
        when: Callable[[Any], bool] | None = None,
        spare_retries: bool = False,
    ) -> Rule:
        """Let the service apply matching calls, then answer 500 (the reply was
        lost). ``when`` and ``spare_retries`` as for ``refuse``."""
        return self._add(
            service,
            operation,
            AMBIGUOUS,
            "InternalServerError",
            500,
            times,
            rate,
            when,
            spare_retries,
        )

    def disconnect(
        self,
        service: str | None = None,
        operation: str | None = None,
        *,
        times: int | None = None,
        rate: float | None = None,
    ) -> Rule:
        return self._add(service, operation, CONNECT, None, 0, times, rate, None)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def count(self, service: str, operation: str | None = None) -> int:
        """Attempts (each retry counts) of matching calls seen so far."""
        return sum(1 for s, o in self.calls if s == service and operation in (None, o))

    def fired(self, kind: str | None = None, operation: str | None = None) -> int:
        """Faults injected so far, of one kind and operation if given."""
        return sum(
            1 for i in self.injected if kind in (None, i.kind) and operation in (None, i.operation)
        )

    def _add(
        self,
        service: str | None,
        operation: str | None,
        kind: str,
        code: str | None,
        status: int | None,
        times: int | None,
        rate: float | None,
        when: Callable[[Any], bool] | None,
        spare_retries: bool = False,
    ) -> Rule:
        if code is None and kind != CONNECT:
            code = THROTTLED.get(service or "", "ThrottlingException")
        if status is None:
            status = 503 if code == "SlowDown" else 400
        rule = Rule(service, operation, kind, code, status, times, rate, when, spare_retries)
        with self._lock:
            self.rules.append(rule)
        return rule

    def _draw(self, service: str, operation: str, request: Any) -> Rule | None:
        with self._lock:
            self.calls.append((service, operation))
            for rule in self.rules:
                if not rule.matches(service, operation, request):
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                body = _body_bytes(request) if rule.spare_retries else b""
                if rule.spare_retries and body in rule.failed_bodies:
                    rule.failed_bodies.discard(body)  # the retry of one it failed: let it by
                    return None
                if rule.rate is not None and self._random.random() >= rule.rate:
                    continue
                if rule.spare_retries:
                    rule.failed_bodies.add(body)
                rule.hits += 1
                self.injected.append(Injected(service, operation, rule.kind, rule.code or ""))
                return rule
        return None

    # ---------------------------------------------------------- patching

    def __enter__(self) -> AwsFaults:
        original = botocore_endpoint.Endpoint._do_get_response
        faults = self

        def do_get_response(endpoint: Any, request: Any, operation_model: Any, context: Any) -> Any:
            service = operation_model.service_model.service_name
            rule = faults._draw(service, operation_model.name, request)
            if rule is None:
                return original(endpoint, request, operation_model, context)
            if rule.kind == CONNECT:
                return None, EndpointConnectionError(endpoint_url=request.url)
            if rule.kind == AMBIGUOUS:
                answer = original(endpoint, request, operation_model, context)
                if answer[1] is not None or answer[0][0].status_code >= 300:
                    return answer  # it failed by itself: nothing was applied to hide
            return _error_answer(endpoint, request, operation_model, rule)

        self._patches = [
            mock.patch.object(botocore_endpoint.Endpoint, "_do_get_response", do_get_response)
        ]
        if self.skip_backoff:
            self._patches.append(mock.patch.object(botocore_endpoint, "time", _Clock(self)))
        for patch in self._patches:
            patch.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for patch in reversed(self._patches):
            patch.stop()
        self._patches = []


def _body_bytes(request: Any) -> bytes:
    body = getattr(request, "body", None) or b""
    if isinstance(body, str):
        return body.encode()
    return body if isinstance(body, bytes) else b""


def request_params(request: Any) -> dict[str, Any]:
    """A JSON-protocol request's parameters (DynamoDB, SQS, Lambda); {} otherwise."""
    try:
        parsed = json.loads(_body_bytes(request) or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


class _Clock:
    """botocore.endpoint's ``time`` with its backoff sleeps recorded, not slept."""

    def __init__(self, faults: AwsFaults):
        import time

        self._time = time
        self._faults = faults

    def sleep(self, seconds: float) -> None:
        self._faults.slept.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._time, name)


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def _error_answer(endpoint: Any, request: Any, operation_model: Any, rule: Rule) -> Any:
    """What botocore makes of an error reply from the service: parsed as the real one."""
    from botocore.endpoint import convert_to_response_dict

    protocol = operation_model.service_model.resolved_protocol
    message = f"injected fault: {rule.code}"
    headers = {"x-amzn-RequestId": "injected-fault"}
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": rule.code, "message": message}).encode()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-query-error"] = f"{rule.code};Sender"  # SQS's query-compatible code
    else:  # query, rest-xml
        body = (
            f"<ErrorResponse><Error><Code>{rule.code}</Code><Message>{message}</Message>"
            "</Error><RequestId>injected-fault</RequestId></ErrorResponse>"
        ).encode()
        if protocol == "rest-xml":
            body = (
                f"<Error><Code>{rule.code}</Code><Message>{message}</Message>"
                "<RequestId>injected-fault</RequestId></Error>"
            ).encode()
        headers["Content-Type"] = "text/xml"
    http_response = AWSResponse(request.url, rule.status, headers, _Body(body))
    response_dict = convert_to_response_dict(http_response, operation_model)
    parser = endpoint._response_parser_factory.create_parser(protocol)
    parsed = parser.parse(response_dict, operation_model.output_shape)
    endpoint._add_modeled_error_fields(response_dict, parsed, operation_model, parser)
    return (http_response, parsed), None


@contextmanager
def aws_faults(seed: int = 0, *, skip_backoff: bool = True) -> Iterator[AwsFaults]:
    with AwsFaults(seed=seed, skip_backoff=skip_backoff) as faults:
        yield faults
