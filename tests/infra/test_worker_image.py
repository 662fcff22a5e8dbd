"""infra/worker.Dockerfile agrees with the repository and with EcsExecutor."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chalicelib.executors.ecs_executor import WORKER_ENTRYPOINT

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "infra" / "worker.Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for parts in (line.strip().split(None, 1) for line in joined.splitlines())
        if parts
    ]


def test_base_image_is_python_3_11_slim() -> None:
    assert _instructions()[0] == ("FROM", "python:3.11-slim")


def test_every_copied_path_exists_in_the_repo() -> None:
    copied = [arg.split()[:-1] for op, arg in _instructions() if op == "COPY"]
    sources = [src for srcs in copied for src in srcs]
    assert sources == ["requirements.txt", "chalicelib/", "operators/"]
    for src in sources:
        assert (REPO_ROOT / src).exists(), f"{DOCKERFILE.name}: COPY {src} does not exist"


def test_entrypoint_is_the_one_the_task_definition_sets() -> None:
    (entry,) = [arg for op, arg in _instructions() if op == "ENTRYPOINT"]
    assert tuple(json.loads(entry)) == WORKER_ENTRYPOINT


def test_the_worker_does_not_run_as_root() -> None:
    users = [arg for op, arg in _instructions() if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
