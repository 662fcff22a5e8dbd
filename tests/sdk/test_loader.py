from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.core.errors import DagValidationError, SlipstreamError
from chalicelib.sdk.loader import load_dag, load_dag_spec, load_dags
from tests.sdk.dagfiles import line_of, write_dag

GOOD = """
from chalicelib.sdk import DAG
from operators.empty import EmptyOperator
with DAG("{dag_id}"):  # dag
    EmptyOperator(task_id="a")
"""


def test_folder_loads_every_dag_file_and_skips_private_ones(tmp_path: Path) -> None:
    write_dag(tmp_path, "one.py", GOOD.format(dag_id="one"))
    sub = tmp_path / "team"
    sub.mkdir()
    write_dag(sub, "two.py", GOOD.format(dag_id="two"))
    write_dag(tmp_path, "_helpers.py", "raise RuntimeError('never imported')\n")

    result = load_dags([str(tmp_path)])

    assert result.problems == []
    assert sorted(result.dags) == ["one", "two"]
    assert result.dag_files["two"] == str(sub / "two.py")


def test_sibling_helper_modules_import(tmp_path: Path) -> None:
    write_dag(tmp_path, "_shared.py", "TASK_ID = 'from_helper'\n")
    write_dag(
        tmp_path,
        "uses_helper.py",
        """
        from _shared import TASK_ID
        from chalicelib.sdk import DAG
        from operators.empty import EmptyOperator
        with DAG("helper"):
            EmptyOperator(task_id=TASK_ID)
        """,
    )

    result = load_dags([str(tmp_path / "uses_helper.py")])

    assert result.problems == []
    assert result.dags["helper"].task_ids == ["from_helper"]


def test_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "broken.py", "x = 1\ndef f(:\n    pass\n")

    result = load_dags([str(path)])

    assert result.dags == {}
    (problem,) = result.problems
    assert problem.file is not None and problem.file.endswith("broken.py")
    assert problem.line == 2 and problem.message.startswith("syntax error")


def test_exception_during_import_points_at_the_line_in_the_dag_file(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "explodes.py",
        """
        import json
        from chalicelib.sdk import DAG
        with DAG("explodes"):
            json.loads("{not json")  # boom
        """,
    )

    (problem,) = load_dags([str(path)]).problems

    assert problem.line == line_of(path, "# boom")
    assert problem.message.startswith("error while importing: JSONDecodeError")
    assert "(raised at " in problem.message


def test_a_missing_module_names_the_import_line_not_the_import_machinery(
    tmp_path: Path,
) -> None:
    path = write_dag(tmp_path, "missing.py", "import no_such_module_anywhere  # here\n")

    (problem,) = load_dags([str(path)]).problems

    assert problem.line == line_of(path, "# here")
    assert "No module named 'no_such_module_anywhere'" in problem.message
    assert "raised at" not in problem.message


def test_unknown_operator_argument_at_import_is_located(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "typo.py",
        """
        from chalicelib.sdk import DAG
        from operators.empty import EmptyOperator
        with DAG("typo"):
            EmptyOperator(task_id="a", retires=3)  # typo
        """,
    )

    (problem,) = load_dags([str(path)]).problems

    assert problem.line == line_of(path, "# typo")
    assert "EmptyOperator (task_id: 'a')" in problem.message and "retires" in problem.message


def test_duplicate_dag_ids_across_files(tmp_path: Path) -> None:
    first = write_dag(tmp_path, "a.py", GOOD.format(dag_id="same"))
    second = write_dag(tmp_path, "b.py", GOOD.format(dag_id="same"))

    result = load_dags([str(tmp_path)])

    (problem,) = result.problems
    assert problem.file is not None and problem.file.endswith("b.py")
    assert problem.line == line_of(second, "# dag")
    assert f"already defined at {first}:{line_of(first, '# dag')}" in problem.message
    assert result.dag_files["same"] == str(first)


def test_dag_without_a_global_name_is_still_found(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "anon.py", GOOD.format(dag_id="anon"))

    assert load_dag(str(path), "anon").dag_id == "anon"


def test_missing_path_and_missing_dag(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "one.py", GOOD.format(dag_id="one"))

    (problem,) = load_dags([str(tmp_path / "nope.py")]).problems
    assert problem.message == "no such file or directory"
    with pytest.raises(SlipstreamError, match=r"no DAG 'two' in .*one\.py; found: one"):
        load_dag(str(path), "two")


def test_load_dag_spec_raises_with_every_problem_of_the_file(tmp_path: Path) -> None:
    path = write_dag(
        tmp_path,
        "bad.py",
        """
        from chalicelib.sdk import DAG
        from operators.empty import EmptyOperator
        with DAG("bad", max_active_runs=0):
            EmptyOperator(task_id="a", retries=-1)
            EmptyOperator(task_id="a")
        """,
    )

    with pytest.raises(DagValidationError) as caught:
        load_dag_spec(str(path), "bad")

    assert len(caught.value.problems) == 3
    good = write_dag(tmp_path / ".." / tmp_path.name, "good.py", GOOD.format(dag_id="good"))
    assert load_dag_spec(str(good), "good", bundle_root=str(tmp_path)).fileloc == "good.py"


def test_load_dag_raises_import_errors(tmp_path: Path) -> None:
    path = write_dag(tmp_path, "broken.py", "def f(:\n")

    with pytest.raises(DagValidationError, match="syntax error"):
        load_dag(str(path), "anything")
