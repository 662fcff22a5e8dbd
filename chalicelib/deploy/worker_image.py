"""``make worker-image STAGE=dev``: build infra/worker.Dockerfile, push it to the
stage's ECR repository tagged with the git commit, and point the stage's worker
task definition at it.

Every outside effect is a command line (``docker``, ``aws``, ``git``) run
through a :class:`Runner`, so the plan can be printed before anything runs
and tests can check the exact command lines with a fake runner: this machine
(and CI) has no Docker engine, and a real build is never needed to know what
would be built. What is missing (docker, its engine, the AWS CLI,
credentials, the stack or its repository output) stops the command with one
line before any step runs.

The image reaches the task definition through the infra stack's
``WorkerImage`` parameter (``aws cloudformation deploy`` keeps every other
parameter's previous value), not a RegisterTaskDefinition call beside it: the
stack stays the one source of truth, and its ``WorkerImage`` output is what
``stage wire`` passes to the functions as ``SLIPSTREAM_DEFAULT_IMAGE``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.deploy.stage_wiring import WiringError, check_stage_name

DOCKERFILE = "infra/worker.Dockerfile"
TEMPLATE = "infra/stack.yaml"
REPOSITORY_OUTPUT = "WorkerRepositoryUri"
PLATFORM = "linux/amd64"  # the task definition's RuntimePlatform (X86_64)


class ImageError(RuntimeError):
    """What stops the command before any step runs, as one line."""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> Finished: ...


def subprocess_runner(argv: Sequence[str], *, stdin: str | None = None) -> Finished:
    """Runs a command, capturing its output (the real runner)."""
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    return Finished(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Step:
    """One command of the plan. ``stdin_from`` names an earlier step whose output
    this one reads (the registry password goes from the AWS CLI to docker login
    without being printed or put on a command line)."""

    name: str
    argv: tuple[str, ...]
    stdin_from: str | None = None
    secret_output: bool = False


@dataclass(frozen=True)
class ImagePlan:
    stage: str
    stack: str
    image: str
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        shown = [f"make worker-image STAGE={self.stage} will build and push {self.image}:"]
        for number, step in enumerate(self.steps, 1):
            piped = f" < ({step.stdin_from})" if step.stdin_from else ""
            shown.append(f"  {number}. {step.name}: {' '.join(step.argv)}{piped}")
        return shown


def _aws(region: str | None, *args: str) -> tuple[str, ...]:
    return ("aws", *args, *(("--region", region) if region else ()))


def _ok(runner: Runner, argv: Sequence[str], refusal: str) -> str:
    done = runner(argv)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ImageError(f"{refusal}{': ' + detail[-1] if detail else ''}")
    return done.stdout


def check_tools(which: Callable[[str], str | None], runner: Runner) -> None:
    """docker with a running engine, and the AWS CLI."""
    if which("docker") is None:
        raise ImageError("docker is not installed: install Docker to build the worker image")
    _ok(
        runner, ("docker", "info", "--format", "{{.ServerVersion}}"), "docker has no running engine"
    )
    if which("aws") is None:
        raise ImageError("the AWS CLI (aws) is not installed: it logs docker in to ECR")


def stack_repository(runner: Runner, stack: str, region: str | None) -> tuple[str, str]:
    """The stage's repository URI and the stack's region; refuses without
    credentials or without the stack output."""
    _ok(
        runner,
        _aws(region, "sts", "get-caller-identity", "--output", "json"),
        "no usable AWS credentials (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, and AWS_REGION)",
    )
    described = _ok(
        runner,
        _aws(
            region, "cloudformation", "describe-stacks", "--stack-name", stack, "--output", "json"
        ),
        f"cannot read stack {stack}: deploy it first (make deploy)",
    )
    try:
        (entry,) = json.loads(described)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in entry.get("Outputs") or []}
        stack_region = str(entry["StackId"]).split(":")[3]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ImageError(f"stack {stack}: unexpected describe-stacks answer ({exc})") from exc
    uri = outputs.get(REPOSITORY_OUTPUT)
    if not uri:
        raise ImageError(
            f"stack {stack} has no output {REPOSITORY_OUTPUT}: deploy infra/stack.yaml of "
            "this version first (make deploy)"
        )
    return uri, stack_region


def image_tag(runner: Runner) -> str:
    """The commit the image is built from; ``-dirty`` when the work tree has
    uncommitted changes, so a tag never claims a commit it does not match."""
    commit = _ok(runner, ("git", "rev-parse", "--short=12", "HEAD"), "not a git checkout").strip()
    status = _ok(
        runner, ("git", "status", "--porcelain", "--untracked-files=no"), "git status failed"
    )
    return f"{commit}-dirty" if status.strip() else commit


def build_plan(stage: str, stack: str, repository_uri: str, region: str, tag: str) -> ImagePlan:
    """The commands, in order: log in, build, push, update the task definition."""
    registry = repository_uri.split("/", 1)[0]
    image = f"{repository_uri}:{tag}"
    steps = (
        Step(
            "registry password",
            ("aws", "ecr", "get-login-password", "--region", region),
            secret_output=True,
        ),
        Step(
            "docker login",
            ("docker", "login", "--username", "AWS", "--password-stdin", registry),
            stdin_from="registry password",
        ),
        Step(
            "build",
            ("docker", "build", "--platform", PLATFORM, "-f", DOCKERFILE, "-t", image, "."),
        ),
        Step("push", ("docker", "push", image)),
        Step(
            "task definition",
            (
                "aws", "cloudformation", "deploy", "--stack-name", stack,
                "--template-file", TEMPLATE, "--capabilities", "CAPABILITY_IAM",
                "--no-fail-on-empty-changeset", "--region", region,
                "--parameter-overrides", f"Stage={stage}", f"WorkerImage={image}",
            ),
        ),
    )  # fmt: skip
    return ImagePlan(stage, stack, image, steps)


def run_plan(plan: ImagePlan, runner: Runner, echo: Callable[[str], None]) -> None:
    """Each step in order; the first failing one stops the rest."""
    outputs: dict[str, str] = {}
    for step in plan.steps:
        stdin = outputs[step.stdin_from] if step.stdin_from else None
        echo(f"-> {step.name}")
        done = runner(step.argv, stdin=stdin)
        if done.returncode != 0:
            detail = (done.stderr or "").strip().splitlines()
            raise ImageError(
                f"{step.name} failed ({' '.join(step.argv[:3])}...)"
                f"{': ' + detail[-1] if detail else ''}"
            )
        outputs[step.name] = done.stdout
        if done.stdout and not step.secret_output:
            echo(done.stdout.rstrip())


def prepare(
    stage: str,
    stack: str,
    region: str | None,
    runner: Runner,
    which: Callable[[str], str | None] = shutil.which,
) -> ImagePlan:
    """Every check, then the plan; nothing is built or pushed here."""
    try:
        check_stage_name(stage)
    except WiringError as exc:
        raise ImageError(str(exc)) from exc
    check_tools(which, runner)
    uri, stack_region = stack_repository(runner, stack, region)
    return build_plan(stage, stack, uri, region or stack_region, image_tag(runner))


def main(argv: Sequence[str] | None = None, runner: Runner = subprocess_runner) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.deploy.worker_image")
    parser.add_argument("--stage", required=True)
    parser.add_argument(
        "--stack", help="the stage's infra stack (default slipstream-<stage>-infra)"
    )
    parser.add_argument("--region", help="default: AWS_REGION / your profile")
    parser.add_argument("--plan", action="store_true", help="print the steps, run none")
    args = parser.parse_args(argv)
    stack = args.stack or f"slipstream-{args.stage}-infra"
    try:
        plan = prepare(args.stage, stack, args.region, runner)
        for line in plan.lines():
            print(line)
        if args.plan:
            return 0
        run_plan(plan, runner, print)
    except ImageError as exc:
        print(f"worker-image: {exc}", file=sys.stderr)
        return 2
    print(f"pushed {plan.image}; run make deploy STAGE={args.stage} to pass it to the functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
