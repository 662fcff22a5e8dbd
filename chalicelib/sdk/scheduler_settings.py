"""Airflow's ``[scheduler]`` settings that decide what a DAG's schedule means.

Airflow 3 turned a cron string or a timedelta into a *trigger* timetable and
made ``catchup`` default to False; three settings bring Airflow 2's behaviour
back. Slipstream reads them where the DAG object is built (the DAG file's
import: ``dags deploy``, ``dags validate``, ``dags test``, ``dag.test()``), so
the timetable in force is written into the spec at deploy and a deployed DAG
never changes meaning when the setting flips later; only a redeploy does.

Each setting comes from the environment, spelled as Airflow spells it
(``AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS=True``). A deployment can
also fix it for every deploy to a stage: ``dags deploy`` reads the same names
from the stage's ``environment_variables`` in ``.chalice/config.json`` (see
:func:`stage_settings_environment`); the process environment wins, as an
Airflow environment variable wins over ``airflow.cfg``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib.core.errors import SlipstreamError

CRON_DATA_INTERVALS = "AIRFLOW__SCHEDULER__CREATE_CRON_DATA_INTERVALS"
DELTA_DATA_INTERVALS = "AIRFLOW__SCHEDULER__CREATE_DELTA_DATA_INTERVALS"
CATCHUP_BY_DEFAULT = "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT"
SETTING_NAMES = (CRON_DATA_INTERVALS, DELTA_DATA_INTERVALS, CATCHUP_BY_DEFAULT)

# Airflow's conf.getboolean accepts exactly these spellings (case-insensitive).
_TRUE = frozenset({"t", "true", "1"})
_FALSE = frozenset({"f", "false", "0"})


class SchedulerSettingError(SlipstreamError):
    """A ``[scheduler]`` setting holds something that is not a boolean."""


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """Airflow 3's defaults: trigger timetables and no catchup."""

    create_cron_data_intervals: bool = False
    create_delta_data_intervals: bool = False
    catchup_by_default: bool = False


_overlay: dict[str, str] = {}


def scheduler_settings(environ: Mapping[str, str] | None = None) -> SchedulerSettings:
    """The settings in force: ``environ`` (default: the process environment) over
    the deployment's overlay. Raises SchedulerSettingError for a value that is not
    a boolean, naming the variable."""
    env = os.environ if environ is None else environ
    merged = {**_overlay, **{k: env[k] for k in SETTING_NAMES if k in env}}
    return SchedulerSettings(
        create_cron_data_intervals=_boolean(merged, CRON_DATA_INTERVALS, False),
        create_delta_data_intervals=_boolean(merged, DELTA_DATA_INTERVALS, False),
        catchup_by_default=_boolean(merged, CATCHUP_BY_DEFAULT, False),
    )


def _boolean(values: Mapping[str, str], name: str, default: bool) -> bool:
    raw = values.get(name)
    if raw is None or not raw.strip():
        return default
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SchedulerSettingError(f"{name}={raw!r} is not a boolean: use True or False")


@contextlib.contextmanager
def deployment_settings(values: Mapping[str, str]) -> Iterator[None]:
    """Apply a deployment's settings while its DAG files are imported; the process
    environment still wins over them."""
    saved = dict(_overlay)
    _overlay.clear()
    _overlay.update({k: str(v) for k, v in values.items() if k in SETTING_NAMES})
    try:
        yield
    finally:
        _overlay.clear()
        _overlay.update(saved)


def stage_settings_environment(project_root: str | Path, stage: str) -> dict[str, str]:
    """The ``[scheduler]`` settings a stage's ``.chalice/config.json`` declares in its
    ``environment_variables`` (top level, then the stage's own, as Chalice merges
    them). A project without that file declares none."""
    path = Path(project_root) / ".chalice" / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SchedulerSettingError(f"{path}: cannot read it as JSON: {exc}") from None
    found: dict[str, str] = {}
    stage_config = (config.get("stages") or {}).get(stage) or {}
    for layer in (config, stage_config):
        variables = layer.get("environment_variables") or {}
        found.update({k: str(v) for k, v in variables.items() if k in SETTING_NAMES})
    return found
