"""S3CopyObjectOperator, S3CreateObjectOperator, S3DeleteObjectsOperator on moto."""

from __future__ import annotations

import boto3
import pytest

from chalicelib.core.states import TaskState
from chalicelib.local.runner import run_dag_test
from chalicelib.sdk.dag import DAG
from operators.s3 import S3CopyObjectOperator, S3CreateObjectOperator, S3DeleteObjectsOperator
from tests.operators.support import run_operator

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def s3() -> object:
    client = boto3.client("s3")
    client.create_bucket(Bucket="lake")
    return client


def body(s3: object, key: str) -> bytes:
    return bytes(s3.get_object(Bucket="lake", Key=key)["Body"].read())  # type: ignore[attr-defined]


def keys(s3: object) -> list[str]:
    listed = s3.list_objects_v2(Bucket="lake")  # type: ignore[attr-defined]
    return [item["Key"] for item in listed.get("Contents", [])]


def test_create_renders_key_and_data_and_refuses_to_overwrite(s3: object) -> None:
    def create(**kwargs: object) -> S3CreateObjectOperator:
        return S3CreateObjectOperator(
            task_id="put",
            s3_bucket="lake",
            s3_key="daily/{{ ds }}.txt",
            data="rows for {{ ds }}",
            **kwargs,
        )

    result, _ = run_operator(create)
    assert result.state is TaskState.SUCCESS, result.error
    assert body(s3, "daily/2024-01-01.txt") == b"rows for 2024-01-01"
    again, _ = run_operator(create)
    assert again.state is TaskState.FAILED
    assert again.error == "TaskFailed: put: The key daily/2024-01-01.txt already exists."
    replaced, _ = run_operator(lambda: create(replace=True))
    assert replaced.state is TaskState.SUCCESS


def test_create_bytes_at_a_full_url(s3: object) -> None:
    result, _ = run_operator(
        lambda: S3CreateObjectOperator(task_id="put", s3_key="s3://lake/raw.bin", data=b"\x00\xff")
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert body(s3, "raw.bin") == b"\x00\xff"


def test_copy_between_keys_and_buckets(s3: object) -> None:
    s3.put_object(Bucket="lake", Key="in/2024-01-01.csv", Body=b"a,b")  # type: ignore[attr-defined]
    s3.create_bucket(Bucket="archive")  # type: ignore[attr-defined]
    result, _ = run_operator(
        lambda: S3CopyObjectOperator(
            task_id="copy",
            source_bucket_name="lake",
            source_bucket_key="in/{{ ds }}.csv",
            dest_bucket_key="s3://archive/{{ ds_nodash }}.csv",
        )
    )
    assert result.state is TaskState.SUCCESS, result.error
    copied = s3.get_object(Bucket="archive", Key="20240101.csv")["Body"].read()  # type: ignore[attr-defined]
    assert copied == b"a,b"


def test_copy_of_a_missing_key_fails(s3: object) -> None:
    result, _ = run_operator(
        lambda: S3CopyObjectOperator(
            task_id="copy", source_bucket_key="s3://lake/none", dest_bucket_key="s3://lake/x"
        )
    )
    assert result.state is TaskState.FAILED
    assert "NoSuchKey" in (result.error or "")


def test_delete_by_keys_and_by_prefix(s3: object) -> None:
    for key in ("tmp/a", "tmp/b", "keep/c", "x"):
        s3.put_object(Bucket="lake", Key=key, Body=b"")  # type: ignore[attr-defined]
    result, _ = run_operator(lambda: S3DeleteObjectsOperator(task_id="rm", bucket="lake", keys="x"))
    assert result.state is TaskState.SUCCESS, result.error
    result, _ = run_operator(
        lambda: S3DeleteObjectsOperator(task_id="rm", bucket="lake", prefix="tmp/")
    )
    assert result.state is TaskState.SUCCESS, result.error
    assert keys(s3) == ["keep/c"]
    nothing, _ = run_operator(lambda: S3DeleteObjectsOperator(task_id="rm", bucket="lake", keys=[]))
    assert nothing.state is TaskState.SUCCESS
    assert keys(s3) == ["keep/c"]


def test_delete_needs_exactly_one_way_to_choose_keys() -> None:
    with DAG("bad"), pytest.raises(ValueError, match="either keys or prefix"):
        S3DeleteObjectsOperator(task_id="rm", bucket="lake", keys=["a"], prefix="p")
    with DAG("bad"), pytest.raises(ValueError, match="not neither"):
        S3DeleteObjectsOperator(task_id="rm", bucket="lake")


def test_a_dag_of_s3_operators_through_dags_test(s3: object) -> None:
    with DAG("s3_pipeline", schedule=None) as dag:
        put = S3CreateObjectOperator(
            task_id="put", s3_bucket="lake", s3_key="in/{{ ds }}", data="x"
        )
        copy = S3CopyObjectOperator(
            task_id="copy",
            source_bucket_key="in/{{ ds }}",
            dest_bucket_key="out/{{ ds }}",
            source_bucket_name="lake",
            dest_bucket_name="lake",
        )
        clean = S3DeleteObjectsOperator(task_id="clean", bucket="lake", prefix="in/")
        put >> copy >> clean
    result = run_dag_test(dag, show=False, logical_date="2024-03-05T00:00:00+00:00")
    assert result.succeeded, result.reason
    assert keys(s3) == ["out/2024-03-05"]
