"""Assets in DAG files: Airflow's authoring names, and what reaches the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.core.assets import AliasRef, AllOf, AnyOf, AssetRef
from chalicelib.core.spec import DagSpec
from chalicelib.sdk import Asset, AssetAlias, AssetAll, AssetAny, Dataset
from chalicelib.sdk.loader import load_dags
from chalicelib.sdk.serialize import dag_to_spec
from tests.sdk.dagfiles import write_dag

FILE = """
import pendulum
from chalicelib.sdk import DAG, Asset, AssetAlias, Dataset, task
from operators.empty import EmptyOperator

orders = Asset("s3://lake/orders/", extra={"team": "sales"})
users = Dataset("s3://lake/users")
stock = Asset(name="stock", uri="postgres://db/public/stock")

with DAG("producer", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
    EmptyOperator(task_id="classic", outlets=[orders, AssetAlias("out")])

    @task(outlets=[users])
    def taskflow():
        return 1

    taskflow()

with DAG("consumer", schedule=orders & (users | stock), start_date=pendulum.datetime(2024, 1, 1)):
    EmptyOperator(task_id="go")

with DAG("listed", schedule=[orders, users], start_date=pendulum.datetime(2024, 1, 1)):
    EmptyOperator(task_id="go")
"""


def _specs(tmp_path: Path, source: str) -> tuple[dict[str, DagSpec], list[str]]:
    write_dag(tmp_path, "assets_dag.py", source)
    result = load_dags([str(tmp_path)])
    problems = [p.message for p in result.problems]
    specs = {dag_id: dag_to_spec(dag, str(tmp_path)) for dag_id, dag in result.dags.items()}
    return specs, problems


def test_outlets_and_conditions_reach_the_spec(tmp_path: Path) -> None:
    specs, problems = _specs(tmp_path, FILE)
    assert problems == []
    producer = specs["producer"]
    assert producer.tasks["classic"].outlets == [
        AssetRef(uri="s3://lake/orders", name="s3://lake/orders/", extra={"team": "sales"}),
        AliasRef(name="out"),
    ]
    assert [o.uri for o in producer.tasks["taskflow"].outlets] == ["s3://lake/users"]  # type: ignore[union-attr]
    assert producer.asset_condition is None
    consumer = specs["consumer"].asset_condition
    assert isinstance(consumer, AllOf)
    assert isinstance(consumer.objects[1], AnyOf)
    assert [o.uri for o in consumer.objects[1].objects] == [  # type: ignore[union-attr]
        "s3://lake/users",
        "postgres://db/public/stock",
    ]
    listed = specs["listed"].asset_condition
    assert isinstance(listed, AllOf) and len(listed.objects) == 2
    again = DagSpec.from_json(specs["consumer"].canonical_json())
    assert again == specs["consumer"]
    assert again.content_hash == specs["consumer"].content_hash


def test_a_dag_without_assets_hashes_as_before(tmp_path: Path) -> None:
    specs, _ = _specs(tmp_path, FILE)
    text = specs["producer"].canonical_json()
    assert "asset_condition" not in text
    assert '"outlets"' in text  # only tasks with outlets carry the field
    assert text.count('"outlets"') == 2


def test_time_and_asset_schedules_cannot_be_mixed(tmp_path: Path) -> None:
    _, problems = _specs(
        tmp_path,
        """
        import pendulum
        from chalicelib.sdk import DAG, Asset
        from operators.empty import EmptyOperator
        with DAG("mixed", schedule=["@daily", Asset("s3://a/b")],
                 start_date=pendulum.datetime(2024, 1, 1)):
            EmptyOperator(task_id="go")
        """,
    )
    assert any("cannot mix assets with a time-based schedule" in p for p in problems)


def test_an_outlet_that_is_not_an_asset_is_a_problem(tmp_path: Path) -> None:
    _, problems = _specs(
        tmp_path,
        """
        import pendulum
        from chalicelib.sdk import DAG
        from operators.empty import EmptyOperator
        with DAG("bad", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
            EmptyOperator(task_id="go", outlets=["s3://a/b"])
        """,
    )
    assert any("outlets must be Asset or AssetAlias objects" in p for p in problems)


def test_operators_combine_like_airflows() -> None:
    a, b, c = Asset("s3://x/a"), Asset("s3://x/b"), Dataset("s3://x/c")
    assert isinstance(a & b & c, AssetAll) and len((a & b & c).objects) == 3
    assert isinstance(a | b | c, AssetAny) and len((a | b | c).objects) == 3
    assert a == Asset("S3://x/a/", name="s3://x/a") and hash(a) == hash(Asset("s3://x/a"))
    assert a != Asset("s3://x/a", name="other")  # name is part of the identity
    assert Dataset("s3://x/a") == a  # a Dataset is an Asset
    assert AssetAlias("n") == AssetAlias("n")
    with pytest.raises(ValueError, match="reserved"):
        Asset("airflow://x")
    with pytest.raises(TypeError, match="unexpected"):
        Asset("s3://x/a", watchers=[])
