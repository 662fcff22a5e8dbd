"""S3KeySensor and SqsSensor against moto."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.sdk import DAG
from operators.sensors.s3 import S3KeySensor
from operators.sensors.sqs import SqsSensor

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class PushingTi:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SLIPSTREAM_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _in_dag(factory: Any) -> Any:
    with DAG("aws", start_date=T0, schedule=None):
        return factory()


def test_s3_key_sensor_exact_key_and_url(aws: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="landing")
    exact = _in_dag(lambda: S3KeySensor(task_id="k", bucket_name="landing", bucket_key="a/b.csv"))
    url = _in_dag(lambda: S3KeySensor(task_id="u", bucket_key="s3://landing/a/b.csv"))
    assert not exact.poke({}) and not url.poke({})
    s3.put_object(Bucket="landing", Key="a/b.csv", Body=b"x")
    assert exact.poke({}) and url.poke({})


def test_s3_key_sensor_needs_every_key(aws: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key="one", Body=b"1")
    both = _in_dag(
        lambda: S3KeySensor(task_id="k", bucket_name="landing", bucket_key=["one", "two"])
    )
    assert not both.poke({})
    s3.put_object(Bucket="landing", Key="two", Body=b"2")
    assert both.poke({})


def test_s3_key_sensor_wildcards_and_check_fn(aws: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key="day=1/part-0.json", Body=b"{}")
    csv = _in_dag(
        lambda: S3KeySensor(task_id="w", bucket_key="s3://landing/day=1/*.csv", wildcard_match=True)
    )
    assert not csv.poke({})
    s3.put_object(Bucket="landing", Key="day=1/part-0.csv", Body=b"abc")
    assert csv.poke({})
    big_enough = _in_dag(
        lambda: S3KeySensor(
            task_id="c",
            bucket_key="s3://landing/day=1/*.csv",
            wildcard_match=True,
            check_fn=lambda files: all(f["Size"] >= 10 for f in files),
        )
    )
    assert not big_enough.poke({})
    regex = _in_dag(
        lambda: S3KeySensor(
            task_id="r", bucket_name="landing", bucket_key=r"day=\d/part-\d\.csv", use_regex=True
        )
    )
    assert regex.poke({})


def test_s3_key_sensor_bad_keys_say_what_is_wrong(aws: None) -> None:
    no_bucket = _in_dag(lambda: S3KeySensor(task_id="k", bucket_key="a/b.csv"))
    with pytest.raises(ValueError, match="bucket_key must be a full s3:// URL"):
        no_bucket.poke({})
    both = _in_dag(lambda: S3KeySensor(task_id="k", bucket_name="b", bucket_key="s3://b/k"))
    with pytest.raises(ValueError, match="not both"):
        both.poke({})


def test_s3_key_sensor_in_a_test_run(aws: None) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="landing")
    s3.put_object(Bucket="landing", Key="ready.flag", Body=b"")
    with DAG("s3run", start_date=T0, schedule=None) as dag:
        S3KeySensor(task_id="flag", bucket_key="s3://landing/ready.flag")
        S3KeySensor(
            task_id="missing",
            bucket_key="s3://landing/never",
            poke_interval=600,
            timeout=1800,
            soft_fail=True,
        )
    result = dag.test(logical_date=T0)
    assert result.task_states == {"flag": "success", "missing": "skipped"}


def _queue() -> tuple[Any, str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    return sqs, sqs.create_queue(QueueName="inbox")["QueueUrl"]


def test_sqs_sensor_receives_pushes_and_deletes(aws: None) -> None:
    sqs, url = _queue()
    sensor = _in_dag(lambda: SqsSensor(task_id="q", sqs_queue=url, wait_time_seconds=0))
    ti = PushingTi()
    assert not sensor.poke({"ti": ti})
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert sensor.poke({"ti": ti})
    assert [m["Body"] for m in ti.pushed["messages"]] == ["hello"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"  # deleted


def test_sqs_sensor_literal_and_jsonpath_filters(aws: None) -> None:
    sqs, url = _queue()
    literal = _in_dag(
        lambda: SqsSensor(
            task_id="lit",
            sqs_queue=url,
            wait_time_seconds=0,
            visibility_timeout=0,
            message_filtering="literal",
            message_filtering_match_values=["go"],
        )
    )
    jsonpath = _in_dag(
        lambda: SqsSensor(
            task_id="jp",
            sqs_queue=url,
            wait_time_seconds=0,
            message_filtering="jsonpath",
            message_filtering_config="$.event.kind",
            message_filtering_match_values=["done"],
        )
    )
    sqs.send_message(QueueUrl=url, MessageBody="wait")
    assert not literal.poke({"ti": PushingTi()})
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"event": {"kind": "done"}}))
    ti = PushingTi()
    assert jsonpath.poke({"ti": ti})
    assert json.loads(ti.pushed["messages"][0]["Body"]) == {"event": {"kind": "done"}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"message_filtering": "jsonpath-ext"}, "jsonpath-ext is not supported"),
        ({"message_filtering": "literal"}, "needs message_filtering_match_values"),
        ({"max_messages": 11}, "max_messages must be 1 to 10"),
    ],
)
def test_sqs_sensor_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _in_dag(lambda: SqsSensor(task_id="q", sqs_queue="url", **kwargs))
