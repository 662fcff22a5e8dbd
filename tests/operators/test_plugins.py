"""Operator plugins: the ``slipstream.operators`` entry point, ``slipstream operators list``,
plugin operators in ``dags test``, and plugin code carried in deployed bundles."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chalicelib.cli.main import _register_commands, app
from chalicelib.core.states import TaskState
from chalicelib.deploy.bundle import BundleError
from chalicelib.deploy.bundle_store import LocalBundleStore
from chalicelib.deploy.deployer import plan_deploy
from chalicelib.deploy.plugin_files import plugin_bundle_files, provided_plugins
from chalicelib.runtime import InMemoryXComStore, TryRequest, execute_try
from chalicelib.sdk.plugins import PluginError, load_operator, plugin_operators
from tests.deploy.projects import imports_restored, make_project
from tests.operators.plugin_dist import make_distribution
from tests.runtime.runtime_doubles import Clock, scheduled_run

_register_commands()
runner = CliRunner()

DAG_FILE = """
from chalicelib.sdk import DAG
from acme_ops.shout import ShoutOperator

with DAG("shouting", schedule=None) as dag:
    ShoutOperator(task_id="shout", text="hello {{ dag.dag_id }}")
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site folder holding the acme-ops plugin, first on sys.path for this test only."""
    folder = make_distribution(tmp_path / "site")
    with imports_restored():
        monkeypatch.syspath_prepend(str(folder))
        yield folder


def test_entry_points_register_operators(site: Path) -> None:
    (entry,) = [e for e in plugin_operators() if e.package == "acme-ops"]
    assert (entry.name, entry.module, entry.version, entry.builtin) == (
        "ShoutOperator",
        "acme_ops.shout:ShoutOperator",
        "1.2.0",
        False,
    )
    assert load_operator("ShoutOperator").__name__ == "ShoutOperator"
    with pytest.raises(PluginError, match=r"no operator plugin 'Nope'.*known: .*ShoutOperator"):
        load_operator("Nope")


def test_operators_list_shows_built_in_and_plugin_operators(site: Path) -> None:
    result = runner.invoke(app, ["operators", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["ShoutOperator"]["package"] == "acme-ops"
    assert rows["ShoutOperator"]["version"] == "1.2.0"
    assert rows["HttpOperator"]["module"] == "operators.http:HttpOperator"
    assert rows["HttpOperator"]["package"] == "slipstream"
    table = runner.invoke(app, ["operators", "list"])
    assert table.exit_code == 0
    assert "ShoutOperator" in table.output and "acme-ops" in table.output


def test_a_plugin_that_does_not_import_fails_the_listing(tmp_path: Path) -> None:
    folder = make_distribution(
        tmp_path / "broken",
        name="broken-ops",
        package="broken_ops",
        entry_points="Gone = broken_ops.missing:Gone",
    )
    with imports_restored():
        sys.path.insert(0, str(folder))
        result = runner.invoke(app, ["operators", "list", "--plugins"])
    assert result.exit_code == 1
    assert "Gone" in result.output
    assert "operator plugin 'Gone' (broken_ops.missing:Gone) does not import" in result.stderr


def test_a_plugin_operator_runs_in_dags_test(site: Path, tmp_path: Path) -> None:
    dag_file = tmp_path / "shouting.py"
    dag_file.write_text(DAG_FILE)
    result = runner.invoke(app, ["dags", "test", str(dag_file), "shouting", "--json"])
    assert result.exit_code == 0, result.output + result.stderr
    assert json.loads(result.stdout)["state"] == "success"


def test_deployed_bundles_carry_the_plugin_and_workers_use_that_copy(
    site: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    project.write("dags/shouting.py", DAG_FILE)
    plan = plan_deploy([str(project.dags / "shouting.py")], bundle_root=str(project.root))
    assert not plan.problems, plan.problems
    assert plan.bundle is not None
    shipped = [f for f in plan.bundle.files if f.startswith("_plugins/")]
    assert shipped == [
        "_plugins/acme_ops-1.2.0.dist-info/METADATA",
        "_plugins/acme_ops-1.2.0.dist-info/entry_points.txt",
        "_plugins/acme_ops/__init__.py",
        "_plugins/acme_ops/shout.py",
    ]
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    bundles.put(plan.bundle)
    # The worker has another version installed: the bundle's copy must win.
    (site / "acme_ops" / "shout.py").write_text(
        (site / "acme_ops" / "shout.py").read_text().replace('MARK = "!"', 'MARK = "?"')
    )
    for name in [n for n in sys.modules if n.startswith("acme_ops")]:
        del sys.modules[name]
    dag = bundles.load_dag(plan.bundle.key, "dags/shouting.py", "shouting")
    spec = plan.specs[0]
    request = TryRequest(dag=dag, spec=spec, run=scheduled_run("shouting"), task_id="shout")
    store = InMemoryXComStore()
    result = execute_try(request, store, clock=Clock())
    assert result.state is TaskState.SUCCESS, result.error
    assert store.pull("shout", -1, "return_value") == (True, "HELLO SHOUTING!")
    assert "cache" in sys.modules["acme_ops.shout"].__file__


def test_a_bundled_plugin_works_where_it_is_not_installed(site: Path, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    project.write("dags/shouting.py", DAG_FILE)
    plan = plan_deploy([str(project.dags / "shouting.py")], bundle_root=str(project.root))
    assert plan.bundle is not None
    shutil.rmtree(site)
    sys.path.remove(str(site))
    for name in [n for n in sys.modules if n.startswith("acme_ops")]:
        del sys.modules[name]
    bundles = LocalBundleStore(tmp_path / "bucket", cache_dir=tmp_path / "cache")
    bundles.put(plan.bundle)
    dag = bundles.load_dag(plan.bundle.key, "dags/shouting.py", "shouting")
    assert dag.get_task("shout").execute({}) == "HELLO {{ DAG.DAG_ID }}!"


def test_declared_plugins_are_left_out(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert any(entry.startswith("_plugins/acme_ops/") for entry, _ in plugin_bundle_files())
    monkeypatch.setenv("SLIPSTREAM_PROVIDED_PLUGINS", "Acme_Ops, other")
    assert provided_plugins() == {"acme-ops", "other"}
    assert not [e for e, _ in plugin_bundle_files() if e.startswith("_plugins/acme_ops")]


def test_compiled_plugins_must_be_declared(tmp_path: Path) -> None:
    folder = make_distribution(
        tmp_path / "compiled",
        name="fast-ops",
        package="fast_ops",
        entry_points="Fast = fast_ops.shout:ShoutOperator",
        extra_files={"fast_ops/_speed.cpython-311-x86_64-linux-gnu.so": b"\x7fELF"},
    )
    with imports_restored():
        sys.path.insert(0, str(folder))
        with pytest.raises(
            BundleError, match=r"fast-ops has compiled code .* SLIPSTREAM_PROVIDED_PLUGINS"
        ):
            plugin_bundle_files(provided=set())
        assert not [e for e, _ in plugin_bundle_files(provided={"fast-ops"}) if "fast_ops" in e]


def test_editable_installs_must_be_declared(tmp_path: Path) -> None:
    folder = make_distribution(
        tmp_path / "editable",
        name="dev-ops",
        package="dev_ops",
        entry_points="Dev = dev_ops.shout:ShoutOperator",
        extra_files={"__editable__.dev_ops-1.2.0.pth": "/src/dev_ops\n"},
    )
    with imports_restored():
        sys.path.insert(0, str(folder))
        with pytest.raises(BundleError, match="dev-ops is installed in editable mode"):
            plugin_bundle_files(provided=set())
