"""``/slipstream/deploys``: apply a deploy planned on the author's machine.

The CLI imports and validates the DAG files, builds the bundle and the specs,
and sends them here; the API checks them (specs parse and validate, the
bundle's hash matches, the size fits) and writes them with the deployer's
apply step, which reads specs only: no DAG code is imported here.

The caller's tenant owns what is deployed. Tenant ``default`` deploys as a
deploy without a tenant does (``slipstream dags deploy`` straight to the
stores, ``slipstream dev``), so both paths manage the same DAGs and manifest.
A refused deploy's problems become the tenant's import errors; a success clears them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import zipfile

from chalice import Blueprint
from pydantic import ValidationError

from chalicelib import wiring
from chalicelib.api import deps
from chalicelib.api.auth import Role
from chalicelib.api.datamodels.deploys import (
    MAX_DEPLOY_BYTES,
    DeployBody,
    DeployedDag,
    DeployResponse,
    RefusedDeployBody,
    RefusedDeployResponse,
)
from chalicelib.api.errors import ApiError, BadRequest, Unprocessable, validation_detail
from chalicelib.api.routing import Call, route
from chalicelib.core.errors import Problem
from chalicelib.core.spec import DagSpec
from chalicelib.core.validation import validate_spec
from chalicelib.deploy.apply import DeployPlan, DeployReport, apply_plan
from chalicelib.deploy.bundle import Bundle, BundleError, safe_members
from chalicelib.store.import_errors import per_file, remember_deploy
from chalicelib.store.models import DEFAULT_TENANT

bp = Blueprint(__name__)
TAG = "Slipstream: deploys"


class PayloadTooLarge(ApiError):
    status = 413


def _bundle(body: DeployBody) -> Bundle:
    try:
        data = base64.b64decode(body.bundle, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("bundle is not valid base64") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != body.bundle_sha256:
        raise BadRequest(
            f"bundle sha256 is {digest}, not the {body.bundle_sha256} sent: it was damaged"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            files = tuple(sorted(i.filename for i in safe_members(archive) if not i.is_dir()))
    except zipfile.BadZipFile:
        raise BadRequest("bundle is not a zip file") from None
    except BundleError as exc:
        raise BadRequest(str(exc)) from None
    return Bundle(data=data, sha256=digest, files=files)


def _specs(body: DeployBody) -> list[DagSpec]:
    specs: list[DagSpec] = []
    errors = []
    for index, text in enumerate(body.specs):
        try:
            spec = DagSpec.from_json(text)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                errors.append({**error, "loc": ["specs", index, *error.get("loc", ())]})
            continue
        if spec.canonical_json() != text:
            # Another serialization would give another content hash, so another version id.
            raise BadRequest(f"specs[{index}] ({spec.dag_id}) is not canonical JSON")
        specs.append(spec)
    if errors:
        raise Unprocessable(validation_detail(errors, "body"))
    seen: set[str] = set()
    for spec in specs:
        if spec.dag_id in seen:
            raise BadRequest(f"DAG {spec.dag_id!r} is in the deploy twice")
        seen.add(spec.dag_id)
    return specs


def _refuse(problems: list[Problem]) -> None:
    if problems:
        raise Unprocessable(
            [
                {"type": "value_error", "loc": ["body", "specs", p.dag_id or ""], "msg": str(p)}
                for p in problems
            ]
        )


def _response(report: DeployReport, stage: str) -> DeployResponse:
    return DeployResponse(
        stage=stage,
        bundle_key=report.bundle_key,
        bundle_files=report.bundle_files,
        git_commit=report.git_commit,
        dags=[
            DeployedDag(
                dag_id=d.dag_id,
                status=str(d.status),
                version=d.version,
                previous_version=d.previous_version,
                file=d.fileloc,
                tasks=d.tasks,
                paused=d.paused,
                next_due_at=d.next_due_at,
            )
            for d in report.dags
        ],
        deactivated=report.deactivated,
    )


@route(
    bp,
    "/slipstream/deploys",
    "POST",
    role=Role.OP,
    body=DeployBody,
    response=DeployResponse,
    status=201,
    tag=TAG,
)
def post_deploy(call: Call) -> DeployResponse:
    """Deploy DAG specs and their code bundle (built by ``slipstream dags deploy``)."""
    size = len(call.raw_body or b"")
    if size > MAX_DEPLOY_BYTES:
        raise PayloadTooLarge(
            f"The deploy is {size / 2**20:.1f} MB; the limit is {MAX_DEPLOY_BYTES // 2**20} MB "
            "(keep data files out of dags/ and operators/)"
        )
    body: DeployBody = call.body
    bundle = _bundle(body)
    specs = _specs(body)
    tenant = call.who.tenant
    invalid = [p for spec in specs for p in validate_spec(spec, file=spec.fileloc)]
    if invalid:
        remember_deploy(wiring.state_store(), tenant, invalid, deps.now())
    _refuse(invalid)
    stage = wiring.store_settings().stage
    plan = DeployPlan(specs=specs, bundle=bundle, scanned_files=list(body.scanned_files))
    report = apply_plan(
        plan,
        store=wiring.state_store(),
        bundles=wiring.bundle_store(),
        now=deps.now(),
        git_commit=body.git_commit,
        stage=stage,
        paused_at_creation=not body.unpause,
        tenant=None if tenant == DEFAULT_TENANT else tenant,
    )
    remember_deploy(wiring.state_store(), tenant, report.problems, deps.now())
    _refuse(report.problems)
    deps.event_log().record(
        tenant,
        "deploy",
        owner=call.who.owner,
        when=deps.now(),
        extra={
            "bundle_key": report.bundle_key,
            "dags": [d.dag_id for d in report.dags],
            "deactivated": report.deactivated,
        },
    )
    return _response(report, stage)


@route(
    bp,
    "/slipstream/deploys/refused",
    "POST",
    role=Role.OP,
    body=RefusedDeployBody,
    response=RefusedDeployResponse,
    status=201,
    tag=TAG,
)
def post_refused_deploy(call: Call) -> RefusedDeployResponse:
    """Record a deploy the CLI refused (its files' problems become the tenant's import errors)."""
    body: RefusedDeployBody = call.body
    problems = [Problem(**p.model_dump()) for p in body.problems]
    remember_deploy(wiring.state_store(), call.who.tenant, problems, deps.now())
    deps.event_log().record(
        call.who.tenant,
        "deploy_refused",
        owner=call.who.owner,
        when=deps.now(),
        extra={"files": sorted(per_file(problems))},
    )
    return RefusedDeployResponse(import_errors=len(per_file(problems)))
