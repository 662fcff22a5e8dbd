"""The layers point one way: core <- sdk <- runtime <- local/cli, operators beside them.

chalicelib.secrets is an adapter on core; the SDK may import its pure modules
(the AWS ones load lazily, checked by importing the SDK in a fresh interpreter).

Checked from the source with ``ast`` so that an import hidden in a function
body or under ``TYPE_CHECKING`` counts too: it is still a dependency. Each
failure names file:line so the fix is one click away.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

AWS_LIBRARIES = ("boto3", "botocore", "pynamodb", "chalice", "aws_lambda_powertools")


@dataclass(frozen=True)
class Rule:
    """Modules under ``package_dir`` must not import any of ``forbidden``."""

    name: str
    package_dir: str
    forbidden: tuple[str, ...]


RULES = (
    Rule(
        "core is pure: no AWS library, no upper layer",
        "chalicelib/core",
        AWS_LIBRARIES
        + tuple(
            f"chalicelib.{layer}"
            for layer in (
                "sdk",
                "runtime",
                "cli",
                "local",
                "store",
                "executors",
                "api",
                "secrets",
            )
        ),
    ),
    Rule(
        "sdk sits on core only",
        "chalicelib/sdk",
        tuple(
            f"chalicelib.{layer}"
            for layer in ("runtime", "local", "cli", "store", "executors", "api")
        ),
    ),
    Rule(
        "secrets is an adapter on core only: no SDK, runtime or other adapter",
        "chalicelib/secrets",
        tuple(
            f"chalicelib.{layer}"
            for layer in (
                "sdk",
                "runtime",
                "local",
                "cli",
                "store",
                "executors",
                "scheduler",
                "deploy",
                "api",
                "wiring",
            )
        ),
    ),
    Rule(
        "runtime does not reach up to local, cli or api",
        "chalicelib/runtime",
        tuple(f"chalicelib.{layer}" for layer in ("local", "cli", "api")),
    ),
    Rule(
        "operators use sdk and runtime, never cli, local, store or api",
        "operators",
        tuple(f"chalicelib.{layer}" for layer in ("cli", "local", "store", "api")),
    ),
)

# (path relative to the repo, forbidden prefix from RULES) -> why that import is acceptable.
# Empty on purpose: an entry here is a decision to write down in docs/architecture.md.
ALLOWED: dict[tuple[str, str], str] = {
    ("chalicelib/sdk/dag.py", "chalicelib.local"): (
        "DAG.test() is Airflow's authoring-time entry to a local run; it imports the "
        "local runner lazily, only when called, so DAG files never load it"
    ),
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.imported}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """Every module an import statement in ``path`` may load, with its line.

    ``from pkg import name`` yields both ``pkg`` and ``pkg.name`` because
    ``name`` may be a submodule; relative imports are made absolute.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    this_module = module_name(path, root)
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package_parts = this_module.split(".")
                if not is_package:
                    package_parts.pop()
                kept = package_parts[: len(package_parts) - (node.level - 1)]
                base = ".".join([*kept, base] if base else kept)
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(rule: Rule, root: Path) -> list[Violation]:
    result: list[Violation] = []
    for path in sorted((root / rule.package_dir).rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        seen: set[tuple[int, str]] = set()
        for line, module in imported_modules(path, root):
            for prefix in rule.forbidden:
                allowed = (relative, prefix) in ALLOWED
                if matches(module, prefix) and not allowed and (line, prefix) not in seen:
                    seen.add((line, prefix))
                    result.append(Violation(relative, line, module))
    return result


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.package_dir)
def test_layer_imports_only_what_its_rule_allows(rule: Rule) -> None:
    if not any((REPO_ROOT / rule.package_dir).rglob("*.py")):
        pytest.skip(f"{rule.package_dir} has no modules yet")

    found = violations(rule, REPO_ROOT)

    assert not found, f"{rule.name}:\n" + "\n".join(f"  {v}" for v in found)


def test_core_has_modules_to_check() -> None:
    assert len(list((REPO_ROOT / "chalicelib" / "core").rglob("*.py"))) > 1


def test_checker_catches_absolute_relative_and_nested_imports(tmp_path: Path) -> None:
    core = tmp_path / "chalicelib" / "core"
    core.mkdir(parents=True)
    (tmp_path / "chalicelib" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("from .. import sdk\n")
    (core / "clean.py").write_text("import json\nfrom chalicelib.core import spec\n")
    (core / "dirty.py").write_text(
        "import os\n"
        "import boto3.session\n"
        "from ..runtime.worker import run\n"
        "def later():\n"
        "    from chalice import Chalice\n"
        "from chalicelib.store import models\n"
    )

    found = {str(v) for v in violations(RULES[0], tmp_path)}

    assert found == {
        "chalicelib/core/__init__.py:1 imports chalicelib.sdk",
        "chalicelib/core/dirty.py:2 imports boto3.session",
        "chalicelib/core/dirty.py:3 imports chalicelib.runtime.worker",
        "chalicelib/core/dirty.py:5 imports chalice",
        "chalicelib/core/dirty.py:6 imports chalicelib.store",
    }


def test_checker_does_not_mistake_chalicelib_for_chalice(tmp_path: Path) -> None:
    core = tmp_path / "chalicelib" / "core"
    core.mkdir(parents=True)
    (core / "a.py").write_text("import chalicelib.core.spec\nfrom chalicelib import core\n")

    assert violations(RULES[0], tmp_path) == []


_IMPORT_CORE_AND_REPORT = """
import importlib, json, pkgutil, sys
aws = {aws!r}

def loaded():
    return sorted(a for a in aws if a in sys.modules)

import chalicelib.core
init = loaded()
culprits = {{}}
for info in pkgutil.walk_packages(chalicelib.core.__path__, "chalicelib.core."):
    before = set(loaded())
    importlib.import_module(info.name)
    new = [m for m in loaded() if m not in before]
    if new:
        culprits[info.name] = new
print(json.dumps({{"init": init, "culprits": culprits}}))
"""


_IMPORT_SDK_AND_REPORT = """
import json, sys
import chalicelib.sdk, chalicelib.sdk.hooks, chalicelib.sdk.variables
print(json.dumps(sorted(a for a in {aws!r} if a in sys.modules)))
"""


def test_importing_the_sdk_loads_no_aws_library() -> None:
    """DAG files are imported by authoring tools with no AWS at hand; connections load lazily."""
    completed = subprocess.run(
        [sys.executable, "-c", _IMPORT_SDK_AND_REPORT.format(aws=AWS_LIBRARIES)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"importing chalicelib.sdk failed:\n{completed.stderr}"

    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def test_importing_all_of_core_loads_no_aws_library() -> None:
    """The source check misses imports done by third-party packages core uses; this does not."""
    script = _IMPORT_CORE_AND_REPORT.format(aws=AWS_LIBRARIES)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"importing chalicelib.core failed:\n{completed.stderr}"
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    assert report["init"] == [], f"chalicelib.core itself loads {report['init']}"
    assert report["culprits"] == {}, "\n".join(
        f"  {module} loads {', '.join(mods)}" for module, mods in report["culprits"].items()
    )
