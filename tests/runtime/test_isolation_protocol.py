"""The child is untrusted: what it sends is JSON checked by the worker, never a
pickle; the broker serves only its allow-list; logs, bundles and DAG callbacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.assets import AssetRef
from chalicelib.core.states import TaskState
from chalicelib.deploy.bundle_store import LocalBundleStore
from chalicelib.runtime.isolation import child_env, tenant_bundles
from chalicelib.runtime.isolation_broker import Services, add_xcom
from chalicelib.runtime.isolation_codec import ProtocolError, result_from_json, result_to_json
from chalicelib.runtime.outcome import TryResult
from chalicelib.runtime.outlets import OutletEvent
from chalicelib.runtime.xcom import InMemoryXComStore
from tests.runtime.isolation_stack import bundle_stack, fixed_credentials, instance, run_once

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

FRAME_WRITER = """
import os, pickle, struct, sys, time
from datetime import datetime
from chalicelib.sdk import DAG
from operators.python import PythonOperator

def send(body):
    # the channel to the worker is the descriptor the child was started with
    os.write(int(sys.argv[2]), struct.pack(">I", len(body)) + body)
    time.sleep(60)
"""


def test_a_child_that_sends_a_pickle_fails_its_try_and_the_worker_runs_none_of_it(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    source = (
        FRAME_WRITER
        + f"""
class Evil:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))

def evil():
    send(pickle.dumps(Evil()))

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="evil", python_callable=evil)
"""
    )
    stack, _, run = run_once(tmp_path, source)
    ti = instance(stack, run, "evil")
    assert ti.state is TaskState.FAILED
    assert ti.error is not None
    assert ti.error.startswith("IsolationProtocolError: the task's interpreter broke the protocol")
    assert "not JSON" in ti.error
    assert not marker.exists()


def test_a_child_that_sends_a_malformed_result_fails_its_try(tmp_path: Path) -> None:
    source = (
        FRAME_WRITER
        + """
import json

