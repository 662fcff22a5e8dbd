"""The serverless stack on a laptop: moto in place of AWS, threads in place of
Lambda's event plumbing, warm processes in place of worker Lambdas.

What runs is the production code: the same handlers read the same SQS queue
(moto's), write the same DynamoDB tables, load the same code bundles from S3,
and workers run the same ``handle_worker_message``. Only the plumbing that AWS
provides is played here: polling the queue into the scheduler handler (as an
SQS event source mapping with ReportBatchItemFailures would), firing the tick,
and a pool of warm worker processes for the Lambda executor. EventBridge is
wired as infra/stack.yaml wires it (``event_sources``): S3 uploads to the
buckets DAGs watch and events on the Slipstream bus reach the queue by
themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from chalicelib.core.runs import DagRun
from chalicelib.core.states import TaskState
from chalicelib.executors.local_executor import LocalExecutor, WorkerStatus
from chalicelib.local.resources import create_resources, create_scheduler_queue, sqs_record

__all__ = [
    "LOCAL_ENV",
    "LocalStack",
    "create_resources",
    "create_scheduler_queue",
    "sqs_record",
]

T = TypeVar("T")

log = logging.getLogger("slipstream.local")

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "SLIPSTREAM_REGION": "us-east-1",
    "SLIPSTREAM_STAGE": "local",
    "SLIPSTREAM_BUCKET": "slipstream-local-state",
    "SLIPSTREAM_QUEUE_NAME": "slipstream-local-scheduler",
    "SLIPSTREAM_EVENT_BUS": "slipstream-local",
    "SLIPSTREAM_PARTIAL_BATCH_RESPONSE": "true",
    "SLIPSTREAM_HEARTBEAT_SECONDS": "10",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "SlipstreamLocal",
    "POWERTOOLS_METRICS_DISABLED": "true",  # no EMF lines on the terminal
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@dataclass
class HandOff:
    """Worker start and end times, to measure upstream end -> downstream start."""

    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)


class LocalStack:
    def __init__(
        self,
        *,
        workers: int = 2,
        tick_seconds: float = 5.0,
        on_status: Callable[[WorkerStatus], None] | None = None,
        heartbeat_timeout: dt.timedelta | None = None,
        endpoint_via: Callable[[str], str] | None = None,
        stall_timeout: dt.timedelta | None = None,
        queued_timeout: dt.timedelta | None = None,
        state_dir: str | Path | None = None,
        drain_seconds: float = 10.0,
    ):
        """``endpoint_via`` gets moto's URL and returns the one every AWS call of
        the stack and its workers should use (the chaos suite's fault proxy).
        The timeouts (None: the scheduler's defaults, as deployed) say how soon
        the safety nets act: a dead worker's try is reaped, a run that stopped
        moving is reconciled, a try queued and never started is dispatched
        again; local workers start in milliseconds, so a test may shorten them.

        With ``state_dir`` the stack starts from the snapshot saved there (none
        yet: fresh) and saves its state there when it stops (``snapshot``);
        a snapshot it cannot load raises SnapshotError before anything runs.
        ``drain_seconds``: how long a stop lets running tries finish before
        their workers are ended (their tries are then the reaper's)."""
        self.workers = workers
        self.tick_seconds = tick_seconds
        self.on_status = on_status
        self.timeouts = {
            name: value
            for name, value in (
                ("heartbeat_timeout", heartbeat_timeout),
                ("stall_timeout", stall_timeout),
                ("queued_timeout", queued_timeout),
            )
            if value is not None
        }
        self.endpoint_via = endpoint_via
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.drain_seconds = drain_seconds
        self.restored: dict[str, int] | None = None  # what the start loaded, counted
        self._tables: list[str] = []
        self._save_on_stop = False
        self._server: Any = None
        self._fidelity: Any = None
        self._threads: list[threading.Thread] = []
        self._watched: set[str] = set()
        self._stop = threading.Event()
        self._saved_env: dict[str, str | None] = {}
        self.endpoint: str | None = None
        self.executor: LocalExecutor | None = None
        # Notified whenever something may have changed a run: a worker answered,
        # a queue batch or a tick was handled. Waiters re-read the store then.
        self._changed = threading.Condition()
        self._generation = 0

    # ---------------------------------------------------------- lifecycle

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        from chalicelib.local import snapshot
        from chalicelib.local.moto_fidelity import faithful_s3_events, faithful_transactions
        from chalicelib.local.moto_query import partition_queries
        from chalicelib.local.moto_speed import fast_item_serialization

        # A state dir that cannot be loaded is refused before anything starts.
        saved = None if self.state_dir is None else snapshot.find(self.state_dir)
        # DynamoDB transactions as AWS runs them: moto's own copy whole tables
        # per transaction, so run creation and hand-offs slowed as tables grew.
        # Items are serialized without moto's shape walk (most of a page's time).
        self._fidelity = contextlib.ExitStack()
        self._fidelity.enter_context(faithful_transactions())
        self._fidelity.enter_context(fast_item_serialization())
        self._fidelity.enter_context(partition_queries())  # a Query reads its partition only
        self._fidelity.enter_context(faithful_s3_events())
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto's backends belong to the process, not the server: a stack started
        # after another in one process would see its tables and secrets.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=30
        ).close()
        if self.endpoint_via is not None:
            self.endpoint = self.endpoint_via(self.endpoint)
        self._set_env({**LOCAL_ENV, "SLIPSTREAM_ENDPOINT_URL": self.endpoint})
        from chalicelib import wiring

        wiring.reset()
        self._create_resources()
        if self.state_dir is not None:
            try:
                self._restore(saved)
            except BaseException:
                self.stop()
                raise
        # Workers inherit this environment; their own hand-off is relayed back here.
        worker_env = {**os.environ, "SLIPSTREAM_EXECUTORS": "relay"}
        self.executor = LocalExecutor(workers=self.workers, env=worker_env, on_status=self._status)
        self.executor.start()
        from chalicelib.scheduler.service import Scheduler

        scheduler = Scheduler(
            wiring.state_store(),
            wiring.scheduler_queue(),
            dict.fromkeys(("lambda", "ecs", "local"), self.executor),
            clock=wiring.utc_now,
            **self.timeouts,
        )
        wiring.install_scheduler(scheduler)
        if self.restored is not None:
            from chalicelib.local.snapshot import wake_active_runs

            self.restored["runs_woken"] = wake_active_runs(scheduler.store, scheduler.queue)
        self.watch_buckets()  # DAGs deployed before the stack started
        for target, name in ((self._poll_queue, "sqs-poller"), (self._tick, "tick")):
            thread = threading.Thread(target=target, name=f"slipstream-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop the threads and workers, save the state (with a state dir), end moto."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.executor is not None:
            self.executor.stop(timeout=self.drain_seconds)
        try:
            self._save()
        finally:
            self._end_moto()

    def _end_moto(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._fidelity is not None:
            self._fidelity.close()
            self._fidelity = None
        from chalicelib import wiring

        wiring.reset()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore(self, saved: Path | None) -> None:
        """Before the workers and the scheduler start: load the snapshot, if any."""
        from chalicelib import wiring
        from chalicelib.local import snapshot

        self._tables = sorted(wiring.client("dynamodb").list_tables()["TableNames"])
        if saved is not None:
            self.restored = snapshot.restore(saved, wiring.client, self._tables)
            log.info("restored %s from %s", self.restored, saved)
        self._save_on_stop = True  # not before: a refused snapshot is never overwritten

    def _save(self) -> None:
        if not self._save_on_stop or self.state_dir is None:
            return
        self._save_on_stop = False
        from chalicelib import wiring
        from chalicelib.aws.errors import describe
        from chalicelib.local import snapshot

        try:
            snapshot.save(self.state_dir, wiring.client, self._tables)
        except Exception as exc:
            raise snapshot.SnapshotError(
                f"the state was not saved to {self.state_dir} ({describe(exc)}); "
                "its previous snapshot is kept"
            ) from exc

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _set_env(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _create_resources(self) -> None:
        self._set_env({"SLIPSTREAM_QUEUE_URL": create_resources()})

    # ------------------------------------------------------------ plumbing

    def _poll_queue(self) -> None:
        """Play the SQS event source mapping: batches of up to 10, partial failures kept.

        Nothing AWS answers ends this thread (it would silently stop the
        scheduler): a failed call is logged in one line and the loop goes on. A
        message that was handled but not deleted comes back after the visibility
        timeout and is handled again, which every handler allows (at least once).
        """
        from chalicelib import wiring

        sqs = wiring.client("sqs")
        url = os.environ["SLIPSTREAM_QUEUE_URL"]
        while not self._stop.is_set():
            try:
                self._poll_once(sqs, url)
            except Exception as exc:
                if self._stop.is_set():
                    return
                _log_failure("polling the scheduler queue", exc)

    def _poll_once(self, sqs: Any, url: str) -> None:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            return
        try:
            self._handle_batch(sqs, url, batch)
        finally:
            # After the deletes too: a waiter may be waiting for the queue to empty.
            self._notify()

    def _handle_batch(self, sqs: Any, url: str, batch: list[dict[str, Any]]) -> None:
        from chalicelib import handlers

        event = {"Records": [sqs_record(m, url) for m in batch]}
        try:
            response = handlers.scheduler_queue(event)
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception as exc:
            _log_failure("the scheduler batch", exc)
            failed = {m["MessageId"] for m in batch}
        done = [m for m in batch if m["MessageId"] not in failed]
        if not done:
            return
        answer = sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ],
        )
        if answer.get("Failed"):
            codes = sorted({f.get("Code", "?") for f in answer["Failed"]})
            log.warning(
                "%d handled scheduler messages not deleted (%s); they come back",
                len(answer["Failed"]),
                ", ".join(codes),
            )

    def _tick(self) -> None:
        """Play the EventBridge schedule; a failed tick is the next tick's work."""
        from chalicelib import handlers

        while not self._stop.wait(self.tick_seconds):
            try:
                handlers.schedule_tick()
            except Exception as exc:
                _log_failure("the scheduler tick", exc)
            finally:
                self._notify()
            try:
                self.watch_buckets()  # DAGs deployed through the API since
            except Exception as exc:
                _log_failure("turning on S3 event notifications", exc)

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _status(self, status: WorkerStatus) -> None:
        self._notify()
        if not status.ok:
            log.warning("%s: %s", status.message.label, status.error)
        # A sensor that just rescheduled may wait on a bucket not watched yet (one
        # Query); a try that ended any other way registered no bucket.
        if status.state in (None, TaskState.UP_FOR_RESCHEDULE.value):
            try:
                self._watch(wiring_s3_watch_buckets())
            except Exception as exc:  # its timer still pokes
                log.warning("could not watch the buckets sensors wait on: %s", exc)
        if self.on_status is not None:
            self.on_status(status)

    # ------------------------------------------------------------- actions

    def deploy(self, project_root: str | Path, *, unpause: bool = True) -> Any:
        from chalicelib import wiring
        from chalicelib.deploy.deployer import deploy, detect_git_commit

        root = Path(project_root).resolve()
        report = deploy(
            [str(root / "dags")],
            store=wiring.state_store(),
            bundles=wiring.bundle_store(),
            bundle_root=str(root),
            now=wiring.utc_now(),
            git_commit=detect_git_commit(str(root)),
            stage="local",
            paused_at_creation=not unpause,
        )
        self.watch_buckets()
        return report

    def watch_buckets(self) -> list[str]:
        """Make the buckets the deployed S3 triggers, s3:// assets and waiting
        S3KeySensors name exist and send their events to EventBridge (once
        each); returns the buckets watched."""
        from chalicelib import wiring
        from chalicelib.deploy.deployer import event_routes_key
        from chalicelib.local.event_sources import asset_buckets, watched_buckets

        routes = wiring.bundle_store().get_json(event_routes_key(wiring.store_settings().stage))
        buckets = watched_buckets(routes or {}) | asset_buckets(wiring.state_store().models.asset)
        return self._watch(buckets | set(wiring_s3_watch_buckets()))

    def _watch(self, buckets: set[str] | list[str]) -> list[str]:
        from chalicelib import wiring
        from chalicelib.local.event_sources import watch_bucket

        for bucket in sorted(set(buckets) - self._watched):
            watch_bucket(wiring.client("s3"), bucket)
            self._watched.add(bucket)
        return sorted(self._watched)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> DagRun:
        from chalicelib import wiring

        run, _ = wiring.scheduler().trigger(dag_id, conf=conf)
        return run

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> DagRun:
        """Block until the run finishes, re-reading it whenever the stack did something."""
        from chalicelib import wiring

        def finished() -> DagRun | None:
            run = wiring.state_store().get_run(dag_id, run_id)
            return run if run is not None and run.state.finished else None

        return self.wait_until(finished, timeout, f"run {run_id} of {dag_id} to finish")

    def wait_for_queue_drained(self, timeout: float = 60.0) -> None:
        """Block until the scheduler queue holds no message, visible or in flight
        (delayed timers are not counted): everything sent to it so far, events
        included, has been handled and deleted."""
        from chalicelib import wiring

        sqs = wiring.client("sqs")
        url = os.environ["SLIPSTREAM_QUEUE_URL"]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

        def drained() -> bool | None:
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            return True if all(int(counts.get(n, 0)) == 0 for n in names) else None

        self.wait_until(drained, timeout, "the scheduler queue to drain")

    def wait_until(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """Block until ``check`` answers something, asking again whenever the
        stack did something (no polling interval)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._generation
            answer = check()
            if answer is not None:
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited {timeout:g}s for {what}")
            with self._changed:
                self._changed.wait_for(lambda s=seen: self._generation != s, timeout=remaining)


def _log_failure(what: str, exc: Exception) -> None:
    """One line for what AWS does now and then; a traceback only for a bug."""
    from chalicelib.aws.errors import describe, is_expected_aws_error

    if is_expected_aws_error(exc):
        log.warning("%s failed, carrying on: %s", what, describe(exc))
    else:
        log.error("%s failed, carrying on", what, exc_info=exc)


def wiring_s3_watch_buckets() -> list[str]:
    """The buckets rescheduled S3KeySensors have waited on (one Query)."""
    from chalicelib import wiring

    return list(wiring.s3_watches().buckets())
