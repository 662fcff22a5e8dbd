"""A stage's settings from its infra stack's outputs: the one step between them.

``make deploy`` (through ``python -m chalicelib.cli stage wire``) reads the
outputs of ``infra/stack.yaml`` for one stage and writes, into the project's
``.chalice/``:

- the stage's ``environment_variables`` in ``config.json`` (every function
  gets the same names: tables, bucket, queue, cluster, roles, log groups,
  worker function), plus its per-function settings (timeouts, reserved
  concurrency, one hand-written IAM policy per function, log retention);
- ``policy-<stage>-<function>.json``: ``infra/policies/<role>.json`` with the
  stage's ARNs filled in (Chalice reads policy files as literal JSON, so the
  ARNs are resolved here rather than by CloudFormation);
- ``merge-<stage>.json``: what ``chalice package --merge-template`` adds that
  Chalice's config cannot say (partial batch responses, the worker's fixed
  name, its async retries and on-failure destination).

Nothing is copied by hand and nothing names another stage: every value comes
from this stage's stack. Deciding (this module, pure) is kept apart from
reading the stack and writing files (``chalicelib/cli/stage.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKER_TIMEOUT_SECONDS = 900
"""Lambda's ceiling: tries that may run longer go to ECS (docs/deploying.md)."""

# Chalice's names of app.py's functions, and the policy each one runs under.
FUNCTION_POLICIES = {
    "api_handler": "api",
    "scheduler_tick": "scheduler",
    "scheduler_events": "scheduler",
    "worker": "worker",
}

# Stack output -> environment variable every function reads (the settings models).
OUTPUT_VARIABLES = {
    "TablePrefix": "SLIPSTREAM_TABLE_PREFIX",
    "StateBucketName": "SLIPSTREAM_BUCKET",
    "SchedulerQueueUrl": "SLIPSTREAM_QUEUE_URL",
    "SchedulerQueueName": "SLIPSTREAM_QUEUE_NAME",
    "WorkerFunctionName": "SLIPSTREAM_WORKER_FUNCTION",
    "WorkerClusterName": "SLIPSTREAM_ECS_CLUSTER",
    "WorkerExecutionRoleArn": "SLIPSTREAM_EXECUTION_ROLE_ARN",
    "WorkerTaskRoleArn": "SLIPSTREAM_TASK_ROLE_ARN",
    # the role isolated tries' user code assumes per tenant (runtime/tenant_credentials.py);
    # every function gets it so the ECS task definitions EcsExecutor registers carry it
    "TaskCodeRoleArn": "SLIPSTREAM_TASK_CODE_ROLE_ARN",
    "WorkerLogGroupName": "SLIPSTREAM_LOG_GROUP",
    "TaskLogGroupName": "SLIPSTREAM_TASK_LOG_GROUP",
    "SecretsPrefix": "SLIPSTREAM_SECRETS_PREFIX",
    "WorkerSubnets": "SLIPSTREAM_SUBNETS",
    "WorkerSecurityGroups": "SLIPSTREAM_SECURITY_GROUPS",
    "WorkerImage": "SLIPSTREAM_DEFAULT_IMAGE",
    "WorkerAssignPublicIp": "SLIPSTREAM_ASSIGN_PUBLIC_IP",
    "WorkerRepositoryUri": "SLIPSTREAM_WORKER_REPOSITORY",
    "WorkerTaskDefinitionArn": "SLIPSTREAM_WORKER_TASK_DEFINITION",
}
# Present only when the stage has a network (created or given) and an image.
OPTIONAL_OUTPUTS = frozenset(
    {
        "WorkerSubnets",
        "WorkerSecurityGroups",
        "WorkerImage",
        "WorkerTaskDefinitionArn",
        "TaskCodeRoleArn",  # absent with IsolateTaskCode=false
    }
)
REQUIRED_OUTPUTS = frozenset(OUTPUT_VARIABLES) - OPTIONAL_OUTPUTS

