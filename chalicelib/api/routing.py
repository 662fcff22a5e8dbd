"""One decorator for every route: authenticate, check the role, validate the
path, query and body with pydantic, run the handler, and answer JSON.

Every failure becomes Airflow's ``{"detail": ...}`` with a 4xx status; an
unexpected exception is logged and answers 500 without a traceback. Each
route also records itself in ``OPERATIONS``, from which ``openapi`` builds
the OpenAPI document: the models that validate are the models documented.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union
from urllib.parse import unquote

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from chalicelib.api import API_PREFIX, deps
from chalicelib.api.auth import Principal, Role, authenticate, iam_settings, require
from chalicelib.api.errors import ApiError, BadRequest, Unprocessable, validation_detail
from chalicelib.core.errors import SlipstreamError

log = logging.getLogger("slipstream.api")

JSON_CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",  # curl -d without -H: still parsed as JSON
    "text/plain",
]
MAX_DEPTH = 64
"""How deeply a request body may nest (a DAG run's conf, a variable's value)."""


@dataclass(frozen=True)
class Operation:
    """One documented route (for the OpenAPI document)."""

    path: str
    method: str
    operation_id: str
    summary: str
    tag: str
    role: Role | None
    status: int
    query: type[BaseModel] | None
    body: type[BaseModel] | None
    response: type[BaseModel] | None


OPERATIONS: list[Operation] = []


@dataclass
class Call:
    """What a handler gets: the caller, the path parameters and the validated input."""

    principal: Principal | None
    path: dict[str, str]
    query: Any = None
    body: Any = None
    raw_body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def who(self) -> Principal:
        assert self.principal is not None, "route declared without a role"
        return self.principal


def route(
    blueprint: Blueprint,
    path: str,
    method: str,
    *,
    role: Role | None,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    tag: str = "",
) -> Callable[[Callable[[Call], Any]], Callable[..., Response]]:
    full_path = API_PREFIX + path

    def decorator(handler: Callable[[Call], Any]) -> Callable[..., Response]:
        OPERATIONS.append(
            Operation(
                path=full_path,
                method=method.lower(),
                operation_id=handler.__name__,
                summary=(handler.__doc__ or handler.__name__).strip().splitlines()[0],
                tag=tag,
                role=role,
                status=status,
                query=query,
                body=body,
                response=response,
            )
        )

        @functools.wraps(handler)
        def view(**params: str) -> Response:
            request = blueprint.current_request
            try:
                call = _call(request, params, role, query, body)
                answer = _respond(handler(call), status)
                if method.upper() == "GET":
                    return conditional(answer, call.headers)
                return answer
            except ApiError as exc:
                return error_response(exc.status, exc.detail)
            except SlipstreamError as exc:  # a domain error the handler did not map: bad input
                return error_response(400, str(exc))
            except Exception:
                log.exception("%s %s failed", method, full_path)
                return error_response(500, "Internal error; the API's log has the details")

        view.__name__ = f"{handler.__name__}_{method.lower()}"
        options: dict[str, Any] = {"methods": [method], "content_types": JSON_CONTENT_TYPES}
        if role is not None and iam_settings().api_auth == "iam":
            from chalice import IAMAuthorizer

            # API Gateway checks the SigV4 signature; the view maps the caller.
            options["authorizer"] = IAMAuthorizer()
        blueprint.route(full_path, **options)(view)
        return view

    return decorator


def etag_of(body: str | bytes) -> str:
    """A strong validator from the body's bytes: the same answer always has the
    same tag, whichever Lambda container computed it, so no state is kept."""
    data = body.encode() if isinstance(body, str) else body
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (a list, ``*``, or weak ``W/`` tags)."""
    if not header:
        return False
    tags = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in tags or etag in tags


def conditional(answer: Response, headers: dict[str, str]) -> Response:
    """A 200 GET answer with its ETag, or 304 with no body when the caller has it.

    Pollers (the UI refreshes open views every few seconds) then cost the
    caller no transfer and no parsing when nothing changed. The handler still
    runs: the tag is the answer's content, not a version kept somewhere."""
    if answer.status_code != 200 or answer.body is None:
        return answer
    etag = etag_of(answer.body)
    answer.headers["ETag"] = etag
    answer.headers["Cache-Control"] = "no-cache"
    sent = {k.lower(): v for k, v in headers.items()}.get("if-none-match")
    if etag_matches(sent, etag):
        return Response(
            body="", status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"}
        )
    return answer


def error_response(status: int, detail: Any) -> Response:
    return Response(
        body=json.dumps({"detail": detail}, default=str),
        status_code=status,
        headers={"Content-Type": "application/json"},
    )


def _respond(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if status == 204 or result is None:
        return Response(body="", status_code=204, headers={})
    if isinstance(result, BaseModel):
        text = result.model_dump_json(by_alias=True)
    else:
        text = json.dumps(result, default=str)
    return Response(body=text, status_code=status, headers={"Content-Type": "application/json"})


def _call(
    request: Any,
    params: dict[str, str],
    role: Role | None,
    query: type[BaseModel] | None,
    body: type[BaseModel] | None,
) -> Call:
    headers = dict(request.headers or {})
    principal = None
    if role is not None:
        principal = authenticate(
            headers, deps.api_keys(), deps.now(), context=request.context, iam=iam_settings()
        )
        require(principal, role)
    call = Call(
        principal=principal,
        path={name: unquote(value) for name, value in params.items()},
        raw_body=request.raw_body,
        headers=headers,
    )
    if query is not None:
        call.query = _validated(query, _query_values(query, request.query_params), "query")
    if body is not None:
        call.body = _validated(body, _json_body(request.raw_body), "body")
    return call


def _validated(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(validation_detail(exc.errors(include_url=False), where)) from None


def _json_body(raw: bytes | None) -> Any:
    if not raw:
        raise Unprocessable(
            [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
        )
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest(f"The request body nests deeper than {MAX_DEPTH} levels") from None
    if _depth(data) > MAX_DEPTH:
        raise BadRequest(f"The request body nests deeper than {MAX_DEPTH} levels")
    try:
        # A lone surrogate (JSON "\ud800") parses but is no text: it could be
        # stored, and then no answer that contains it could be written.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("The request body contains a lone UTF-16 surrogate") from None
    return data


def _no_constant(name: str) -> Any:
    """NaN and Infinity are Python's extension, not JSON: no other client could
    read them back from a run's conf or a variable."""
    raise ValueError(f"{name} is not a JSON value")


def _depth(data: Any) -> int:
    """How deeply a body nests, counted without recursion: what is stored must
    be read back, serialized and validated by code that does recurse."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        if isinstance(node, dict):
            stack.extend((value, level + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, level + 1) for value in node)
    return deepest


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return origin is list


def _query_values(model: type[BaseModel], params: Any) -> dict[str, Any]:
    """Query parameters by field (or alias); repeated ones become lists where the
    model wants a list (``?tags=a&tags=b``), as FastAPI reads them."""
    if not params:
        return {}
    values: dict[str, Any] = {}
    known = {}
    for name, info in model.model_fields.items():
        known[info.alias or name] = info
    for key in params:
        info = known.get(key)
        if info is not None and _is_list(info.annotation):
            values[key] = params.getlist(key)
        else:
            values[key] = params.get(key)
    return values
