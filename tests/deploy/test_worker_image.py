"""``make worker-image``: the command lines it would run, in order, and the one-line
refusals when docker, its engine, the AWS CLI, credentials or the stack output are
missing. A fake runner stands in for docker/aws/git: nothing is built or pushed."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from chalicelib.deploy.worker_image import (
    DOCKERFILE,
    Finished,
    ImageError,
    build_plan,
    main,
    prepare,
    run_plan,
)

ROOT = Path(__file__).resolve().parents[2]
URI = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/slipstream-dev-worker"
STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/slipstream-dev-infra/abc"


class FakeRunner:
    """Answers each command by its first words; records every call with its stdin."""

    def __init__(self, answers: dict[str, Finished] | None = None) -> None:
        outputs = [{"OutputKey": "WorkerRepositoryUri", "OutputValue": URI}]
        self.answers = {
            "docker info": Finished(0, "27.0.1\n"),
            "aws sts": Finished(0, '{"Account": "123456789012"}'),
            "aws cloudformation describe-stacks": Finished(
                0, json.dumps({"Stacks": [{"StackId": STACK_ID, "Outputs": outputs}]})
            ),
            "git rev-parse": Finished(0, "0123456789ab\n"),
            "git status": Finished(0, ""),
            "aws ecr": Finished(0, "s3cr3t-password"),
            **(answers or {}),
        }
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def __call__(self, argv: Sequence[str], *, stdin: str | None = None) -> Finished:
        self.calls.append((tuple(argv), stdin))
        for prefix, answer in sorted(self.answers.items(), key=lambda kv: -len(kv[0])):
            if " ".join(argv).startswith(prefix):
                return answer
        return Finished(0)


def _which(*missing: str) -> Callable[[str], str | None]:
    return lambda name: None if name in missing else f"/usr/bin/{name}"


def test_the_plan_logs_in_builds_pushes_and_updates_the_task_definition() -> None:
    runner = FakeRunner()
    plan = prepare("dev", "slipstream-dev-infra", None, runner, which=_which())
    image = f"{URI}:0123456789ab"
    assert plan.image == image
    assert [step.argv for step in plan.steps] == [
        ("aws", "ecr", "get-login-password", "--region", "eu-west-1"),
        ("docker", "login", "--username", "AWS", "--password-stdin", URI.split("/")[0]),
        ("docker", "build", "--platform", "linux/amd64", "-f", DOCKERFILE, "-t", image, "."),
        ("docker", "push", image),
        (
            "aws", "cloudformation", "deploy", "--stack-name", "slipstream-dev-infra",
            "--template-file", "infra/stack.yaml", "--capabilities", "CAPABILITY_IAM",
            "--no-fail-on-empty-changeset", "--region", "eu-west-1",
            "--parameter-overrides", "Stage=dev", f"WorkerImage={image}",
        ),
    ]  # fmt: skip
    # Checks only: nothing was built, pushed or deployed while preparing.
    assert {argv[:2] for argv, _ in runner.calls} == {
        ("docker", "info"),
        ("aws", "sts"),
        ("aws", "cloudformation"),
        ("git", "rev-parse"),
        ("git", "status"),
    }
    printed = "\n".join(plan.lines())
    assert "docker push" in printed and "s3cr3t" not in printed


def test_running_the_plan_pipes_the_password_to_docker_login_and_never_prints_it() -> None:
    runner = FakeRunner()
    plan = build_plan("dev", "slipstream-dev-infra", URI, "eu-west-1", "abc")
    echoed: list[str] = []
    run_plan(plan, runner, echoed.append)
    assert [argv[:2] for argv, _ in runner.calls] == [
        ("aws", "ecr"),
        ("docker", "login"),
        ("docker", "build"),
        ("docker", "push"),
        ("aws", "cloudformation"),
    ]
    login_stdin = runner.calls[1][1]
    assert login_stdin == "s3cr3t-password"
    assert all("s3cr3t" not in line for line in echoed)
    assert all("s3cr3t" not in " ".join(argv) for argv, _ in runner.calls)


def test_a_failing_step_stops_the_rest_with_its_reason() -> None:
    runner = FakeRunner({"docker build": Finished(1, "", "step 3/7: pip install failed\n")})
    plan = build_plan("dev", "slipstream-dev-infra", URI, "eu-west-1", "abc")
    with pytest.raises(ImageError, match=r"build failed .*pip install failed"):
        run_plan(plan, runner, lambda _: None)
    assert ("docker", "push") not in [argv[:2] for argv, _ in runner.calls]


def test_a_dirty_work_tree_is_tagged_as_such() -> None:
    runner = FakeRunner({"git status": Finished(0, " M chalicelib/app.py\n")})
    plan = prepare("dev", "slipstream-dev-infra", None, runner, which=_which())
    assert plan.image.endswith(":0123456789ab-dirty")


@pytest.mark.parametrize(
    ("which", "answers", "refusal"),
    [
        (_which("docker"), {}, "docker is not installed"),
        (
            _which(),
            {"docker info": Finished(1, "", "Cannot connect to the Docker daemon\n")},
            "docker has no running engine: Cannot connect to the Docker daemon",
        ),
        (_which("aws"), {}, "the AWS CLI (aws) is not installed"),
        (
            _which(),
            {"aws sts": Finished(255, "", "Unable to locate credentials.\n")},
            "no usable AWS credentials",
        ),
        (
            _which(),
            {"aws cloudformation describe-stacks": Finished(254, "", "Stack does not exist\n")},
            "cannot read stack slipstream-dev-infra: deploy it first",
        ),
        (
            _which(),
            {
                "aws cloudformation describe-stacks": Finished(
                    0, json.dumps({"Stacks": [{"StackId": STACK_ID, "Outputs": []}]})
                )
            },
            "stack slipstream-dev-infra has no output WorkerRepositoryUri",
        ),
    ],
)
def test_what_is_missing_is_refused_in_one_line_before_any_step(
    which: Callable[[str], str | None], answers: dict[str, Finished], refusal: str
) -> None:
    runner = FakeRunner(answers)
    with pytest.raises(ImageError) as raised:
        prepare("dev", "slipstream-dev-infra", None, runner, which=which)
    assert str(raised.value).startswith(refusal)
    assert "\n" not in str(raised.value)
    assert not any(
        argv[:2] in {("docker", "build"), ("docker", "push")} for argv, _ in runner.calls
    )


def test_the_cli_prints_the_plan_and_exits_2_with_one_line_on_refusal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import chalicelib.deploy.worker_image as worker_image

    monkeypatch.setattr(worker_image.shutil, "which", _which())
    assert main(["--stage", "dev", "--plan"], runner=FakeRunner()) == 0
    out = capsys.readouterr().out
    assert out.startswith("make worker-image STAGE=dev will build and push")
    assert "5. task definition: aws cloudformation deploy" in out

    missing = FakeRunner({"aws sts": Finished(255, "", "Unable to locate credentials.\n")})
    assert main(["--stage", "dev"], runner=missing) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("worker-image: no usable AWS credentials")
    assert main(["--stage", "Dev-X"], runner=FakeRunner()) == 2
    assert "stage name 'Dev-X'" in capsys.readouterr().err


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, body) or fnmatch.fnmatch(p, f"*/{body}") for p in prefixes):
            ignored = not negated
    return ignored


def test_the_dockerignore_sends_only_what_the_dockerfile_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for kept in ("requirements.txt", "chalicelib/core/spec.py", "operators/empty.py"):
        assert not _ignored(kept, patterns), kept
    for dropped in (
        ".venv/bin/python",
        ".git/HEAD",
        "tests/deploy/test_worker_image.py",
        "docs/deploying.md",
        "dags/example.py",
        "chalicelib/core/__pycache__/spec.cpython-311.pyc",
    ):
        assert _ignored(dropped, patterns), dropped