def liar():
    result = {"state": "running", "start_date": "2024-01-01T00:00:00+00:00"}
    send(json.dumps({"done": {"result": result}}).encode())

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="liar", python_callable=liar)
"""
    )
    stack, _, run = run_once(tmp_path, source)
    ti = instance(stack, run, "liar")
    assert ti.state is TaskState.FAILED
    assert ti.error == (
        "IsolationProtocolError: bad result from the task's interpreter: "
        "a try cannot end in state 'running'"
    )


def _result(**fields: Any) -> dict[str, Any]:
    base = result_to_json(TryResult(state=TaskState.SUCCESS, start_date=T0, end_date=T0))
    base.update(fields)
    return base


def test_a_result_round_trips_and_every_malformed_field_is_named() -> None:
    full = TryResult(
        state=TaskState.UP_FOR_RETRY,
        start_date=T0,
        end_date=T0,
        next_try_at=T0 + dt.timedelta(seconds=5),
        retry_delay_seconds=5.0,
        error="RuntimeError: no",
        traceback="Traceback ...",
        result_length=3,
        rendered_fields='{"x": 1}',
        skip_downstream=("a",),
        infrastructure=True,
        retry_base=1,
        infra_failures=1,
        asset_events=(
            OutletEvent(asset=AssetRef(uri="s3://b/k", name="k"), extra={"rows": 3}, alias="a"),
        ),
    )
    assert result_from_json(result_to_json(full)) == full
    bad = {
        "'bogus' is not a task state": _result(state="bogus"),
        "'start_date' must be an ISO": _result(start_date=12),
        "has no time zone": _result(end_date="2024-01-01T00:00:00"),
        "'error' must be str": _result(error=["x"]),
        "'result_length' must be int, got bool": _result(result_length=True),
        "skip_downstream": _result(skip_downstream=[1]),
        "retry_base 5 is not 0 or one more": _result(retry_base=5),
        "asset event 0": _result(asset_events=[{"asset": {"uri": 3}, "extra": {}}]),
    }
    for words, data in bad.items():
        with pytest.raises(ProtocolError, match=words):
            result_from_json(data)
    with pytest.raises(ProtocolError, match="must be a JSON object"):
        result_from_json(["success"])


def test_the_broker_serves_only_its_allow_list_and_never_unpickles() -> None:
    xcoms = InMemoryXComStore()
    services = Services()
    add_xcom(services, xcoms)
    args = {"task_id": "t", "map_index": -1, "key": "k"}
    pushed = services.answer(
        {
            "call": 1,
            "service": "xcom",
            "method": "push_encoded",
            "args": args,
            "payload": {"__datetime__": "2024-01-01T00:00:00+00:00"},
        }
    )
    assert pushed == {"reply": 1, "value": None}
    assert xcoms.pull("t", -1, "k") == (True, T0)  # stored in its JSON form, as sent
    refused = services.answer({"call": 2, "service": "store", "method": "put_run", "args": {}})
    assert refused["error"]["type"] == "PermissionError"
    wrong = services.answer(
        {"call": 3, "service": "xcom", "method": "pull_encoded", "args": {"task_id": 1}}
    )
    assert wrong["error"] == {
        "type": "TypeError",
        "message": "argument 'task_id' must be a string",
        "code": None,
    }


def test_the_child_environment_holds_the_tenant_credentials_and_nothing_of_the_worker() -> None:
    worker = {
        "PATH": "/usr/bin",
        "AWS_ACCESS_KEY_ID": "worker-key",
        "AWS_SECRET_ACCESS_KEY": "worker-secret",
        "AWS_SESSION_TOKEN": "worker-token",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2/creds",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
        "SLIPSTREAM_STAGE": "prod",
        "SLIPSTREAM_TABLE_NAME": "state",
        "AWS_REGION": "eu-west-1",
    }
    env = child_env(fixed_credentials("acme"), worker)
    assert env["AWS_ACCESS_KEY_ID"] == "ASIATENANTACME"
    assert env["SLIPSTREAM_STAGE"] == "prod" and env["AWS_REGION"] == "eu-west-1"
    assert not {v for k, v in worker.items() if k not in ("PATH",)} & {
        v for k, v in env.items() if k not in ("SLIPSTREAM_STAGE", "AWS_REGION")
    }
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    with pytest.raises(ValueError, match="lack AWS_SESSION_TOKEN"):
        child_env({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, worker)


def test_a_tenant_child_never_finds_another_tenants_extracted_bundle(tmp_path: Path) -> None:
    store = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    other = tmp_path / "cache" / "isolated" / "tenant-globex" / "abc"
    other.mkdir(parents=True)
    (other / "secret_dag.py").write_text("PASSWORD = 'globex'")
    view = tenant_bundles(store, "acme")
    assert view.cache_dir == tmp_path / "cache" / "isolated" / "tenant-acme"
    assert not other.parent.exists()
    assert store.cache_dir == tmp_path / "cache"  # the worker's own store is unchanged


def test_after_another_tenants_child_even_the_tenants_own_folder_is_extracted_afresh(
    tmp_path: Path,
) -> None:
    """A child of globex could plant files in acme's folder for acme's next try
    in the same warm container; a tenant switch empties every folder."""
    store = LocalBundleStore(tmp_path / "bundles", cache_dir=tmp_path / "cache")
    base = tmp_path / "cache" / "isolated"
    tenant_bundles(store, "acme")
    (base / "tenant-acme" / "kept").mkdir(parents=True)
    tenant_bundles(store, "acme")  # the same tenant again: its folder stays
    assert (base / "tenant-acme" / "kept").is_dir()
    tenant_bundles(store, "globex")
    planted = base / "tenant-acme" / "abc"
    planted.mkdir(parents=True)  # what globex's child might leave for acme
    (planted / "dag.py").write_text("steal()")
    tenant_bundles(store, "acme")
    assert not (base / "tenant-acme").exists()


def test_an_isolated_try_logs_the_same_lines_as_an_in_process_one(tmp_path: Path) -> None:
    source = """
import logging
from datetime import datetime
from chalicelib.sdk import DAG
from operators.bash import BashOperator
from operators.python import PythonOperator

