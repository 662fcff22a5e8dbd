"""The Slipstream-owned services one try may use, bound to its run and tenant.

Built once per try by the worker. In-process they are set as the try's
context (``reading_dag_states`` and the rest); in an isolated try the parent
serves them to the child over the broker (``isolation_broker``). Either way
task code never touches the store or the scheduler itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.core.runs import RunType
from chalicelib.runtime.dag_states import StoreDagStateReader, reading_dag_states
from chalicelib.runtime.dag_triggers import SchedulerDagTrigger, triggering_dags
from chalicelib.runtime.hitl import StoreHitl, answering_hitl
from chalicelib.runtime.isolation_broker import (
    Services,
    add_asset_events,
    add_dag_states,
    add_dag_trigger,
    add_hitl,
    add_wakeups,
    add_xcom,
)
from chalicelib.runtime.outlets import EventView, TriggeringAssetEvents
from chalicelib.runtime.sensor_wakeups import TryWakeups, waking_sensors


@dataclass(frozen=True)
class TryPorts:
    reader: StoreDagStateReader  # ExternalTaskSensor reads other runs, as this tenant
    trigger: SchedulerDagTrigger  # TriggerDagRunOperator starts them, as this tenant
    hitl: StoreHitl
    wakeups: TryWakeups | None  # None: no S3 watch table, sensors only poll
    load_asset_events: Callable[[], dict[str, list[Any]]] | None  # an asset-triggered run's

    @property
    def asset_events(self) -> TriggeringAssetEvents | None:
        """Loaded only if the task reads them."""
        if self.load_asset_events is None:
            return None
        return TriggeringAssetEvents(self.load_asset_events)

    @contextlib.contextmanager
    def in_context(self) -> Iterator[None]:
        """The in-process try's context: the ports where the runtime looks for them."""
        wakeups = (
            waking_sensors(self.wakeups) if self.wakeups is not None else contextlib.nullcontext()
        )
        with (
            reading_dag_states(self.reader),
            triggering_dags(self.trigger),
            wakeups,
            answering_hitl(self.hitl),
        ):
            yield

    def services(self, xcoms: Any) -> Services:
        """The isolated try's allow-list: the same objects, served to the child."""
        services = Services()
        add_xcom(services, xcoms)
        add_dag_states(services, self.reader)
        add_dag_trigger(services, self.trigger)
        add_hitl(services, self.hitl)
        if self.wakeups is not None:
            add_wakeups(services, self.wakeups)
        if self.load_asset_events is not None:
            add_asset_events(services, self.load_asset_events)
        return services


def try_ports(deps: Any, message: Any, run: Any) -> TryPorts:
    return TryPorts(
        reader=StoreDagStateReader(deps.store, deps.scheduler.specs, run.tenant),
        trigger=SchedulerDagTrigger(deps.scheduler, run.tenant),
        hitl=StoreHitl(lambda: _hitl_store(deps), run.tenant),
        wakeups=TryWakeups(deps.s3_watches, message) if deps.s3_watches is not None else None,
        load_asset_events=_asset_event_loader(deps, run),
    )


def _hitl_store(deps: Any) -> Any:
    from chalicelib.store.hitl import hitl_store

    return hitl_store(deps.store)


def _asset_event_loader(deps: Any, run: Any) -> Callable[[], dict[str, list[Any]]] | None:
    if deps.assets is None or run.run_type is not RunType.ASSET_TRIGGERED:
        return None

    def load() -> dict[str, list[Any]]:
        stored = deps.assets.store.run_events(run.dag_id, run.run_id)
        found: dict[str, list[Any]] = {}
        for key, events in stored.items():
            views = [EventView(e) for e in events]
            found.setdefault(key, []).extend(views)
            if key.startswith("alias:"):  # an alias's events also show under their assets
                for view in views:
                    found.setdefault(view.asset.uri, []).append(view)
        return found

    return load