# Per stage: prod gets room to run, every other stage a small ceiling so a
# runaway DAG in dev cannot starve the account's other functions.
RESERVED_WORKERS = {"prod": 100}
DEFAULT_RESERVED_WORKERS = 10
LOG_RETENTION_DAYS = {"prod": 90}
DEFAULT_LOG_RETENTION_DAYS = 14

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
# No hyphen: a stage's wildcard ARNs (``table/slipstream-dev-*``) would otherwise
# also cover a stage named ``dev-x``'s tables and task definitions.
STAGE_NAME = re.compile(r"^[a-z][a-z0-9]{0,19}$")


class WiringError(ValueError):
    """The stack cannot wire this stage (a missing output, a foreign stage)."""


def check_stage_name(stage: str) -> None:
    if not STAGE_NAME.match(stage):
        raise WiringError(
            f"stage name {stage!r} must be a lowercase letter then up to 19 lowercase "
            "letters or digits (no hyphen: IAM policies match a stage's resources by "
            "its name followed by '-', so 'dev' would also cover 'dev-x')"
        )


@dataclass(frozen=True)
class StackFacts:
    """What wiring needs from one deployed infra stack."""

    stage: str
    region: str
    account: str
    partition: str
    outputs: Mapping[str, str]

    @classmethod
    def from_description(cls, stage: str, described: Mapping[str, Any]) -> StackFacts:
        """From one ``DescribeStacks`` entry; its StackId gives region and account."""
        check_stage_name(stage)
        arn = str(described.get("StackId", ""))
        parts = arn.split(":")
        if len(parts) < 6:
            raise WiringError(f"stack id {arn!r} is not an ARN")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []}
        facts = cls(stage, parts[3], parts[4], parts[1], outputs)
        facts.check()
        return facts

    def check(self) -> None:
        missing = sorted(REQUIRED_OUTPUTS - set(self.outputs))
        if missing:
            raise WiringError(
                f"the stack has no output {', '.join(missing)}: deploy infra/stack.yaml "
                "of this version first"
            )
        stack_stage = self.outputs.get("Stage")
        if stack_stage is not None and stack_stage != self.stage:
            raise WiringError(
                f"the stack is stage {stack_stage!r}, not {self.stage!r}: "
                "each stage wires from its own stack"
            )

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    def placeholders(self) -> dict[str, str]:
        """Names a policy template may use: every output, plus ARNs built from them."""
        values = dict(self.outputs)
        prefix = f"{self.outputs['TablePrefix']}-{self.stage}"
        values.update(
            Partition=self.partition,
            Region=self.region,
            Account=self.account,
            Stage=self.stage,
            TablesArn=self.arn("dynamodb", f"table/{prefix}-*"),
            WorkerFunctionArn=self.arn("lambda", f"function:{self.outputs['WorkerFunctionName']}"),
            SecretsArn=self.arn("secretsmanager", f"secret:{self.outputs['SecretsPrefix']}/*"),
            ParametersArn=self.arn("ssm", f"parameter/{self.outputs['SecretsPrefix']}/*"),
            TaskLogGroupArn=self.arn("logs", f"log-group:{self.outputs['TaskLogGroupName']}"),
            WorkerRolesArn=f"arn:{self.partition}:iam::{self.account}:role/slipstream/{self.stage}/*",
            TaskDefinitionsArn=self.arn("ecs", f"task-definition/slipstream-worker-{self.stage}-*"),
            ClusterTasksArn=self.arn("ecs", f"task/{self.outputs['WorkerClusterName']}/*"),
        )
        return values


def stage_environment(facts: StackFacts) -> dict[str, str]:
    """The variables every function of the stage gets (``environment_variables``)."""
    env = {"SLIPSTREAM_STAGE": facts.stage}
    for output, variable in OUTPUT_VARIABLES.items():
        value = facts.outputs.get(output, "")
        if value:
            env[variable] = value
    ecs_ready = bool(env.get("SLIPSTREAM_SUBNETS") and env.get("SLIPSTREAM_SECURITY_GROUPS"))
    env["SLIPSTREAM_EXECUTORS"] = "lambda,ecs" if ecs_ready else "lambda"
    env["SLIPSTREAM_TASK_FAMILY_PREFIX"] = f"slipstream-worker-{facts.stage}"
    return env


