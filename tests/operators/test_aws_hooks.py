"""AwsBaseHook credentials from connections, and S3Hook's calls, on moto."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os

import boto3
import pytest

from chalicelib.secrets.errors import NotFound
from operators.hooks.aws_base import AwsBaseHook
from operators.hooks.s3 import S3Hook, S3HookError, bucket_and_key, parse_s3_url

pytestmark = pytest.mark.usefixtures("aws")


def test_no_connection_uses_the_default_chain() -> None:
    default = os.environ["AWS_ACCESS_KEY_ID"]  # what boto3's chain finds (mock_aws sets it)
    assert AwsBaseHook(None).get_session().get_credentials().access_key == default
    # A missing aws_default falls back too (Airflow warns and does the same)...
    assert AwsBaseHook().get_session().get_credentials().access_key == default
    # ...but a connection id the DAG names explicitly must exist.
    with pytest.raises(NotFound, match="AIRFLOW_CONN_MISSING"):
        AwsBaseHook("missing").get_session()


def test_keys_region_and_endpoint_come_from_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = {
        "region_name": "eu-west-1",
        "aws_session_token": "tok",
        "endpoint_url": "http://localhost:4566",
        "service_config": {"s3": {"endpoint_url": "http://s3.local:9000"}},
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        json.dumps(
            {"conn_type": "aws", "login": "AKIDWH", "password": "s3cr3tkey", "extra": extra}
        ),
    )
    hook = AwsBaseHook("warehouse", client_type="sqs")
    credentials = hook.get_session().get_credentials()
    assert (credentials.access_key, credentials.secret_key, credentials.token) == (
        "AKIDWH",
        "s3cr3tkey",
        "tok",
    )
    assert hook.region_name == "eu-west-1"
    assert hook.conn.meta.endpoint_url == "http://localhost:4566"
    assert hook.get_client_type("s3").meta.endpoint_url == "http://s3.local:9000"
    assert AwsBaseHook("warehouse", region_name="us-west-2").region_name == "us-west-2"


def test_role_arn_is_assumed_with_sts(monkeypatch: pytest.MonkeyPatch) -> None:
    role = boto3.client("iam").create_role(
        RoleName="etl", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_ETL",
        json.dumps({"conn_type": "aws", "extra": {"role_arn": role, "region_name": "us-east-1"}}),
    )
    hook = AwsBaseHook("etl", client_type="sts")
    identity = hook.conn.get_caller_identity()
    assert identity["Arn"].startswith("arn:aws:sts::123456789012:assumed-role/etl/slipstream-etl")


def test_a_hook_without_a_service_says_so() -> None:
    with pytest.raises(ValueError, match="which AWS service"):
        AwsBaseHook(None).get_client_type()


def test_s3_urls() -> None:
    assert parse_s3_url("s3://b/a/b.csv") == ("b", "a/b.csv")
    assert bucket_and_key("a/b.csv", "b") == ("b", "a/b.csv")
    assert bucket_and_key("s3://b/k", None) == ("b", "k")
    with pytest.raises(S3HookError, match="has no bucket"):
        bucket_and_key("k", None)
    with pytest.raises(S3HookError, match="not both"):
        bucket_and_key("s3://b/k", "b")


def test_s3_hook_round_trip() -> None:
    hook = S3Hook(None)
    hook.conn.create_bucket(Bucket="data")
    assert hook.check_for_bucket("data")
    assert not hook.check_for_bucket("nope")
    hook.load_string("héllo", "in/a.txt", "data")
    hook.load_bytes(b"\x00\x01", "s3://data/in/b.bin")
    with pytest.raises(S3HookError, match=r"The key in/a\.txt already exists\."):
        hook.load_string("again", "in/a.txt", "data")
    hook.load_string("again", "in/a.txt", "data", replace=True)
    hook.load_string("zipped", "in/c.gz", "data", compression="gzip")
    assert hook.read_key("in/a.txt", "data") == "again"
    assert gzip.decompress(hook.read_key_bytes("s3://data/in/c.gz")) == b"zipped"
    assert hook.check_for_key("s3://data/in/b.bin")
    assert not hook.check_for_key("in/none", "data")
    assert hook.list_keys("data", prefix="in/") == ["in/a.txt", "in/b.bin", "in/c.gz"]
    assert hook.list_keys("data", prefix="in/*.txt", apply_wildcard=True) == ["in/a.txt"]
    assert hook.list_keys("data", prefix="in/", max_items=2, page_size=1) == [
        "in/a.txt",
        "in/b.bin",
    ]
    assert hook.check_for_prefix("in", "/", "data")
    hook.copy_object("in/a.txt", "s3://data/out/a.txt", source_bucket_name="data")
    assert hook.read_key("out/a.txt", "data") == "again"
    hook.delete_objects("data", ["in/a.txt", "in/b.bin"])
    assert hook.list_keys("data") == ["in/c.gz", "out/a.txt"]


def test_list_keys_by_last_modified_window() -> None:
    hook = S3Hook(None)
    hook.conn.create_bucket(Bucket="data")
    hook.load_string("x", "k", "data")
    modified = hook.head_object("k", "data")["LastModified"]  # type: ignore[index]
    second = dt.timedelta(seconds=1)
    assert hook.list_keys("data", from_datetime=modified - second) == ["k"]
    assert hook.list_keys("data", from_datetime=modified) == []  # strictly after
    assert hook.list_keys("data", to_datetime=modified) == ["k"]  # up to and including
    assert hook.list_keys("data", to_datetime=modified - second) == []


def test_deleting_more_than_one_batch() -> None:
    hook = S3Hook(None)
    hook.conn.create_bucket(Bucket="many")
    keys = [f"k{i:04d}" for i in range(1005)]
    for key in keys:
        hook.conn.put_object(Bucket="many", Key=key, Body=b"")
    hook.delete_objects("many", keys)
    assert hook.list_keys("many") == []
