"""Jinja rendering of template fields: filters, macros, nesting, files, errors, isolation."""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from pathlib import Path
from typing import Any

import jinja2
import pytest

from chalicelib.runtime import macros
from chalicelib.runtime.context import build_context
from chalicelib.runtime.task_instance import RuntimeTaskInstance
from chalicelib.runtime.templating import (
    TemplateRenderError,
    render_template_fields,
    render_value,
    template_env,
)
from chalicelib.runtime.xcom import InMemoryXComStore
from tests.runtime.runtime_doubles import FakeDag, FakeOperator, FakeXComArg, scheduled_run

UTC = dt.timezone.utc


def make_context(dag: FakeDag, task: Any, store: InMemoryXComStore | None = None) -> dict:
    run = scheduled_run(dag.dag_id, dt.datetime(2024, 1, 31, tzinfo=UTC), conf={"c": "conf"})
    ti = RuntimeTaskInstance(
        dag_id=dag.dag_id,
        task_id=task.task_id,
        run_id=run.run_id,
        map_index=-1,
        try_number=1,
        max_tries=0,
        task=task,
        xcoms=store or InMemoryXComStore(),
        is_mapped=lambda _: False,
    )
    return build_context(dag, task, run, ti, {"x": "px"})


class TestMacros:
    def test_ds_add(self) -> None:
        assert macros.ds_add("2024-01-31", 1) == "2024-02-01"
        assert macros.ds_add("2024-03-01", -1) == "2024-02-29"
        assert macros.ds_add("2024-01-31", 0) == "2024-01-31"

    def test_ds_format(self) -> None:
        assert macros.ds_format("2015-01-01", "%Y-%m-%d", "%m-%d-%y") == "01-01-15"
        assert macros.ds_format("1/5/2015", "%m/%d/%Y", "%Y-%m-%d") == "2015-01-05"

    def test_module_attributes_are_airflows(self) -> None:
        assert macros.datetime is dt.datetime
        assert macros.timedelta is dt.timedelta
        assert callable(macros.random) and 0 <= macros.random() < 1
        assert macros.uuid.UUID and macros.json.dumps and macros.time.time
        assert macros.dateutil.relativedelta.relativedelta

    def test_diff_for_humans(self) -> None:
        earlier = dt.datetime(2024, 1, 1, tzinfo=UTC)
        later = dt.datetime(2024, 1, 1, 2, tzinfo=UTC)
        assert macros.datetime_diff_for_humans(earlier, later) == "2 hours before"


class TestInTemplates:
    @pytest.fixture
    def ctx(self) -> dict:
        dag = FakeDag("tpl")
        return make_context(dag, FakeOperator("t", dag))

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("{{ macros.ds_add(ds, 1) }}", "2024-02-01"),
            ("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}", "31/01/2024"),
            ("{{ (logical_date + macros.timedelta(days=1)) | ds }}", "2024-02-01"),
            ("{{ macros.datetime(2024, 5, 6) | ds_nodash }}", "20240506"),
            ("{{ logical_date | ts }}", "2024-01-31T00:00:00+00:00"),
            ("{{ logical_date | ts_nodash }}", "20240131T000000"),
            ("{{ logical_date | ts_nodash_with_tz }}", "20240131T000000+0000"),
            ("{{ none_value | ds }}", "None"),
            ("{% do params.update({'y': 1}) %}{{ params.y }}", "1"),
            ("{{ macros.json.dumps({'a': 1}) }}", '{"a": 1}'),
        ],
    )
    def test_filters_and_macros(self, ctx: dict, source: str, expected: str) -> None:
        ctx = {**ctx, "none_value": None, "params": dict(ctx["params"])}
        assert render_value(source, ctx, template_env(ctx["dag"])) == expected

    def test_undefined_names_fail_strictly(self, ctx: dict) -> None:
        with pytest.raises(jinja2.UndefinedError, match="'foo' is undefined"):
            render_value("{{ foo }}", ctx, template_env(ctx["dag"]))

    @pytest.mark.parametrize("source", ["plain", "trailing\n", "two\n\n", "", "a\nb"])
    def test_strings_without_markup_render_as_jinja_would(self, ctx: dict, source: str) -> None:
        expected = jinja2.Environment().from_string(source).render()
        assert render_value(source, ctx, template_env(ctx["dag"])) == expected

    def test_dunder_attributes_stay_out_of_reach(self, ctx: dict) -> None:
        with pytest.raises(jinja2.exceptions.SecurityError):
            render_value("{{ task.__class__.__mro__ }}", ctx, template_env(ctx["dag"]))


Point = namedtuple("Point", "x y")