def talk():
    print("printed")
    logging.getLogger("user.code").warning("a warning with %s", "args")
    return 42

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    PythonOperator(task_id="talk", python_callable=talk) >> BashOperator(
        task_id="bash", bash_command="echo out; echo err >&2"
    )
"""
    events = {}
    for mode, credentials in (("in-process", None), ("isolated", fixed_credentials)):
        stack, logs = bundle_stack(
            tmp_path / mode,
            source,
            credentials=credentials,
            bundles_class=LocalBundleStore,
        )
        run, _ = stack.scheduler.trigger("iso")
        stack.settle()
        assert set(stack.states("iso", run.run_id).values()) == {"success"}
        events[mode] = (logs.events("talk"), logs.events("bash"))
    assert events["isolated"] == events["in-process"]
    assert ("printed", "info", "stdout") in events["isolated"][0]


def test_dag_callbacks_run_in_a_child(tmp_path: Path) -> None:
    seen = tmp_path / "callback.txt"
    source = f"""
import os
from datetime import datetime
from chalicelib.sdk import DAG
from operators.python import PythonOperator

def on_failure(context):
    with open("{seen}", "w") as f:
        f.write(context["reason"] + " " + os.environ["AWS_ACCESS_KEY_ID"])

def fail():
    raise ValueError("no")

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None, on_failure_callback=on_failure):
    PythonOperator(task_id="fail", python_callable=fail)
"""
    stack, _ = bundle_stack(tmp_path, source, credentials=fixed_credentials)
    stack.scheduler.trigger("iso")
    stack.settle()
    assert seen.read_text() == "task_failure ASIATENANTDEFAULT"


def test_a_deadline_callback_runs_once_in_a_child_and_the_worker_keeps_the_claim(
    tmp_path: Path,
) -> None:
    from chalicelib.core.deadlines import DEADLINE_CALLBACK_TASK

    seen = tmp_path / "deadline.txt"
    source = f"""
import os
from datetime import datetime, timedelta
from chalicelib.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback
from operators.empty import EmptyOperator

def notify(team, context):
    with open("{seen}", "a") as f:
        f.write(f"{{team}} {{context['deadline']['id']}} {{os.environ['AWS_ACCESS_KEY_ID']}}\\n")

alert = DeadlineAlert(
    reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
    interval=timedelta(minutes=30),
    callback=SyncCallback(notify, kwargs={{"team": "data"}}),
)
with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None, deadline=alert):
    EmptyOperator(task_id="work")
"""
    stack, _ = bundle_stack(tmp_path, source, credentials=fixed_credentials)
    run, _ = stack.scheduler.trigger("iso")
    message, _ = stack.queue.pending.pop(0)
    stack.scheduler.handle(message)
    stack.executor.invocations.clear()  # the try is still running somewhere
    stack.clock.advance(31 * 60)
    stack.scheduler.tick()
    (callback,) = [m for m in stack.executor.invocations if m.task_id == DEADLINE_CALLBACK_TASK]
    assert stack.run_worker(callback).claimed
    assert not stack.run_worker(callback).claimed  # a duplicate delivery: claimed already
    assert seen.read_text() == f"data iso/{run.run_id}/0 ASIATENANTDEFAULT\n"


def test_a_child_triggers_its_tenants_dags_through_the_worker_and_no_other(
    tmp_path: Path,
) -> None:
    from chalicelib.store.base import DagRecord

    source = """
from datetime import datetime
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
from operators.trigger_dagrun import TriggerDagRunOperator

with DAG("other", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="noop")

with DAG("iso", start_date=datetime(2024, 1, 1), schedule=None):
    TriggerDagRunOperator(task_id="kick", trigger_dag_id="other", conf={"from": "iso"})
    TriggerDagRunOperator(task_id="reach", trigger_dag_id="foreign")
