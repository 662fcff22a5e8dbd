"""A deploy sent over HTTP: the plan the CLI built from DAG files, as JSON.

Specs travel as their canonical JSON text (the bytes their content hash is
taken over), so the version ids the API computes are the ones the author's
machine would; the bundle travels as base64 with its sha256, checked on arrival.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, StringConstraints

from chalicelib.api.datamodels.common import ApiModel, BodyModel

MAX_DEPLOY_BYTES = 5 * 1024 * 1024
"""A request's limit: a synchronous Lambda invocation takes at most 6 MB."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class DeployBody(BodyModel):
    bundle: str = Field(description="The bundle zip, base64.")
    bundle_sha256: Sha256
    specs: Annotated[list[str], Field(max_length=1000)] = Field(
        description="Each DAG's spec as canonical JSON text."
    )
    scanned_files: list[str] = Field(
        default_factory=list,
        description="DAG files read (relative to the project): a DAG deployed from one of "
        "them before and missing now is deactivated.",
    )
    git_commit: Annotated[str, StringConstraints(max_length=64)] | None = None
    unpause: bool = Field(default=False, description="Create new DAGs unpaused.")


class DeployedDag(ApiModel):
    dag_id: str
    status: str
    version: str
    previous_version: str | None
    file: str
    tasks: int
    paused: bool
    next_due_at: dt.datetime | None


class DeployResponse(ApiModel):
    stage: str
    bundle_key: str | None
    bundle_files: int
    git_commit: str | None
    dags: list[DeployedDag]
    deactivated: list[str]


class RefusedProblem(BodyModel):
    message: Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
    file: Annotated[str, StringConstraints(max_length=1024)] | None = None
    line: Annotated[int, Field(ge=0)] | None = None
    dag_id: Annotated[str, StringConstraints(max_length=250)] | None = None
    task_id: Annotated[str, StringConstraints(max_length=250)] | None = None


class RefusedDeployBody(BodyModel):
    """What the CLI found wrong before sending a deploy: the files that failed to
    import or validate on the author's machine (paths relative to the project)."""

    problems: Annotated[list[RefusedProblem], Field(min_length=1, max_length=1000)]


class RefusedDeployResponse(ApiModel):
    import_errors: int = Field(description="How many files the tenant's import errors now list.")