def render_policy(template: str, facts: StackFacts, source: str = "policy") -> dict[str, Any]:
    """A policy template with every ``${Name}`` replaced; an unknown name is an error."""
    values = facts.placeholders()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise WiringError(f"{source}: unknown placeholder ${{{name}}}")
        return values[name]

    document: dict[str, Any] = json.loads(_PLACEHOLDER.sub(fill, template))
    return document


def stage_config(facts: StackFacts, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stage's entry of ``.chalice/config.json``: what was there (api_gateway_stage,
    xray, memory...) with the wired environment and per-function settings on top."""
    stage = dict(current or {})
    env = dict(stage.get("environment_variables") or {})
    env.update(stage_environment(facts))
    stage["environment_variables"] = env
    stage.setdefault("api_gateway_stage", facts.stage)
    stage["autogen_policy"] = False
    stage["log_retention_in_days"] = LOG_RETENTION_DAYS.get(facts.stage, DEFAULT_LOG_RETENTION_DAYS)
    functions: dict[str, Any] = {}
    for function in FUNCTION_POLICIES:
        settings = dict((stage.get("lambda_functions") or {}).get(function) or {})
        settings["iam_policy_file"] = policy_file_name(facts.stage, function)
        functions[function] = settings
    functions["worker"]["lambda_timeout"] = WORKER_TIMEOUT_SECONDS
    functions["worker"].setdefault(
        "reserved_concurrency", RESERVED_WORKERS.get(facts.stage, DEFAULT_RESERVED_WORKERS)
    )
    # One tick at a time: two overlapping ticks would only race for the same runs.
    functions["scheduler_tick"]["reserved_concurrency"] = 1
    stage["lambda_functions"] = functions
    return stage


def policy_file_name(stage: str, function: str) -> str:
    """Relative to ``.chalice/``, as Chalice's ``iam_policy_file`` wants it."""
    return f"policy-{stage}-{function}.json"


def merge_template(facts: StackFacts) -> dict[str, Any]:
    """What ``chalice package --merge-template`` adds to the stage's SAM template."""
    queue_arn = facts.outputs["SchedulerQueueArn"]
    return {
        "Resources": {
            # Chalice 1.34 names the API function's log group after "${ApiHandler}",
            # a resource that does not exist (the function is "APIHandler").
            "ApiHandlerLogGroup": {
                "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${APIHandler}"}}
            },
            "SchedulerEvents": {
                "Properties": {
                    "Events": {
                        "SchedulerEventsSqsEventSource": {
                            "Properties": {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
                        }
                    },
                    "Environment": {"Variables": {"SLIPSTREAM_PARTIAL_BATCH_RESPONSE": "true"}},
                }
            },
            "Worker": {
                "Properties": {
                    # The name the other functions invoke (SLIPSTREAM_WORKER_FUNCTION);
                    # without it CloudFormation would make up <stack>-Worker-<random>.
                    "FunctionName": facts.outputs["WorkerFunctionName"],
                    # Slipstream's own retries decide; a crashed invoke becomes a
                    # failure record on the scheduler queue, which fails the try.
                    "EventInvokeConfig": {
                        "MaximumRetryAttempts": 0,
                        "DestinationConfig": {
                            "OnFailure": {"Type": "SQS", "Destination": queue_arn}
                        },
                    },
                }
            },
        }
    }


def wire_project(project: Path, facts: StackFacts) -> list[Path]:
    """Write the stage's config entry, policy files and merge template; the paths written."""
    chalice_dir = project / ".chalice"
    config_path = chalice_dir / "config.json"
    config = json.loads(config_path.read_text())
    stages = config.setdefault("stages", {})
    stages[facts.stage] = stage_config(facts, stages.get(facts.stage))
    written = [config_path]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    for function, role in FUNCTION_POLICIES.items():
        source = project / "infra" / "policies" / f"{role}.json"
        document = render_policy(source.read_text(), facts, str(source))
        path = chalice_dir / policy_file_name(facts.stage, function)
        path.write_text(json.dumps(document, indent=2) + "\n")
        written.append(path)
    merge_path = chalice_dir / f"merge-{facts.stage}.json"
    merge_path.write_text(json.dumps(merge_template(facts), indent=2) + "\n")
    written.append(merge_path)
    return written
