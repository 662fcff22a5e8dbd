"""The wire between a worker and the child interpreter that runs a try's user code.

Frames are a 4-byte big-endian length and a body. Parent to child, the first
frame is the job, pickled (the parent is trusted; the child must be able to
rebuild the spec and the run). Every other frame, and every frame the child
sends, is JSON: unpickling bytes the child wrote would run the child's code
in the parent, with the worker's credentials. What the child sends back is
checked field by field here (``result_from_json``); anything malformed is a
``ProtocolError``, which the parent turns into a failed try.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO

from chalicelib.core.assets import AssetRef
from chalicelib.core.states import TaskState
from chalicelib.runtime.outcome import TryResult
from chalicelib.runtime.outlets import OutletEvent

MAX_FRAME_BYTES = 64 * 1024 * 1024  # a result or an XCom push; more is refused, not buffered
_LENGTH = struct.Struct(">I")
# What a child may report; RUNNING, QUEUED and the rest are the engine's to set.
RESULT_STATES = frozenset(
    {
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.UP_FOR_RETRY,
        TaskState.UP_FOR_RESCHEDULE,
        TaskState.SKIPPED,
    }
)


class ProtocolError(ValueError):
    """The child sent something that is not a well-formed frame or result."""


def write_bytes(stream: BinaryIO, body: bytes) -> None:
    stream.write(_LENGTH.pack(len(body)) + body)
    stream.flush()


def read_bytes(stream: BinaryIO, limit: int = MAX_FRAME_BYTES) -> bytes | None:
    """One frame's body; None at a clean end of stream (no partial header)."""
    head = _read_exactly(stream, _LENGTH.size)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > limit:
        raise ProtocolError(f"a frame of {size} bytes is larger than the {limit}-byte limit")
    body = _read_exactly(stream, size)
    if body is None:
        raise ProtocolError("the stream ended inside a frame")
    return body


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            if left == size:
                return None
            raise ProtocolError("the stream ended inside a frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_json(stream: BinaryIO, value: Any) -> None:
    write_bytes(stream, json.dumps(value, separators=(",", ":")).encode("utf-8"))


def decode_frame(body: bytes) -> dict[str, Any]:
    """A JSON object, or ProtocolError (a pickle, garbage, a bare list)."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"a frame is not JSON ({type(exc).__name__}: {exc})") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"a frame is a JSON {type(value).__name__}, not an object")
    return value


# ------------------------------------------------------------------ values


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_datetime(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ProtocolError(f"{field} must be an ISO datetime string, got {type(value).__name__}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ProtocolError(f"{field} is not an ISO datetime: {value[:60]!r}") from None
    if parsed.tzinfo is None:
        raise ProtocolError(f"{field} has no time zone: {value[:60]!r}")
    return parsed


def _optional(data: Mapping[str, Any], name: str, kinds: tuple[type, ...]) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds:
        raise ProtocolError(f"result field {name!r} must be {_names(kinds)}, got bool")
    if not isinstance(value, kinds):
        raise ProtocolError(
            f"result field {name!r} must be {_names(kinds)}, got {type(value).__name__}"
        )
    return value


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)


def _optional_datetime(data: Mapping[str, Any], name: str) -> dt.datetime | None:
    value = data.get(name)
    return None if value is None else parse_datetime(value, f"result field {name!r}")


# ------------------------------------------------------------------ results


def result_to_json(result: TryResult) -> dict[str, Any]:
    """The child's side: everything the parent records, as plain JSON."""
    return {
        "state": result.state.value,
        "start_date": iso(result.start_date),
        "end_date": iso(result.end_date),
        "next_try_at": iso(result.next_try_at),
        "retry_delay_seconds": result.retry_delay_seconds,
        "error": result.error,
        "traceback": result.traceback,
        "result_length": result.result_length,
        "rendered_map_index": result.rendered_map_index,
        "rendered_fields": result.rendered_fields,
        "skip_downstream": None if result.skip_downstream is None else list(result.skip_downstream),
        "infrastructure": result.infrastructure,
        "retry_base": result.retry_base,
        "infra_failures": result.infra_failures,
        "asset_events": [
            {"asset": e.asset.model_dump(mode="json"), "extra": e.extra, "alias": e.alias}
            for e in result.asset_events
        ],
        "first_poke_at": iso(result.first_poke_at),
    }


def result_from_json(data: Any, *, retry_base: int = 0, infra_failures: int = 0) -> TryResult:
    """The parent's side: a TryResult, or ProtocolError naming the bad field.

    ``retry_base`` / ``infra_failures`` are the claim's: a child may move each
    up by one (an infrastructure failure not charged to the task), no more,
    so it cannot buy itself unlimited retries.
    """
    if not isinstance(data, dict):
        raise ProtocolError(f"a result must be a JSON object, got {type(data).__name__}")
    try:
        state = TaskState(str(data.get("state")))
    except ValueError:
        raise ProtocolError(f"result state {data.get('state')!r} is not a task state") from None
    if state not in RESULT_STATES:
        raise ProtocolError(f"a try cannot end in state {state.value!r}")
    new_base = _optional(data, "retry_base", (int,))
    if new_base is not None and new_base not in (retry_base, retry_base + 1):
        raise ProtocolError(f"result retry_base {new_base} is not {retry_base} or one more")
    new_infra = _optional(data, "infra_failures", (int,))
    if new_infra is not None and new_infra not in (infra_failures, infra_failures + 1):
        raise ProtocolError(
            f"result infra_failures {new_infra} is not {infra_failures} or one more"
        )
    skip = data.get("skip_downstream")
    if skip is not None and (
        not isinstance(skip, list) or not all(isinstance(s, str) for s in skip)
    ):
        raise ProtocolError("result field 'skip_downstream' must be a list of task ids")
    delay = _optional(data, "retry_delay_seconds", (int, float))
    infrastructure = data.get("infrastructure", False)
    if not isinstance(infrastructure, bool):
        raise ProtocolError("result field 'infrastructure' must be true or false")
    return TryResult(
        state=state,
        start_date=parse_datetime(data.get("start_date"), "result field 'start_date'"),
        end_date=parse_datetime(data.get("end_date"), "result field 'end_date'"),
        next_try_at=_optional_datetime(data, "next_try_at"),
        retry_delay_seconds=None if delay is None else float(delay),
        error=_optional(data, "error", (str,)),
        traceback=_optional(data, "traceback", (str,)),
        result_length=_optional(data, "result_length", (int,)),
        rendered_map_index=_optional(data, "rendered_map_index", (str,)),
        rendered_fields=_optional(data, "rendered_fields", (str,)),
        skip_downstream=None if skip is None else tuple(skip),
        infrastructure=infrastructure,
        retry_base=new_base,
        infra_failures=new_infra,
        asset_events=_asset_events(data.get("asset_events") or []),
        first_poke_at=_optional_datetime(data, "first_poke_at"),
    )


def _asset_events(raw: Any) -> tuple[OutletEvent, ...]:
    if not isinstance(raw, list):
        raise ProtocolError("result field 'asset_events' must be a list")
    events: list[OutletEvent] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("extra", {}), dict):
            raise ProtocolError(f"asset event {i} must be an object with an 'extra' object")
        alias = item.get("alias")
        if alias is not None and not isinstance(alias, str):
            raise ProtocolError(f"asset event {i}: 'alias' must be a string")
        try:
            asset = AssetRef.model_validate(item.get("asset"))
        except ValueError as exc:
            raise ProtocolError(f"asset event {i}: not an asset: {exc}") from None
        events.append(OutletEvent(asset=asset, extra=dict(item.get("extra") or {}), alias=alias))
    return tuple(events)
