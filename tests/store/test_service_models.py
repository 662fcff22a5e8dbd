"""The store's table connections share one botocore loader (aws.service_models).

Run in a fresh interpreter: the test session shares loaders itself
(tests/conftest.py), which would hide a store that did not."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import botocore.session
from chalicelib.store.models import build_models
from chalicelib.store.settings import StoreSettings

models = build_models(StoreSettings(stage="probe"))
loaders = {
    id(model._get_connection().connection.session.get_component("data_loader"))
    for model in (models.dag, models.dag_run, models.task_instance, models.pool)
}
separate = botocore.session.get_session().get_component("data_loader")
print(len(loaders), id(separate) in loaders)
"""


def test_every_table_connection_reads_the_service_models_once() -> None:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert done.stdout.split() == ["1", "True"], done.stderr
