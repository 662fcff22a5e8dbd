"""A try, a DAG's callbacks or a deadline callback, run in a child interpreter.

The worker's side of ``isolation``: it extracts the pinned bundle into the
tenant's own folder (the parent never imports the DAG file: importing runs
user code), asks ``WorkerDeps.task_credentials`` for the tenant's
credentials, starts the child with the job and the try's services, and turns
whatever the child answered (checked JSON) or how it ended (cancelled, past
its deadline, killed, malformed) into the ``TryResult`` the in-process path
would have given.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from typing import Any

from chalicelib.aws.errors import is_infrastructure_error
from chalicelib.runtime.isolation import (
    ChildOutcome,
    child_env,
    failed_try,
    grace_seconds,
    run_child,
    tenant_bundles,
)
from chalicelib.runtime.isolation_broker import Services
from chalicelib.runtime.isolation_codec import ProtocolError, result_from_json
from chalicelib.runtime.outcome import TryRequest, TryResult, infrastructure_failure
from chalicelib.runtime.task_log import TaskLogSink
from chalicelib.runtime.timeout import timeout_message
from chalicelib.runtime.try_ports import TryPorts

log = logging.getLogger("slipstream.worker")


class BundleLoadFailed(Exception):
    """The child could not import the DAG file (its type and message, as text)."""


def _base_job(deps: Any, kind: str, bundle_key: str, spec: Any, run: Any) -> dict[str, Any]:
    """What every child needs: the tenant's bundle folder (extracted here) and the DAG."""
    from chalicelib.deploy.bundle import PLUGINS_FOLDER  # the worker's store loaded it already

    root = tenant_bundles(deps.bundles, run.tenant).load(bundle_key)
    return {
        "kind": kind,
        "root": str(root),
        "bundle_key": bundle_key,
        "fileloc": spec.fileloc,
        "plugins": PLUGINS_FOLDER,
        "dag_id": spec.dag_id,
        "spec": spec,
        "run": run,
        "now": deps.clock(),
    }


def _env(deps: Any, run: Any) -> dict[str, str]:
    return child_env(deps.task_credentials(run.tenant or "default"))


def run_isolated_try(
    deps: Any, request: TryRequest, bundle_key: str, sink: TaskLogSink | None, ports: TryPorts
) -> TryResult:
    """``request`` as the in-process path would run it, its DAG not imported (None)."""
    start = deps.clock()
    spec, run, retry_base = request.spec, request.run, request.retry_base

    def failed(error: str) -> TryResult:
        return failed_try(
            spec, run, request.task_id, request.try_number, retry_base, start, deps.clock(), error
        )

    try:
        job = _base_job(deps, "try", bundle_key, spec, run)
        env = _env(deps, run)
    except Exception as exc:  # S3 throttled, STS refused: not the task's fault
        if is_infrastructure_error(exc):
            return infrastructure_failure(request, start, deps.clock(), exc)
        return failed(f"{type(exc).__name__}: could not prepare the isolated try: {exc}")
    job["request"] = replace(request, cancel=None, triggering_asset_events=None)
    job.update(
        capture=sink is not None,
        asset_events=ports.load_asset_events is not None,
        wakeups=ports.wakeups is not None,
    )
    timeout = spec.task(request.task_id).execution_timeout
    deadline = None if timeout is None else timeout + grace_seconds()
    xcoms = deps.xcoms(run.dag_id, run.run_id)
    outcome = run_child(
        job, env, ports.services(xcoms), sink=sink, cancel=request.cancel, deadline=deadline
    )
    if outcome.unstarted is not None:
        unstarted = OSError(f"could not start the task's interpreter: {outcome.unstarted}")
        return infrastructure_failure(request, start, deps.clock(), unstarted)
    answer = outcome.answer or {}
    if "result" in answer:
        try:
            return result_from_json(
                answer["result"], retry_base=retry_base, infra_failures=request.infra_failures
            )
        except ProtocolError as exc:
            return failed(f"IsolationProtocolError: bad result from the task's interpreter: {exc}")
    if "load_error" in answer:
        return _load_error(answer["load_error"], request, start, deps, failed)
    if outcome.timed_out and timeout is not None:
        return failed(f"TaskTimeout: {timeout_message(timeout)} (its interpreter was stopped)")
    return failed(_why_no_result(outcome))


def _load_error(raw: Any, request: TryRequest, start: Any, deps: Any, failed: Any) -> TryResult:
    if not isinstance(raw, dict):
        return failed("IsolationProtocolError: the task's interpreter sent a bad load error")
    text = f"{str(raw.get('type'))[:100]}: could not load the DAG code: {raw.get('message')!s}"
    if raw.get("kind") == "infrastructure":
        return infrastructure_failure(request, start, deps.clock(), BundleLoadFailed(text))
    return failed(text)


def _why_no_result(outcome: ChildOutcome) -> str:
    if outcome.protocol is not None:
        return (
            "IsolationProtocolError: the task's interpreter broke the protocol and was "
            f"stopped: {outcome.protocol}"
        )
    if outcome.cancelled is not None:
        return f"TaskCancelled: Task stopped: {outcome.cancelled}"
    if outcome.answer and "crash" in outcome.answer:
        return f"IsolatedTaskCrashed: {str(outcome.answer['crash'])[:1900]}"
    return (
        "IsolatedTaskDied: the task's interpreter ended without a result "
        f"({outcome.died or 'no answer'})"
    )


def run_isolated_dag_callbacks(
    deps: Any, message: Any, spec: Any, run: Any, bundle_key: str
) -> int:
    """The DAG's on_success / on_failure callbacks, in a child; how many ran."""
    job = _base_job(deps, "dag_callbacks", bundle_key, spec, run)
    outcome = run_child(job, _env(deps, run), Services())
    ran = (outcome.answer or {}).get("ran")
    if not isinstance(ran, int):
        log.warning("%s: DAG callbacks did not finish: %s", message.label, _why_no_result(outcome))
        return 0
    return ran


def run_isolated_deadline(
    deps: Any,
    message: Any,
    spec: Any,
    run: Any,
    bundle_key: str,
    index: int,
    deadline_time: dt.datetime,
) -> bool:
    """A deadline callback in a child; the claim stays here, asked for by the
    child once it has loaded the DAG. True when this worker took the callback."""
    job = _base_job(deps, "deadline", bundle_key, spec, run)
    job.update(index=index, deadline_time=deadline_time)
    services = Services()
    claimed: list[bool] = []

    def claim(args: dict[str, Any], payload: Any) -> bool:
        if claimed:  # one claim per child
            return False
        claimed.append(bool(deps.store.deadlines.claim_callback(run.dag_id, run.run_id, index)))
        return claimed[0]

    services.add("deadline", "claim", claim)
    outcome = run_child(job, _env(deps, run), services)
    answer = outcome.answer or {}
    label = message.label
    if "ok" in answer:
        log.info("%s: deadline callback ran (%s)", label, "ok" if answer["ok"] else "failed")
    elif claimed and claimed[0]:
        log.warning("%s: deadline callback did not finish: %s", label, _why_no_result(outcome))
    return bool(claimed and claimed[0])
