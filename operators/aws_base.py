"""What every AWS operator shares: the connection arguments and the hook they build.

Airflow's amazon operators all take ``aws_conn_id``, ``region_name``, ``verify``
and ``botocore_config`` (all templated) and make their hook from them; so do
these, through :class:`operators.hooks.aws_base.AwsBaseHook`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import botocore.config

from chalicelib.sdk.baseoperator import BaseOperator
from operators.hooks.aws_base import AwsBaseHook

AWS_TEMPLATE_FIELDS: tuple[str, ...] = ("aws_conn_id", "region_name", "verify", "botocore_config")


class AwsBaseOperator(BaseOperator):
    """Base of the AWS operators: builds ``self.hook`` from the connection arguments."""

    aws_hook_class: ClassVar[type[AwsBaseHook]] = AwsBaseHook
    client_type: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = dict(botocore_config) if botocore_config else None

    @property
    def hook(self) -> AwsBaseHook:
        """A new hook from the (rendered) arguments: read it once per execute.

        Not cached on the operator: the DAG's operator is copied for each try and
        rendered there, and a client cached before rendering would outlive it.
        """
        config = botocore.config.Config(**self.botocore_config) if self.botocore_config else None
        kwargs: dict[str, Any] = {
            "region_name": self.region_name,
            "config": config,
            "verify": self.verify,
        }
        if self.aws_hook_class is AwsBaseHook:
            kwargs["client_type"] = self.client_type
        return self.aws_hook_class(self.aws_conn_id, **kwargs)