"""
    stack, _ = bundle_stack(tmp_path, source, credentials=fixed_credentials, tenant="acme")
    stack.store.upsert_dag(DagRecord(dag_id="foreign", current_version="v1", tenant="globex"))
    run, _ = stack.scheduler.trigger("iso")
    stack.settle()
    assert stack.states("iso", run.run_id) == {"kick": "success", "reach": "failed"}
    found, run_id = stack.xcoms[("iso", run.run_id)].pull("kick", -1, "trigger_run_id")
    triggered = stack.store.get_run("other", run_id)
    assert found and triggered is not None
    assert triggered.conf == {"from": "iso"} and triggered.tenant == "acme"
    reach = stack.store.get_instance("iso", run.run_id, "reach", -1)
    assert reach is not None and reach.error == "LookupError: no deployed DAG 'foreign'"


def test_the_ports_cross_the_broker_as_the_same_objects() -> None:
    import json

    from chalicelib.core.hitl import HitlKey, HitlRequest, HitlResponse
    from chalicelib.core.s3_keys import KeyPattern
    from chalicelib.runtime.isolation_broker import add_dag_states, add_hitl, add_wakeups
    from chalicelib.runtime.isolation_proxies import (
        BrokerClient,
        DagStatesProxy,
        HitlProxy,
        WakeupsProxy,
    )

    calls: list[tuple[str, Any]] = []
    answer = HitlResponse(("yes",), {"n": 1}, T0, {"id": "u1", "name": "Ann"})

    class Port:
        def open(self, key: Any, request: Any, now: Any) -> None:
            calls.append(("open", (key, request, now)))

        def response(self, key: Any, try_number: int) -> Any:
            calls.append(("response", (key, try_number)))
            return answer

        def close(self, key: Any, try_number: int, response: Any) -> Any:
            calls.append(("close", (key, try_number, response)))
            return response

        def wake_on_s3(self, patterns: Any) -> None:
            calls.append(("wake", patterns))

        def run_state(self, dag_id: str, logical_date: Any) -> str:
            calls.append(("run_state", (dag_id, logical_date)))
            return "success"

    services = Services()
    add_hitl(services, Port())
    add_wakeups(services, Port())
    add_dag_states(services, Port())

    def send(frame: dict[str, Any]) -> None:  # through JSON text, as over the pipe
        reply = services.answer(json.loads(json.dumps(frame)))
        client.deliver(json.loads(json.dumps(reply)))

    client = BrokerClient(send)
    key = HitlKey("d", "r", "t", 2)
    request = HitlRequest(
        "Approve?", ("yes", "no"), defaults=("no",), params={"n": {"value": 1}}, created_at=T0
    )
    HitlProxy(client).open(key, request, T0)
    assert HitlProxy(client).response(key, 1) == answer
    assert HitlProxy(client).close(key, 1, answer) == answer
    patterns = [KeyPattern("bucket", "in/*.csv", "glob")]
    WakeupsProxy(client).wake_on_s3(patterns)
    assert DagStatesProxy(client).run_state("up", T0) == "success"
    assert calls == [
        ("open", (key, request, T0)),
        ("response", (key, 1)),
        ("close", (key, 1, answer)),
        ("wake", patterns),
        ("run_state", ("up", T0)),
    ]


def test_an_aws_error_in_the_worker_stays_an_infrastructure_error_in_the_child() -> None:
    from botocore.exceptions import ClientError

    from chalicelib.aws.errors import is_infrastructure_error
    from chalicelib.runtime.isolation_proxies import remote_error

    class Throttled:
        def pull_encoded(self, task_id: str, map_index: int, key: str) -> Any:
            error = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
            raise ClientError(error, "GetItem")  # type: ignore[arg-type]

    services = Services()
    add_xcom(services, Throttled())
    args = {"task_id": "t", "map_index": -1, "key": "k"}
    reply = services.answer({"call": 1, "service": "xcom", "method": "pull_encoded", "args": args})
    raised = remote_error(reply["error"])
    assert is_infrastructure_error(raised)
    assert str(raised).startswith("ClientError: An error occurred (ThrottlingException)")
    assert isinstance(remote_error({"type": "LookupError", "message": "no DAG"}), LookupError)
