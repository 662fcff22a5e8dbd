"""Which Airflow module and name is which Slipstream object: one table, data only.

The import hook (``airflow_imports``) reads this table while a DAG file loads,
so ``from airflow.operators.python import PythonOperator`` runs unchanged. An
entry is either ``"module.path:Name"`` (the Slipstream object) or
``Missing(advice)``: a name Airflow has and Slipstream does not, whose advice
is shown in the validation error. Other work adds its names here as one line
each (sensors, assets, operators); docs/porting.md is the same table for people.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Missing:
    """An Airflow name with no Slipstream equivalent, and what to use instead."""

    advice: str


SDK = "chalicelib.sdk"
PYTHON_OPS = "operators.python"

_NO_VENV = Missing(
    "Slipstream runs tasks in the worker's own environment; install the packages in the "
    "bundle's requirements, or run a container image with executor=ExecutorConfig('ecs', image=...)"
)
_SENSOR_BASE: dict[str, str | Missing] = {
    "BaseSensorOperator": f"{SDK}.sensors:BaseSensorOperator",
    "PokeReturnValue": f"{SDK}.sensors:PokeReturnValue",
}
_PYTHON_SENSOR: dict[str, str | Missing] = {"PythonSensor": "operators.sensors.python:PythonSensor"}
_DATE_TIME_SENSOR: dict[str, str | Missing] = {
    "DateTimeSensor": "operators.sensors.date_time:DateTimeSensor"
}
_TIME_DELTA_SENSOR: dict[str, str | Missing] = {
    "TimeDeltaSensor": "operators.sensors.date_time:TimeDeltaSensor"
}
_EXTERNAL_TASK_SENSOR: dict[str, str | Missing] = {
    "ExternalTaskSensor": "operators.sensors.external_task:ExternalTaskSensor"
}
_NO_OTHER_SENSORS = (
    "Slipstream has BaseSensorOperator, @task.sensor, PythonSensor, DateTimeSensor, "
    "TimeDeltaSensor, ExternalTaskSensor, S3KeySensor and SqsSensor (docs/authoring.md, "
    "Sensors); write others on BaseSensorOperator"
)
_ASSETS: dict[str, str | Missing] = {
    name: f"{SDK}:{name}" for name in ("Asset", "AssetAlias", "AssetAll", "AssetAny", "Model")
}
_DATASETS: dict[str, str | Missing] = {
    name: f"{SDK}:{name}" for name in ("Dataset", "DatasetAlias", "DatasetAll", "DatasetAny")
}
_DEADLINES: dict[str, str | Missing] = {
    name: f"{SDK}.deadline:{name}"
    for name in ("DeadlineAlert", "DeadlineReference", "AsyncCallback", "SyncCallback", "Callback")
}
_NO_METADATA = Missing(
    "asset event extras are set with outlet_events[asset].extra = {...} in the task; "
    "yielding Metadata is not supported"
)
_NO_LABEL = Missing("edge labels are not kept; write the dependency without a Label")
_NO_ORM = Missing(
    "Slipstream has no metadata database models; read the run from the task "
    "context (context['dag_run'], context['ti']) or use the REST API"
)
_TRIGGER_DAGRUN = "operators.trigger_dagrun:TriggerDagRunOperator"
_LATEST_ONLY = "operators.latest_only:LatestOnlyOperator"
_HTTP_OPERATORS: dict[str, str | Missing] = {
    "HttpOperator": "operators.http:HttpOperator",
    "SimpleHttpOperator": "operators.http:SimpleHttpOperator",
}
_EMAIL = Missing("Slipstream sends no e-mail; publish to SNS or SES from a @task or a callback")

_DAG_TOOLS: dict[str, str | Missing] = {
    "DAG": f"{SDK}:DAG",
    "dag": f"{SDK}:dag",
}
_PYTHON_OPERATORS: dict[str, str | Missing] = {
    "PythonOperator": f"{PYTHON_OPS}:PythonOperator",
    "BranchPythonOperator": f"{PYTHON_OPS}:BranchPythonOperator",
    "ShortCircuitOperator": f"{PYTHON_OPS}:ShortCircuitOperator",
    "get_current_context": f"{SDK}:get_current_context",
    "ExternalPythonOperator": _NO_VENV,
    "PythonVirtualenvOperator": _NO_VENV,
    "BranchExternalPythonOperator": _NO_VENV,
    "BranchPythonVirtualenvOperator": _NO_VENV,
}
_BASH: dict[str, str | Missing] = {"BashOperator": "operators.bash:BashOperator"}
_EMPTY: dict[str, str | Missing] = {"EmptyOperator": "operators.empty:EmptyOperator"}
_CHAIN: dict[str, str | Missing] = {
    "chain": f"{SDK}:chain",
    "cross_downstream": f"{SDK}:cross_downstream",
}
_EXCEPTIONS: dict[str, str | Missing] = {
    "AirflowException": "chalicelib.core.errors:SlipstreamError",
    "AirflowSkipException": f"{SDK}:TaskSkipped",
    "AirflowFailException": f"{SDK}:TaskFailed",
    "AirflowTaskTimeout": f"{SDK}:TaskTimeout",
    "AirflowNotFoundException": f"{SDK}:AirflowNotFoundException",
    "AirflowSensorTimeout": f"{SDK}.exceptions:SensorTimeout",
    "AirflowRescheduleException": f"{SDK}.exceptions:TaskRescheduled",
    "AirflowBadRequest": Missing("raise AirflowException (any exception fails the try)"),
}

AIRFLOW_NAMES: dict[str, dict[str, str | Missing]] = {
    "airflow": {
        **_DAG_TOOLS,
        "XComArg": f"{SDK}:XComArg",
        "Dataset": f"{SDK}:Dataset",
        "Asset": f"{SDK}:Asset",
    },
    # -- airflow.models: the names DAG files import; the ORM models are not here
    "airflow.models": {
        "DAG": f"{SDK}:DAG",
        "BaseOperator": f"{SDK}:BaseOperator",
        "Variable": f"{SDK}:Variable",
        "Param": f"{SDK}:Param",
        "Connection": f"{SDK}:Connection",
        "XComArg": f"{SDK}:XComArg",
        "MappedOperator": f"{SDK}:MappedOperator",
        "DagRun": _NO_ORM,
        "TaskInstance": _NO_ORM,
        "DagBag": _NO_ORM,
        "DagModel": _NO_ORM,
        "XCom": _NO_ORM,
        "Pool": Missing("pools are managed with `slipstream pools` or the REST API"),
    },
    "airflow.models.dag": {**_DAG_TOOLS},
    "airflow.models.baseoperator": {
        "BaseOperator": f"{SDK}:BaseOperator",
        **_CHAIN,
        "chain_linear": Missing("use chain() or >> between lists"),
        "BaseOperatorLink": Missing("operator extra links are not shown; log the URL instead"),
    },
    "airflow.models.param": {"Param": f"{SDK}:Param"},
    "airflow.models.variable": {"Variable": f"{SDK}:Variable"},
    "airflow.models.connection": {"Connection": f"{SDK}:Connection"},
    "airflow.models.xcom_arg": {"XComArg": f"{SDK}:XComArg"},
    "airflow.models.mappedoperator": {"MappedOperator": f"{SDK}:MappedOperator"},
    "airflow.models.dagrun": {"DagRun": _NO_ORM},
    "airflow.models.taskinstance": {"TaskInstance": _NO_ORM},
    # -- TaskFlow
    "airflow.decorators": {
        "dag": f"{SDK}:dag",
        "task": f"{SDK}:task",
        "task_group": f"{SDK}:task_group",
        "setup": f"{SDK}:setup",
        "teardown": f"{SDK}:teardown",
    },
    # -- Airflow 3's task SDK
    "airflow.sdk": {
        **_DAG_TOOLS,
        "task": f"{SDK}:task",
        "task_group": f"{SDK}:task_group",
        "TaskGroup": f"{SDK}:TaskGroup",
        "BaseOperator": f"{SDK}:BaseOperator",
        "BaseHook": f"{SDK}:BaseHook",
        "Param": f"{SDK}:Param",
        "Variable": f"{SDK}:Variable",
        "Connection": f"{SDK}:Connection",
        "XComArg": f"{SDK}:XComArg",
        "Context": "chalicelib.sdk.context:Context",
        "get_current_context": f"{SDK}:get_current_context",
        **_CHAIN,
        "chain_linear": Missing("use chain() or >> between lists"),
        "TriggerRule": f"{SDK}:TriggerRule",
        "DagRunState": "chalicelib.core.states:DagRunState",
        "TaskInstanceState": "chalicelib.core.states:TaskState",
        **_ASSETS,
        "Metadata": _NO_METADATA,
        "ObjectStoragePath": Missing("read and write S3 with boto3 from a @task"),
        "get_parsing_context": Missing(
            "every DAG file is imported whole; there is no per-DAG parsing context"
        ),
        "Label": _NO_LABEL,
        "setup": f"{SDK}:setup",
        "teardown": f"{SDK}:teardown",
        **_SENSOR_BASE,
        **_DEADLINES,
    },
    "airflow.sdk.bases.sensor": {**_SENSOR_BASE},
    "airflow.sdk.definitions.deadline": {**_DEADLINES},
    "airflow.sdk.definitions.callback": {**_DEADLINES},
    # -- sensors (Airflow 2 paths, then the standard and Amazon providers')
    "airflow.sensors.base": {**_SENSOR_BASE},
    "airflow.sensors.base_sensor_operator": {**_SENSOR_BASE},
    "airflow.sensors.python": {**_PYTHON_SENSOR},
    "airflow.sensors.date_time": {**_DATE_TIME_SENSOR},
    "airflow.sensors.time_delta": {**_TIME_DELTA_SENSOR},
    "airflow.sensors.external_task": {**_EXTERNAL_TASK_SENSOR},
    "airflow.sensors.external_task_sensor": {**_EXTERNAL_TASK_SENSOR},
    "airflow.providers.standard.sensors.python": {**_PYTHON_SENSOR},
    "airflow.providers.standard.sensors.date_time": {**_DATE_TIME_SENSOR},
    "airflow.providers.standard.sensors.time_delta": {**_TIME_DELTA_SENSOR},
    "airflow.providers.standard.sensors.external_task": {**_EXTERNAL_TASK_SENSOR},
    "airflow.providers.amazon.aws.sensors.s3": {"S3KeySensor": "operators.sensors.s3:S3KeySensor"},
    "airflow.providers.amazon.aws.sensors.sqs": {"SqsSensor": "operators.sensors.sqs:SqsSensor"},
    "airflow.sdk.definitions.param": {"Param": f"{SDK}:Param"},
    # -- classic operators, Airflow 2 paths (and the 1.10 names still in old files)
    "airflow.operators.python": {**_PYTHON_OPERATORS},
    "airflow.operators.python_operator": {**_PYTHON_OPERATORS},
    "airflow.operators.bash": {**_BASH},
    "airflow.operators.bash_operator": {**_BASH},
    "airflow.operators.empty": {**_EMPTY},
    "airflow.operators.dummy": {"DummyOperator": "operators.empty:EmptyOperator"},
    "airflow.operators.dummy_operator": {"DummyOperator": "operators.empty:EmptyOperator"},
    "airflow.operators.trigger_dagrun": {"TriggerDagRunOperator": _TRIGGER_DAGRUN},
    "airflow.operators.latest_only": {"LatestOnlyOperator": _LATEST_ONLY},
    "airflow.operators.email": {"EmailOperator": _EMAIL},
    # -- Airflow 3 paths: the standard provider
    "airflow.providers.standard.operators.python": {**_PYTHON_OPERATORS},
    "airflow.providers.standard.operators.bash": {**_BASH},
    "airflow.providers.standard.operators.empty": {**_EMPTY},
    "airflow.providers.standard.operators.trigger_dagrun": {
        "TriggerDagRunOperator": _TRIGGER_DAGRUN
    },
    "airflow.providers.standard.operators.latest_only": {"LatestOnlyOperator": _LATEST_ONLY},
    "airflow.providers.standard.operators.hitl": {
        name: f"operators.hitl:{name}"
        for name in ("HITLOperator", "ApprovalOperator", "HITLBranchOperator", "HITLEntryOperator")
    },
    "airflow.providers.standard.exceptions": {
        "HITLTimeoutError": "operators.hitl:HITLTimeoutError",
        "HITLRejectException": "operators.hitl:HITLRejectException",
    },
    # -- providers Slipstream has (operators/, docs/operators.md)
    "airflow.providers.http.operators.http": {**_HTTP_OPERATORS},
    "airflow.operators.http_operator": {**_HTTP_OPERATORS},
    "airflow.providers.http.hooks.http": {"HttpHook": "operators.hooks.http:HttpHook"},
    "airflow.providers.amazon.aws.hooks.base_aws": {
        "AwsBaseHook": "operators.hooks.aws_base:AwsBaseHook",
        "AwsGenericHook": "operators.hooks.aws_base:AwsGenericHook",
    },
    "airflow.providers.amazon.aws.hooks.s3": {"S3Hook": "operators.hooks.s3:S3Hook"},
    "airflow.providers.amazon.aws.hooks.lambda_function": {
        "LambdaHook": "operators.hooks.lambda_function:LambdaHook"
    },
    "airflow.providers.amazon.aws.hooks.sqs": {"SqsHook": "operators.hooks.sqs:SqsHook"},
    "airflow.providers.amazon.aws.operators.base_aws": {
        "AwsBaseOperator": "operators.aws_base:AwsBaseOperator"
    },
    "airflow.providers.amazon.aws.operators.lambda_function": {
        "LambdaInvokeFunctionOperator": "operators.aws_lambda:LambdaInvokeFunctionOperator"
    },
    "airflow.providers.amazon.aws.operators.ecs": {
        "EcsRunTaskOperator": "operators.ecs:EcsRunTaskOperator"
    },
    "airflow.providers.amazon.aws.operators.s3": {
        "S3CopyObjectOperator": "operators.s3:S3CopyObjectOperator",
        "S3CreateObjectOperator": "operators.s3:S3CreateObjectOperator",
        "S3DeleteObjectsOperator": "operators.s3:S3DeleteObjectsOperator",
    },
    "airflow.providers.amazon.aws.operators.sqs": {
        "SqsPublishOperator": "operators.sqs:SqsPublishOperator"
    },
    # -- utils
    "airflow.utils.trigger_rule": {"TriggerRule": f"{SDK}:TriggerRule"},
    "airflow.utils.task_group": {
        "TaskGroup": f"{SDK}:TaskGroup",
        "MappedTaskGroup": "chalicelib.sdk.mapped_group:MappedTaskGroup",
    },
    "airflow.utils.dates": {"days_ago": "chalicelib.sdk.dates:days_ago"},
    "airflow.utils.timezone": {
        "datetime": "chalicelib.sdk.dates:utc_datetime",
        "utcnow": "chalicelib.sdk.dates:utcnow",
    },
    "airflow.utils.helpers": {**_CHAIN},
    "airflow.utils.edgemodifier": {"Label": _NO_LABEL},
    "airflow.utils.state": {
        "DagRunState": "chalicelib.core.states:DagRunState",
        "TaskInstanceState": "chalicelib.core.states:TaskState",
        "State": Missing("use DagRunState or TaskInstanceState"),
    },
    "airflow.utils.context": {"Context": "chalicelib.sdk.context:Context"},
    "airflow.exceptions": {**_EXCEPTIONS},
    "airflow.sdk.exceptions": {**_EXCEPTIONS},
    # -- hooks
    "airflow.hooks.base": {"BaseHook": f"{SDK}:BaseHook"},
    "airflow.hooks.base_hook": {"BaseHook": f"{SDK}:BaseHook"},
    # -- timetables
    "airflow.timetables.interval": {
        "CronDataIntervalTimetable": f"{SDK}:CronDataIntervalTimetable",
        "DeltaDataIntervalTimetable": f"{SDK}:DeltaDataIntervalTimetable",
    },
    "airflow.timetables.trigger": {
        "CronTriggerTimetable": f"{SDK}:CronTriggerTimetable",
        "DeltaTriggerTimetable": f"{SDK}:DeltaTriggerTimetable",
    },
    # -- other work will fill these (sensors, assets)
    "airflow.datasets": {**_DATASETS},
    "airflow.assets": {**_ASSETS},
    "airflow.sdk.definitions.asset": {**_ASSETS},
}

_SETTINGS = "Slipstream reads its settings from SLIPSTREAM_* environment variables"

# Whole module trees Slipstream has nothing from, with advice for any name in them.
MISSING_MODULES: dict[str, str] = {
    "airflow.sensors": _NO_OTHER_SENSORS,
    "airflow.providers.standard.sensors": _NO_OTHER_SENSORS,
    "airflow.providers.amazon": (
        "Slipstream has the Amazon provider's S3, Lambda, ECS and SQS operators and "
        "hooks (docs/operators.md); for anything else call boto3 from a @task"
    ),
    "airflow.providers.cncf.kubernetes": (
        "Slipstream runs containers on ECS: give the task executor=ExecutorConfig('ecs', image=...)"
    ),
    "airflow.configuration": _SETTINGS,
    "airflow.settings": _SETTINGS,
}

# Provider namespaces whose distribution name has two parts (apache-airflow-providers-apache-spark).
_TWO_PART_PROVIDERS = frozenset({"apache", "cncf", "microsoft", "common", "atlassian", "dbt"})


def provider_advice(module: str) -> str | None:
    """Generic advice for a module of a provider package Slipstream does not have."""
    parts = module.split(".")
    if parts[:2] != ["airflow", "providers"] or len(parts) < 3:
        return None
    name_parts = parts[2:4] if parts[2] in _TWO_PART_PROVIDERS and len(parts) > 3 else parts[2:3]
    package = "apache-airflow-providers-" + "-".join(name_parts).replace("_", "-")
    return (
        f"Slipstream has no operators from {package}; call the service from a @task or a "
        "BashOperator, or write an operator on BaseOperator"
    )
