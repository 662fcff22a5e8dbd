"""The services a child interpreter reaches through its worker, and their proxies.

Task code in a child holds only its tenant's credentials, so everything
Slipstream owns (the run's XComs, other runs' states, triggering a DAG, the
HITL table, sensor wake-ups, the run's triggering asset events, a deadline's
claim) stays in the parent. The child calls ``(service, method, args)``; the
parent answers only pairs of its allow-list (``Services``), on objects
already bound to the try's run and tenant. Arguments and answers are JSON in
``core.values``' form (datetimes, tuples); an XCom value travels in its stored
JSON form untouched (``payload``), so it is encoded once, by the child, as
in-process, and the parent never decodes anything it cannot check.

An error in the parent comes back as its type name, message and AWS error
code: the child raises an exception that ``aws.errors`` still classifies
(throttling stays an infrastructure failure), or the same built-in type.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.aws.errors import error_code
from chalicelib.core.hitl import HitlKey, HitlRequest, HitlResponse
from chalicelib.core.s3_keys import KeyPattern
from chalicelib.core.values import decode, encode
from chalicelib.runtime.isolation_codec import ProtocolError, write_json
from chalicelib.runtime.xcom import decode_item

Handler = Callable[[dict[str, Any], Any], Any]
MAX_ERROR_CHARS = 2000
_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})


@dataclasses.dataclass(frozen=True)
class Raw:
    """An answer sent as is (an XCom's stored JSON form), not through ``encode``."""

    value: Any


class Services:
    """The parent's allow-list: ``(service, method) -> handler(args, payload)``."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}

    def add(self, service: str, method: str, handler: Handler) -> None:
        self._handlers[(service, method)] = handler

    def answer(self, frame: Mapping[str, Any]) -> dict[str, Any]:
        """The reply frame to one call frame (never raises)."""
        call_id = frame.get("call")
        service, method = frame.get("service"), frame.get("method")
        handler = self._handlers.get((service, method))  # type: ignore[arg-type]
        if handler is None:
            return _error(call_id, "PermissionError", f"{service}.{method} is not served")
        args = frame.get("args")
        if not isinstance(args, dict):
            return _error(call_id, "TypeError", f"{service}.{method}: args must be an object")
        try:
            value = handler(decode(args), frame.get("payload"))
        except Exception as exc:
            return _error(call_id, type(exc).__name__, str(exc), error_code(exc))
        if isinstance(value, Raw):
            return {"reply": call_id, "raw": value.value}
        return {"reply": call_id, "value": encode(value)}


def _error(call_id: Any, kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {
        "reply": call_id,
        "error": {"type": kind, "message": message[:MAX_ERROR_CHARS], "code": code},
    }


def text(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str):
        raise TypeError(f"argument {name!r} must be a string")
    return value


def number(args: Mapping[str, Any], name: str) -> int:
    value = args.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"argument {name!r} must be an integer")
    return value


def moment(args: Mapping[str, Any], name: str) -> dt.datetime:
    value = args.get(name)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"argument {name!r} must be a datetime")
    return value


def texts(args: Mapping[str, Any], name: str) -> list[str]:
    value = args.get(name)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"argument {name!r} must be a list of strings")
    return list(value)


# ------------------------------------------------------------------ parent side


def add_xcom(services: Services, xcoms: Any) -> None:
    """The run's XComs (the store the in-process path hands ``execute_try``)."""

    def push(args: dict[str, Any], payload: Any) -> None:
        ids = text(args, "task_id"), number(args, "map_index"), text(args, "key")
        if hasattr(xcoms, "push_encoded"):
            xcoms.push_encoded(*ids, payload)
        else:
            xcoms.push(*ids, decode(payload))

    def pull(args: dict[str, Any], payload: Any) -> Raw:
        ids = text(args, "task_id"), number(args, "map_index"), text(args, "key")
        if hasattr(xcoms, "pull_encoded"):
            found, encoded = xcoms.pull_encoded(*ids)
        else:
            found, value = xcoms.pull(*ids)
            encoded = encode(value)
        return Raw([found, encoded if found else None])

    def element(args: dict[str, Any], payload: Any) -> Any:
        ids = text(args, "task_id"), number(args, "map_index"), text(args, "key")
        index = number(args, "index")
        if hasattr(xcoms, "pull_element"):
            return list(xcoms.pull_element(*ids, index))
        found, encoded = pull(args, payload).value
        return [False, 0, None] if not found else [True, *decode_item(encoded, index)]

    services.add("xcom", "push_encoded", push)
    services.add("xcom", "pull_encoded", pull)
    services.add("xcom", "pull_element", element)
    services.add(
        "xcom", "pull_mapped", lambda a, p: xcoms.pull_mapped(text(a, "task_id"), text(a, "key"))
    )
    if hasattr(xcoms, "clear"):
        services.add(
            "xcom", "clear", lambda a, p: xcoms.clear(text(a, "task_id"), number(a, "map_index"))
        )


def add_dag_states(services: Services, reader: Any) -> None:
    services.add("dag_states", "dag_exists", lambda a, p: reader.dag_exists(text(a, "dag_id")))
    services.add(
        "dag_states",
        "run_state",
        lambda a, p: reader.run_state(text(a, "dag_id"), moment(a, "logical_date")),
    )
    services.add(
        "dag_states",
        "task_states",
        lambda a, p: reader.task_states(
            text(a, "dag_id"), moment(a, "logical_date"), texts(a, "task_ids")
        ),
    )


def add_dag_trigger(services: Services, trigger: Any) -> None:
    def start(args: dict[str, Any], payload: Any) -> bool:
        conf = args.get("conf")
        if not isinstance(conf, dict):
            raise TypeError("argument 'conf' must be an object")
        return bool(
            trigger.trigger(
                text(args, "dag_id"),
                run_id=text(args, "run_id"),
                logical_date=moment(args, "logical_date"),
                conf=conf,
            )
        )

    services.add("dag_trigger", "trigger", start)
    services.add(
        "dag_trigger", "reset", lambda a, p: trigger.reset(text(a, "dag_id"), text(a, "run_id"))
    )
    services.add(
        "dag_trigger",
        "run_state",
        lambda a, p: trigger.run_state(text(a, "dag_id"), text(a, "run_id")),
    )


def add_hitl(services: Services, port: Any) -> None:
    def key(args: dict[str, Any]) -> HitlKey:
        return HitlKey(**_fields(args.get("key"), "key"))

    def response(args: dict[str, Any], payload: Any) -> dict[str, Any] | None:
        found = port.response(key(args), number(args, "try_number"))
        return None if found is None else dataclasses.asdict(found)

    def close(args: dict[str, Any], payload: Any) -> dict[str, Any]:
        answer = HitlResponse(**_fields(args.get("response"), "response"))
        return dataclasses.asdict(port.close(key(args), number(args, "try_number"), answer))

    services.add(
        "hitl",
        "open",
        lambda a, p: port.open(
            key(a), HitlRequest(**_fields(a.get("request"), "request")), moment(a, "now")
        ),
    )
    services.add("hitl", "response", response)
    services.add("hitl", "close", close)


def _fields(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"argument {name!r} must be an object")
    return value


def add_wakeups(services: Services, registry: Any) -> None:
    def wake(args: dict[str, Any], payload: Any) -> None:
        raw = args.get("patterns")
        if not isinstance(raw, list):
            raise TypeError("argument 'patterns' must be a list")
        registry.wake_on_s3([KeyPattern(**_fields(p, "pattern")) for p in raw])

    services.add("wakeups", "wake_on_s3", wake)


def add_asset_events(services: Services, loader: Callable[[], Mapping[str, list[Any]]]) -> None:
    """The run's triggering asset events, as the attributes task code reads."""

    def load(args: dict[str, Any], payload: Any) -> dict[str, list[dict[str, Any]]]:
        events = loader()
        return {
            uri: [
                {
                    "id": e.id,
                    "extra": e.extra,
                    "timestamp": e.timestamp,
                    "source_dag_id": e.source_dag_id,
                    "source_run_id": e.source_run_id,
                    "source_task_id": e.source_task_id,
                    "source_map_index": e.source_map_index,
                    "uri": e.asset.uri,
                }
                for e in views
            ]
            for uri, views in events.items()
        }

    services.add("assets", "triggering_events", load)


def handle_frame(
    frame: dict[str, Any], outbound: Any, services: Services, sink: Any
) -> dict[str, Any] | None:
    """Serve one frame of the child's (a call, a log line for the try's sink, its
    answer); the child's final answer when it is one."""
    if "call" in frame:
        with contextlib.suppress(OSError):
            write_json(outbound, services.answer(frame))
        return None
    if "log" in frame:
        line = frame["log"]
        if not isinstance(line, dict):
            raise ProtocolError("a log frame must hold an object")
        event, level, logger, when = (line.get(k) for k in ("event", "level", "logger", "when"))
        if not (isinstance(event, str) and isinstance(logger, str) and level in _LEVELS):
            raise ProtocolError("a log line needs a text event, a logger and a known level")
        if not isinstance(when, (int, float)) or isinstance(when, bool):
            raise ProtocolError("a log line's 'when' must be a number")
        if sink is not None:
            sink.emit(event, level=str(level), logger=logger[:200], when=float(when))
        return None
    if "done" in frame:
        answer = frame["done"]
        if not isinstance(answer, dict):
            raise ProtocolError("the child's answer must be an object")
        return answer
    raise ProtocolError(f"unknown frame with keys {sorted(frame)[:5]}")
