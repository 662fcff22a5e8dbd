"""Sensors: tasks that wait for a condition, holding no worker between pokes
(``mode="reschedule"``, the default). One module per idea; the base class is
``chalicelib.sdk.sensors.BaseSensorOperator``."""

from chalicelib.sdk.sensors import BaseSensorOperator, PokeReturnValue

__all__ = ["BaseSensorOperator", "PokeReturnValue"]
