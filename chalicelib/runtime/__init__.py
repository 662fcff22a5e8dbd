"""The task runtime: running one try of one task instance the way Airflow does.

Workers and the local runner use ``execute_try``; everything else here is the
machinery it is made of (context, templates, XComs, timeouts, mapping).
"""

from chalicelib.runtime.context import DagRunContext, build_context, resolve_params
from chalicelib.runtime.executing import (
    TryRequest,
    TryResult,
    UnmappableXComTypePushed,
    XComForMappingNotPushed,
    execute_try,
)
from chalicelib.runtime.mapping import MappedArguments, arguments_for_index
from chalicelib.runtime.task_instance import RuntimeTaskInstance
from chalicelib.runtime.templating import (
    FILTERS,
    TemplateRenderError,
    render_template_fields,
    template_env,
)
from chalicelib.runtime.timeout import execution_timeout
from chalicelib.runtime.xcom import (
    RETURN_VALUE_KEY,
    InMemoryXComStore,
    XComStore,
    XComValueError,
)

__all__ = [
    "FILTERS",
    "RETURN_VALUE_KEY",
    "DagRunContext",
    "InMemoryXComStore",
    "MappedArguments",
    "RuntimeTaskInstance",
    "TemplateRenderError",
    "TryRequest",
    "TryResult",
    "UnmappableXComTypePushed",
    "XComForMappingNotPushed",
    "XComStore",
    "XComValueError",
    "arguments_for_index",
    "build_context",
    "execute_try",
    "execution_timeout",
    "render_template_fields",
    "resolve_params",
    "template_env",
]
