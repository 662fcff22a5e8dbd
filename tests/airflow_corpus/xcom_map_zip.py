"""Airflow's XComArg.map and XComArg.zip feeding dynamic task mapping, as in its docs."""

import pendulum
from airflow.decorators import dag, task
from airflow.exceptions import AirflowSkipException
from airflow.operators.python import PythonOperator


def copy_kwargs(name):
    """Runs in each copy instance: a temporary file skips just that instance."""
    if name.startswith("_"):
        raise AirflowSkipException(f"{name} is a temporary file")
    return {"source": name, "dest": f"archive/{name}"}


def describe(name, size):
    return f"{name} has {size} rows"


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False)
def corpus_xcom_map_zip():
    @task
    def list_files():
        return ["a.csv", "b.csv", "_tmp.csv"]

    @task
    def count_rows():
        return [10, 20]

    @task
    def copy(source, dest):
        return f"{source}->{dest}"

    @task
    def pair(item):
        name, size = item
        return f"{name}:{size}"

    files = list_files()
    rows = count_rows()
    copied = copy.expand_kwargs(files.map(copy_kwargs))
    shortest = pair.override(task_id="pair_shortest").expand(item=files.zip(rows))
    longest = pair.override(task_id="pair_longest").expand(item=files.zip(rows, fillvalue=0))
    upper = pair.override(task_id="pair_upper").expand(
        item=files.zip(rows).map(lambda p: (p[0].upper(), p[1]))
    )
    described = PythonOperator.partial(task_id="describe", python_callable=describe).expand(
        op_args=files.zip(rows)
    )

    @task(trigger_rule="none_failed")  # one copy instance skipped itself
    def verify(copied, shortest, longest, upper, described):
        assert list(copied) == ["a.csv->archive/a.csv", "b.csv->archive/b.csv"], copied
        assert list(shortest) == ["a.csv:10", "b.csv:20"], shortest
        assert list(longest) == ["a.csv:10", "b.csv:20", "_tmp.csv:0"], longest
        assert list(upper) == ["A.CSV:10", "B.CSV:20"], upper
        assert list(described) == ["a.csv has 10 rows", "b.csv has 20 rows"], described

    verify(copied, shortest, longest, upper, described.output)


corpus_xcom_map_zip()
