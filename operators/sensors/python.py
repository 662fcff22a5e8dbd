"""PythonSensor and the operator behind ``@task.sensor``: a callable is the poke."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from chalicelib.sdk.sensors import BaseSensorOperator, PokeReturnValue
from operators.python import determine_kwargs


class PythonSensor(BaseSensorOperator):
    """Waits until ``python_callable`` returns a truthy value or a done
    ``PokeReturnValue`` (Airflow's PythonSensor); the context and ``op_kwargs``
    are passed by the names the callable declares, as PythonOperator does."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise TypeError(
                f"{type(self).__name__} (task_id: {self.task_id!r}): python_callable must be "
                f"callable, got {python_callable!r}"
            )
        self.python_callable = python_callable
        self.op_args = list(op_args) if op_args is not None else []
        self.op_kwargs = dict(op_kwargs) if op_kwargs is not None else {}
        self.templates_dict = templates_dict

    def poke(self, context: Mapping[str, Any]) -> bool | PokeReturnValue:
        merged = {**context, **self.op_kwargs}
        if self.templates_dict is not None:
            merged["templates_dict"] = self.templates_dict
        kwargs = determine_kwargs(self.python_callable, self.op_args, merged)
        value = self.python_callable(*self.op_args, **kwargs)
        if isinstance(value, PokeReturnValue):
            return value
        return bool(value)


class DecoratedSensorOperator(PythonSensor):
    """``@task.sensor``: the decorated function is the poke; a ``PokeReturnValue``'s
    ``xcom_value`` becomes the task's result once it is done."""

    custom_operator_name = "@task.sensor"
