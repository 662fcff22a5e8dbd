"""The child's end of the broker (``isolation_broker``): proxies that stand in
for the run's XComs and the try's ports and forward each call to the worker.

Arguments go out in ``core.values``' JSON form; an error the worker met comes
back as an exception of the same built-in type, or a ``RemoteError`` that
carries its AWS error code, so ``aws.errors`` classifies it as in-process.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalicelib.core.hitl import HitlKey, HitlRequest, HitlResponse
from chalicelib.core.s3_keys import KeyPattern
from chalicelib.core.values import decode, encode
from chalicelib.runtime.xcom import encode_for_xcom


class RemoteError(RuntimeError):
    """An error the parent met serving a call; ``response`` carries its AWS code,
    so ``aws.errors.is_infrastructure_error`` sees throttling as it would in-process."""

    def __init__(self, kind: str, message: str, code: str | None):
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.response = {"Error": {"Code": code}} if code else None


_SAME_TYPE: dict[str, type[Exception]] = {
    e.__name__: e
    for e in (LookupError, KeyError, ValueError, TypeError, PermissionError, IndexError)
}


def remote_error(error: Mapping[str, Any]) -> Exception:
    kind = str(error.get("type") or "Error")
    message = str(error.get("message") or "")
    code = error.get("code")
    if not code and kind in _SAME_TYPE:
        return _SAME_TYPE[kind](message)
    return RemoteError(kind, message, str(code) if code else None)


class BrokerClient:
    """The child's end: ``call`` sends a request and waits for its reply (any thread)."""

    def __init__(self, send: Callable[[dict[str, Any]], None]):
        self._send = send
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._closed = False

    def call(self, service: str, method: str, payload: Any = None, **args: Any) -> Any:
        call_id = next(self._ids)
        frame = {"call": call_id, "service": service, "method": method, "args": encode(args)}
        if payload is not None:
            frame["payload"] = payload
        self._send(frame)
        with self._cond:
            while call_id not in self._replies:
                if self._closed:
                    raise RuntimeError("the worker stopped answering")
                self._cond.wait()
            reply = self._replies.pop(call_id)
        if "error" in reply:
            raise remote_error(reply["error"])
        return reply["raw"] if "raw" in reply else decode(reply.get("value"))

    def deliver(self, reply: dict[str, Any]) -> None:
        with self._cond:
            self._replies[reply.get("reply")] = reply  # type: ignore[index]
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class XComProxy:
    """The run's XComs, through the parent (the optional methods included)."""

    def __init__(self, broker: BrokerClient):
        self.broker = broker

    def push(self, task_id: str, map_index: int, key: str, value: Any) -> None:
        self.push_encoded(task_id, map_index, key, encode_for_xcom(value, task_id=task_id, key=key))

    def push_encoded(self, task_id: str, map_index: int, key: str, encoded: Any) -> None:
        args = {"task_id": task_id, "map_index": map_index, "key": key}
        self.broker.call("xcom", "push_encoded", payload=encoded, **args)

    def pull(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        found, encoded = self.pull_encoded(task_id, map_index, key)
        return found, decode(encoded) if found else None

    def pull_encoded(self, task_id: str, map_index: int, key: str) -> tuple[bool, Any]:
        args = {"task_id": task_id, "map_index": map_index, "key": key}
        found, encoded = self.broker.call("xcom", "pull_encoded", **args)
        return bool(found), encoded

    def pull_element(
        self, task_id: str, map_index: int, key: str, index: int
    ) -> tuple[bool, int, Any]:
        args = {"task_id": task_id, "map_index": map_index, "key": key, "index": index}
        found, length, value = self.broker.call("xcom", "pull_element", **args)
        return bool(found), int(length), value

    def pull_mapped(self, task_id: str, key: str) -> list[Any]:
        return list(self.broker.call("xcom", "pull_mapped", task_id=task_id, key=key))

    def clear(self, task_id: str, map_index: int) -> None:
        self.broker.call("xcom", "clear", task_id=task_id, map_index=map_index)


class DagStatesProxy:
    def __init__(self, broker: BrokerClient):
        self.broker = broker

    def dag_exists(self, dag_id: str) -> bool:
        return bool(self.broker.call("dag_states", "dag_exists", dag_id=dag_id))

    def run_state(self, dag_id: str, logical_date: dt.datetime) -> str | None:
        found = self.broker.call(
            "dag_states", "run_state", dag_id=dag_id, logical_date=logical_date
        )
        return None if found is None else str(found)

    def task_states(
        self, dag_id: str, logical_date: dt.datetime, task_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        found: dict[str, list[str]] = self.broker.call(
            "dag_states",
            "task_states",
            dag_id=dag_id,
            logical_date=logical_date,
            task_ids=list(task_ids),
        )
        return found


class DagTriggerProxy:
    def __init__(self, broker: BrokerClient):
        self.broker = broker

    def trigger(
        self, dag_id: str, *, run_id: str, logical_date: dt.datetime, conf: Mapping[str, Any]
    ) -> bool:
        args = {"dag_id": dag_id, "run_id": run_id, "logical_date": logical_date}
        return bool(self.broker.call("dag_trigger", "trigger", conf=dict(conf), **args))

    def reset(self, dag_id: str, run_id: str) -> None:
        self.broker.call("dag_trigger", "reset", dag_id=dag_id, run_id=run_id)

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        found = self.broker.call("dag_trigger", "run_state", dag_id=dag_id, run_id=run_id)
        return None if found is None else str(found)


class HitlProxy:
    can_wait = True

    def __init__(self, broker: BrokerClient):
        self.broker = broker

    def open(self, key: HitlKey, request: HitlRequest, now: dt.datetime) -> None:
        args = {"key": dataclasses.asdict(key), "request": dataclasses.asdict(request)}
        self.broker.call("hitl", "open", now=now, **args)

    def response(self, key: HitlKey, try_number: int) -> HitlResponse | None:
        found = self.broker.call(
            "hitl", "response", key=dataclasses.asdict(key), try_number=try_number
        )
        return None if found is None else HitlResponse(**found)

    def close(self, key: HitlKey, try_number: int, response: HitlResponse) -> HitlResponse:
        answer = self.broker.call(
            "hitl",
            "close",
            key=dataclasses.asdict(key),
            try_number=try_number,
            response=dataclasses.asdict(response),
        )
        return HitlResponse(**answer)


class WakeupsProxy:
    def __init__(self, broker: BrokerClient):
        self.broker = broker

    def wake_on_s3(self, patterns: Sequence[KeyPattern]) -> None:
        found = [dataclasses.asdict(p) for p in patterns]
        self.broker.call("wakeups", "wake_on_s3", patterns=found)
