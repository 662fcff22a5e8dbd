"""XComArg.map / XComArg.zip in the SDK: edges, the spec record, and the parse-time errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.core.spec import MapSource
from chalicelib.sdk import DAG, XComArg, task
from chalicelib.sdk.loader import load_dags
from chalicelib.sdk.xcom_arg import NOTSET
from chalicelib.sdk.xcom_arg_ops import MappedResult, MapXComArg, ZippedResult, ZipXComArg
from operators.python import PythonOperator
from tests.sdk.dagfiles import line_of, write_dag


def to_kwargs(name: str) -> dict[str, str]:
    return {"name": name}


def shout(value: Any) -> str:
    return str(value).upper()


@task
def files() -> list[str]:
    return ["a", "b"]


@task
def sizes() -> list[int]:
    return [1, 2, 3]


@task
def show(p: Any) -> str:
    return repr(p)


def test_map_keeps_the_upstream_edge_and_records_the_function_by_reference() -> None:
    with DAG("d") as dag:
        f = files()
        mapped = show.expand(p=f.map(to_kwargs).map(shout))

    assert isinstance(f.map(to_kwargs), MapXComArg)
    assert mapped.operator.upstream_task_ids == {"files"}
    source = dag.to_spec().tasks["show"].mapping.sources["p"]  # type: ignore[union-attr]
    assert source.xcom_task_id == "files" and source.xcom_key == "return_value"
    # map(f).map(g) is one map of two functions, in order, named inside the bundle
    assert [name.rsplit(":", 1)[1] for name in source.map_callables] == ["to_kwargs", "shout"]


def test_zip_reads_every_input_and_records_shortest_or_longest() -> None:
    with DAG("d") as dag:
        f, s = files(), sizes()
        show.override(task_id="short").expand(p=f.zip(s))
        show.override(task_id="long").expand(p=f.zip(s, fillvalue=None))
        show.override(task_id="chained").expand(p=f.zip(s).map(shout))

    spec = dag.to_spec()
    zipped = [MapSource(xcom_task_id="files"), MapSource(xcom_task_id="sizes")]
    assert spec.tasks["short"].mapping.sources["p"] == MapSource(zip_sources=zipped)  # type: ignore[union-attr]
    assert spec.tasks["long"].mapping.sources["p"] == MapSource(  # type: ignore[union-attr]
        zip_sources=zipped, zip_longest=True
    )
    chained = spec.tasks["chained"].mapping.sources["p"]  # type: ignore[union-attr]
    assert chained.zip_sources == zipped and len(chained.map_callables) == 1
    for tid in ("short", "long", "chained"):
        assert spec.tasks[tid].upstream == ["files", "sizes"]


def test_fillvalue_and_functions_change_the_version_hash() -> None:
    def build(**zip_kwargs: Any) -> str:
        with DAG("d") as dag:
            show.expand(p=files().zip(sizes(), **zip_kwargs))
        return dag.to_spec().content_hash

    assert build() != build(fillvalue=0)
    assert build(fillvalue=0) != build(fillvalue=1)
    assert build(fillvalue=0) == build(fillvalue=0)


def test_a_dag_without_map_or_zip_hashes_without_the_new_fields() -> None:
    with DAG("d") as dag:
        show.expand(p=files())
    text = dag.to_spec().canonical_json()
    assert "map_callables" not in text and "zip_sources" not in text and "zip_longest" not in text


def test_map_in_an_ordinary_argument_adds_the_edge() -> None:
    with DAG("d") as dag:
        op = PythonOperator(task_id="use", python_callable=print, op_args=[files().map(shout)])
    assert op.upstream_task_ids == {"files"}
    assert dag.to_spec().tasks["use"].args["op_args"][0]["__xcom__"]["type"] == "map"


def test_lazy_results_apply_functions_only_to_the_elements_read() -> None:
    calls: list[int] = []

    def traced(x: int) -> int:
        calls.append(x)
        return x * 10

    mapped = MappedResult([1, 2, 3], [traced])
    assert len(mapped) == 3 and calls == []
    assert mapped[1] == 20 and calls == [2]
    assert ZippedResult([[1, 2, 3], ["a"]], NOTSET)[0] == (1, "a")
    assert len(ZippedResult([[1, 2, 3], ["a"]], NOTSET)) == 1
    padded = ZippedResult([[1, 2, 3], ["a"]], None)
    assert len(padded) == 3 and list(padded) == [(1, "a"), (2, None), (3, None)]
    with pytest.raises(IndexError):
        ZippedResult([[1], [2]], NOTSET)[1]


def test_repr_reads_like_the_dag_file() -> None:
    with DAG("d"):
        f, s = files(), sizes()
    assert repr(f.map(shout)) == "XComArg('files', key='return_value').map(shout)"
    zipped = f.zip(s, fillvalue=0)
    assert isinstance(zipped, ZipXComArg)
    assert repr(zipped).endswith(".zip(XComArg('sizes', key='return_value'), fillvalue=0)")


def test_bad_arguments_are_refused_where_they_are_written() -> None:
    with DAG("d"):
        f, s = files(), sizes()
        with pytest.raises(TypeError, match="map\\(\\) argument must be a callable, got int"):
            f.map(3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not a @task operator"):
            f.map(show)
        with pytest.raises(TypeError, match="not a task or task result"):
            f.map(s)
        with pytest.raises(ValueError, match="cannot map against non-return XCom"):
            f["other"].map(shout)
        with pytest.raises(ValueError, match="cannot map against non-return XCom"):
            f["other"].zip(s)
        with pytest.raises(TypeError, match="zip\\(\\) argument 1 must be a task's result"):
            f.zip([1, 2, 3])
        with pytest.raises(TypeError, match="cannot be indexed"):
            f.zip(s)["key"]
        assert isinstance(f.zip(s), XComArg)  # isinstance(x, XComArg) holds, as in Airflow


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("numbers().map(42)", "map() argument must be a callable, got int"),
        ("numbers().zip([1, 2])", "zip() argument 1 must be a task's result"),
        ("numbers().map(use)", "map() argument must be a plain function, not a @task operator"),
    ],
)
def test_loader_reports_file_and_line(tmp_path: Path, statement: str, message: str) -> None:
    path = write_dag(
        tmp_path,
        "bad_map.py",
        f"""
        from airflow.sdk import DAG, task

        @task
        def numbers():
            return [1, 2]

        @task
        def use(x):
            return x

        with DAG("bad_map", schedule=None):
            use.expand(x={statement})  # here
        """,
    )
    result = load_dags([str(path)])
    (problem,) = result.problems
    assert message in problem.message
    assert problem.file is not None and problem.file.endswith("bad_map.py")
    assert problem.line == line_of(path, "# here")


def test_a_composed_reference_sets_edges_from_every_task_it_reads() -> None:
    with DAG("d"):
        f, s = files(), sizes()
        after = PythonOperator(task_id="after", python_callable=print)
        f.zip(s).map(shout) >> after
    assert after.upstream_task_ids == {"files", "sizes"}
    with pytest.raises(TypeError, match="not iterable"):
        list(f.map(shout))
