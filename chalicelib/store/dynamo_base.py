"""What every part of the DynamoDB state store shares: the tables, the
connection and the guarded writer, set up once.

DynamoStateStore (store.dynamodb) is assembled from parts, each one idea:
the DAG catalog (store.dynamo_dags), runs (store.dynamo_runs), slots and
heartbeats (store.dynamo_slots) and task instances (store.dynamodb). They
all write through ``_guarded`` here, so every change stays conditional.
"""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist

from chalicelib.aws.retries import retry_settings
from chalicelib.store.changes import ExpansionWrite, InstanceWrite
from chalicelib.store.models import StoreModels, build_models
from chalicelib.store.settings import StoreSettings
from chalicelib.store.writes import GuardedWriter, Op, write_ops


class DynamoStoreBase:
    """The tables, the connection and the guarded writer every part uses."""

    def __init__(
        self,
        settings: StoreSettings | None = None,
        *,
        models: StoreModels | None = None,
        s3_client: Any = None,
    ):
        self.settings = settings or StoreSettings()
        self.models = models or build_models(self.settings)
        self._s3 = s3_client
        self._connection = Connection(
            region=self.settings.region,
            host=self.settings.endpoint_url,
            retry_configuration=retry_settings(),  # type: ignore[arg-type]
        )
        self._writer = GuardedWriter(self._connection)

    def _run_item(self, dag_id: str, run_id: str) -> Any:
        try:
            return self.models.dag_run.get(dag_id, run_id, consistent_read=True)
        except DoesNotExist:
            return None

    # --------------------------------------------------------- writes

    def _ops(self, dag_id: str, run_id: str, write: InstanceWrite | ExpansionWrite) -> list[Op]:
        return write_ops(self.models, dag_id, run_id, write)

    def _guarded(self, ops: list[Op], token: str | None = None) -> bool:
        """Run ``ops`` atomically; False when the first op's condition failed
        to someone else's write (see store.writes for ``token``)."""
        return self._writer.guarded(ops, token)