class TestRenderTemplateFields:
    def test_nested_structures_render_leaves_and_keep_keys(self) -> None:
        dag = FakeDag("d")
        op = FakeOperator(
            "t",
            dag,
            template_fields=("command", "options", "untouched"),
            command="run {{ ds }}",
            options={
                "{{ ds }}": ["{{ params.x }}", 7, ("{{ ds_nodash }}", None)],
                "set": {"{{ run_id }}"},
                "point": Point("{{ ds }}", 1.5),
                "when": dt.date(2024, 1, 1),
            },
            untouched=None,
        )
        rendered = render_template_fields(op, make_context(dag, op))
        assert rendered.command == "run 2024-01-31"
        assert rendered.options == {
            "{{ ds }}": ["px", 7, ("20240131", None)],
            "set": {"scheduled__2024-01-31T00:00:00+00:00"},
            "point": Point("2024-01-31", 1.5),
            "when": dt.date(2024, 1, 1),
        }
        assert isinstance(rendered.options["point"], Point)
        assert rendered.untouched is None

    def test_the_dags_operator_is_never_changed(self) -> None:
        dag = FakeDag("d")
        options = {"a": ["{{ ds }}"]}
        op = FakeOperator(
            "t", dag, template_fields=("cmd", "options"), cmd="{{ ds }}", options=options
        )
        rendered = render_template_fields(op, make_context(dag, op))
        assert rendered is not op
        assert op.cmd == "{{ ds }}"
        assert op.options is options and options == {"a": ["{{ ds }}"]}
        assert rendered.options["a"] == ["2024-01-31"]

    def test_template_files_are_read_from_the_dag_folder(self, tmp_path: Path) -> None:
        (tmp_path / "scripts").mkdir()
        (tmp_path / "scripts" / "load.sh").write_text("load {{ ds }} for {{ params.x }}\n")
        dag = FakeDag("d", fileloc=str(tmp_path / "my_dag.py"))
        op = FakeOperator(
            "t",
            dag,
            template_fields=("cmd", "literal"),
            cmd="scripts/load.sh",
            literal="scripts/load.sh ",
        )
        op.template_ext = (".sh", ".bash")
        rendered = render_template_fields(op, make_context(dag, op))
        assert rendered.cmd == "load 2024-01-31 for px"
        assert rendered.literal == "scripts/load.sh "

    def test_template_searchpath_is_searched_after_the_dag_folder(self, tmp_path: Path) -> None:
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "q.sql").write_text("select '{{ ds }}'")
        dag = FakeDag(
            "d",
            fileloc=str(tmp_path / "dags" / "x.py"),
            template_searchpath=[str(tmp_path / "shared")],
        )
        op = FakeOperator("t", dag, template_fields=("sql",), sql="q.sql")
        op.template_ext = (".sql",)
        assert render_template_fields(op, make_context(dag, op)).sql == "select '2024-01-31'"

    def test_a_missing_template_file_names_task_field_and_searchpath(self, tmp_path: Path) -> None:
        dag = FakeDag("d", fileloc=str(tmp_path / "x.py"))
        op = FakeOperator("load", dag, template_fields=("cmd",), cmd="nope.sh")
        op.template_ext = (".sh",)
        with pytest.raises(TemplateRenderError) as caught:
            render_template_fields(op, make_context(dag, op))
        message = str(caught.value)
        assert "task 'load' field 'cmd'" in message and "'nope.sh'" in message
        assert str(tmp_path) in message

    def test_undefined_error_names_task_and_field(self) -> None:
        dag = FakeDag("d")
        op = FakeOperator("x", dag, template_fields=("bash_command",), bash_command="{{ foo }}")
        with pytest.raises(TemplateRenderError) as caught:
            render_template_fields(op, make_context(dag, op))
        assert str(caught.value) == "task 'x' field 'bash_command': 'foo' is undefined"

    def test_syntax_error_names_task_field_and_line(self) -> None:
        dag = FakeDag("d")
        op = FakeOperator("x", dag, template_fields=("cmd",), cmd="ok\n{{ ds ")
        with pytest.raises(TemplateRenderError, match=r"task 'x' field 'cmd': .*:2\)"):
            render_template_fields(op, make_context(dag, op))

    def test_xcom_args_are_resolved_and_their_values_not_rendered(self) -> None:
        dag = FakeDag("d")
        upstream = FakeOperator("up", dag)
        store = InMemoryXComStore()
        store.push("up", -1, "return_value", "{{ not a template }}")
        op = FakeOperator(
            "t", dag, template_fields=("args",), args=[FakeXComArg(upstream), "{{ ds }}"]
        )
        rendered = render_template_fields(op, make_context(dag, op, store))
        assert rendered.args == ["{{ not a template }}", "2024-01-31"]

    def test_objects_with_their_own_template_fields_are_rendered_on_a_copy(self) -> None:
        class Query:
            template_fields = ("sql",)

            def __init__(self, sql: str):
                self.sql = sql

        dag = FakeDag("d")
        query = Query("select {{ ds_nodash }}")
        op = FakeOperator("t", dag, template_fields=("query",), query=query)
        rendered = render_template_fields(op, make_context(dag, op))
        assert rendered.query.sql == "select 20240131"
        assert query.sql == "select {{ ds_nodash }}"

    def test_user_macros_and_filters_from_the_dag(self) -> None:
        dag = FakeDag(
            "macro_dag",
            user_defined_macros={"project": "acme"},
            user_defined_filters={"shout": lambda s: s.upper()},
        )
        op = FakeOperator("t", dag, template_fields=("cmd",), cmd="{{ project | shout }}")
        assert render_template_fields(op, make_context(dag, op)).cmd == "ACME"

    def test_native_rendering_when_the_dag_asks_for_it(self) -> None:
        dag = FakeDag("native", render_template_as_native_obj=True)
        op = FakeOperator(
            "t", dag, template_fields=("n", "items"), n="{{ 1 + 2 }}", items="{{ [ds, 5] }}"
        )
        rendered = render_template_fields(op, make_context(dag, op))
        assert rendered.n == 3
        assert rendered.items == ["2024-01-31", 5]

    def test_the_environment_is_built_once_per_dag(self) -> None:
        dag = FakeDag("d")
        assert template_env(dag) is template_env(dag)
        assert template_env(dag) is not template_env(FakeDag("d"))
