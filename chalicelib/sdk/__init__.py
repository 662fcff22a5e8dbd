"""The authoring API: what DAG files import.

Names and behaviour follow Apache Airflow so existing DAGs read the same;
see docs/authoring.md.
"""

from chalicelib.core.cron_timetables import CronDataIntervalTimetable, CronTriggerTimetable
from chalicelib.core.delta_timetables import DeltaDataIntervalTimetable, DeltaTriggerTimetable
from chalicelib.core.events import EventPattern, S3Event
from chalicelib.core.trigger_rules import TriggerRule
from chalicelib.sdk.assets import (
    Asset,
    AssetAlias,
    AssetAll,
    AssetAny,
    Dataset,
    DatasetAlias,
    DatasetAll,
    DatasetAny,
    Model,
)
from chalicelib.sdk.baseoperator import BaseOperator
from chalicelib.sdk.context import get_current_context
from chalicelib.sdk.dag import DAG, dag
from chalicelib.sdk.deadline import AsyncCallback, DeadlineAlert, DeadlineReference, SyncCallback
from chalicelib.sdk.decorators import task
from chalicelib.sdk.dependencies import chain, cross_downstream
from chalicelib.sdk.exceptions import (
    AirflowNotFoundException,
    TaskFailed,
    TaskSkipped,
    TaskTimeout,
)
from chalicelib.sdk.executor import ExecutorConfig
from chalicelib.sdk.hooks import BaseHook
from chalicelib.sdk.mapped import MappedOperator
from chalicelib.sdk.params import Param
from chalicelib.sdk.setup_teardown import setup, teardown
from chalicelib.sdk.taskgroup import TaskGroup, task_group
from chalicelib.sdk.variables import Variable
from chalicelib.sdk.xcom_arg import XComArg
from chalicelib.secrets.connection import Connection

__all__ = [
    "DAG",
    "AirflowNotFoundException",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AsyncCallback",
    "BaseHook",
    "BaseOperator",
    "Connection",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "Dataset",
    "DatasetAlias",
    "DatasetAll",
    "DatasetAny",
    "DeadlineAlert",
    "DeadlineReference",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EventPattern",
    "ExecutorConfig",
    "MappedOperator",
    "Model",
    "Param",
    "S3Event",
    "SyncCallback",
    "TaskFailed",
    "TaskGroup",
    "TaskSkipped",
    "TaskTimeout",
    "TriggerRule",
    "Variable",
    "XComArg",
    "chain",
    "cross_downstream",
    "dag",
    "get_current_context",
    "setup",
    "task",
    "task_group",
    "teardown",
]
