"""What AWS calls and worker time cost, at on-demand list prices (us-east-1).

An estimate from counts, not a bill: a DynamoDB call is priced as one request
unit (a transaction as two per item is not known here, nor an item's size), S3
by request class, Lambda by invocations and GB-seconds. Services with no
per-request price (CloudWatch Logs bills ingested bytes; ECS, Fargate time;
SSM standard parameters) count calls at no cost.
"""

from __future__ import annotations

from collections.abc import Mapping

PER_MILLION = 1_000_000

DYNAMODB_READ = 0.25 / PER_MILLION  # on-demand read request unit
DYNAMODB_WRITE = 1.25 / PER_MILLION  # on-demand write request unit
LAMBDA_REQUEST = 0.20 / PER_MILLION
LAMBDA_GB_SECOND = 0.0000166667
SQS_REQUEST = 0.40 / PER_MILLION
S3_READ = 0.0004 / 1000  # GET, HEAD
S3_WRITE = 0.005 / 1000  # PUT, POST, LIST
SECRETS_MANAGER_CALL = 0.05 / 10_000

DYNAMODB_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable"}
)


def call_price(service: str, operation: str) -> float:
    """The list price of one call (0.0 where a call itself is not billed)."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return 2 * DYNAMODB_WRITE  # transactional writes cost two units
        return DYNAMODB_READ if operation in DYNAMODB_READS else DYNAMODB_WRITE
    if service == "lambda" and operation == "Invoke":
        return LAMBDA_REQUEST
    if service == "sqs":
        return SQS_REQUEST
    if service == "s3":
        return S3_READ if operation.startswith(("Get", "Head")) else S3_WRITE
    if service == "secretsmanager":
        return SECRETS_MANAGER_CALL
    return 0.0


def estimate(
    calls: Mapping[str, Mapping[str, int]], *, worker_seconds: float, worker_memory_mb: int
) -> dict[str, float]:
    """Cost in USD by service, plus ``lambda_compute`` for the worker's time."""
    cost: dict[str, float] = {}
    for service, operations in calls.items():
        total = sum(call_price(service, op) * n for op, n in operations.items())
        cost[service] = cost.get(service, 0.0) + total
    cost["lambda_compute"] = worker_seconds * worker_memory_mb / 1024 * LAMBDA_GB_SECOND
    return cost
