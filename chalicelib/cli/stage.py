"""``slipstream stage``: wire a stage from its infra stack, and check before a deploy.

``stage wire`` is the documented step between ``infra/stack.yaml`` and the
functions (docs/deploying.md): it reads the stack's outputs and writes the
stage's entry of ``.chalice/config.json``, its policy files and its merge
template (``chalicelib/deploy/stage_wiring.py`` decides what). ``stage
preflight`` is what ``make deploy`` and ``make destroy`` run first, so that a
machine without credentials gets one line instead of a traceback halfway in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from chalicelib.cli.main import app
from chalicelib.cli.remote import EXIT_BAD_INPUT, EXIT_UNREACHABLE, bad_input, fail

stage_app = typer.Typer(help="Wire a stage from its infra stack; check credentials.")
app.add_typer(stage_app, name="stage")

StageName = Annotated[str, typer.Option("--stage", help="The stage (local, dev, prod, ...).")]
Region = Annotated[
    str | None,
    typer.Option("--region", help="Default: AWS_REGION / AWS_DEFAULT_REGION / your profile."),
]


def _session(region: str | None) -> Any:
    import os

    import boto3  # type: ignore[import-untyped]

    # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what Lambda and the docs set.
    return boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)


def _aws_line(exc: BaseException, what: str) -> tuple[str, int] | None:
    """One line for the AWS errors a user can fix; None for anything else."""
    from botocore import exceptions as boto  # type: ignore[import-untyped]

    if isinstance(exc, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return (
            f"{what}: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY",
            EXIT_BAD_INPUT,
        )
    if isinstance(exc, boto.NoRegionError):
        return f"{what}: no AWS region: set AWS_REGION or pass --region", EXIT_BAD_INPUT
    if isinstance(exc, (boto.EndpointConnectionError, boto.ConnectTimeoutError)):
        return f"{what}: cannot reach AWS: {exc}", EXIT_UNREACHABLE
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        return f"{what}: {error.get('Code')}: {error.get('Message')}", EXIT_BAD_INPUT
    return None


def _valid_stage(stage: str) -> str:
    from chalicelib.deploy.stage_wiring import WiringError, check_stage_name

    try:
        check_stage_name(stage)
    except WiringError as exc:
        bad_input(f"--stage: {exc}")
    return stage


@stage_app.command("wire")
def wire(
    stage: StageName,
    from_stack: Annotated[
        str, typer.Option("--from-stack", help="Name of the stage's infra stack.")
    ],
    project: Annotated[Path, typer.Option("--project", help="Project folder.")] = Path("."),
    region: Region = None,
) -> None:
    """Write the stage's environment, policies and merge template from STACK's outputs."""
    from chalicelib.deploy.stage_wiring import StackFacts, WiringError, wire_project

    _valid_stage(stage)
    if not (project / ".chalice" / "config.json").is_file():
        bad_input(f"{project}/.chalice/config.json not found: --project is the folder of app.py")
    try:
        described = (
            _session(region)
            .client("cloudformation")
            .describe_stacks(StackName=from_stack)["Stacks"][0]
        )
    except Exception as exc:
        line = _aws_line(exc, f"reading stack {from_stack!r}")
        if line is None:
            raise
        fail("", *line)
    try:
        facts = StackFacts.from_description(stage, described)
        written = wire_project(project, facts)
    except WiringError as exc:
        bad_input(f"stack {from_stack!r}: {exc}")
    for path in written:
        typer.echo(f"wrote {path}")


@stage_app.command("preflight")
def preflight(stage: StageName, region: Region = None) -> None:
    """Who and where a deploy would act as; one line and exit 2 without credentials."""
    _valid_stage(stage)
    try:
        session = _session(region)
        if session.region_name is None:
            bad_input(f"stage {stage}: no AWS region: set AWS_REGION or pass --region")
        identity = session.client("sts").get_caller_identity()
    except Exception as exc:
        line = _aws_line(exc, f"stage {stage}")
        if line is None:
            raise
        fail("", *line)
    typer.echo(
        f"stage {stage}: account {identity['Account']}, region {session.region_name}, "
        f"as {identity['Arn']}"
    )


@stage_app.command("env")
def env(
    stage: StageName,
    project: Annotated[Path, typer.Option("--project", help="Project folder.")] = Path("."),
) -> None:
    """Print the wired stage's variables as ``export`` lines, for commands run from a
    laptop against the stage (``eval "$(... stage env --stage dev)"; slipstream dags deploy``)."""
    import json
    import shlex

    _valid_stage(stage)
    path = project / ".chalice" / "config.json"
    try:
        stages = json.loads(path.read_text()).get("stages", {})
    except (OSError, ValueError) as exc:
        bad_input(f"{path}: {exc}")
    variables = (stages.get(stage) or {}).get("environment_variables") or {}
    if "SLIPSTREAM_BUCKET" not in variables:
        bad_input(
            f"stage {stage!r} is not wired: run `stage wire --stage {stage} --from-stack ...`"
        )
    for name, value in sorted(variables.items()):
        if name.startswith("SLIPSTREAM_"):
            typer.echo(f"export {name}={shlex.quote(value)}")
