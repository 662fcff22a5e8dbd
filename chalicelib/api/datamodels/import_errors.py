"""Import errors in Airflow 3's shapes (``/importErrors``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from chalicelib.api.datamodels.common import ApiModel, Paging

ORDER_FIELDS = ("id", "import_error_id", "timestamp", "filename", "bundle_name", "stacktrace")
OrderBy = Literal[
    "id",
    "-id",
    "import_error_id",
    "-import_error_id",
    "timestamp",
    "-timestamp",
    "filename",
    "-filename",
    "bundle_name",
    "-bundle_name",
    "stacktrace",
    "-stacktrace",
]


class ImportErrorResponse(ApiModel):
    import_error_id: int
    timestamp: dt.datetime
    filename: str
    bundle_name: str | None
    stack_trace: str


class ImportErrorCollection(ApiModel):
    import_errors: list[ImportErrorResponse]
    total_entries: int


class ImportErrorQuery(Paging):
    order_by: OrderBy = "id"
    filename_pattern: str | None = None
