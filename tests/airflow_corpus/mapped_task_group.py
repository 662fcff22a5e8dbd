"""A mapped task group, as Airflow 2.5+ writes it: ``@task_group`` with ``.expand``.

Each file is processed by the same tasks, index by index; a branch inside the
group skips the upload of the empty file only; the report outside the group
gets every upload's result as a list. Tasks assert what they get, so a wrong
value fails the run.
"""

import pendulum
from airflow.decorators import dag, task, task_group
from airflow.operators.python import get_current_context

FILES = ["a.csv", "empty.csv", "cc.csv"]


@dag(start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule=None, catchup=False)
def corpus_mapped_task_group():
    @task
    def list_files():
        return FILES

    @task_group
    def process(name, prefix):
        @task(map_index_template="{{ task.op_kwargs['name'] }}")
        def read(name, prefix):
            assert get_current_context()["ti"].map_index == FILES.index(name)
            return {"name": prefix + name, "rows": 0 if name.startswith("empty") else len(name)}

        @task.branch
        def has_rows(stats):
            return "process.upload" if stats["rows"] else "process.note_empty"

        @task
        def upload(stats, name):
            assert stats["name"] == "in/" + name, (stats, name)
            return stats["rows"]

        @task
        def note_empty(name):
            assert name == "empty.csv"

        stats = read(name=name, prefix=prefix)
        uploaded = upload(stats, name)
        has_rows(stats) >> [uploaded, note_empty(name)]
        return uploaded

    @task(trigger_rule="none_failed")
    def report(rows):
        assert sorted(rows) == [5, 6], rows

    report(process.partial(prefix="in/").expand(name=list_files()))


corpus_mapped_task_group()
