"""``HttpOperator`` (Airflow 2's ``SimpleHttpOperator``): call an HTTP endpoint as a task.

Behaviour follows the http provider: ``endpoint``, ``data`` and ``headers`` are
templated; a 4xx/5xx status fails the try (retries apply) unless
``extra_options={"check_response": False}``; ``response_check(response, ...)``
returning falsy fails it too; the result (the task's ``return_value`` XCom) is
``response_filter(response, ...)`` or else ``response.text``. Both callables
also receive the context entries they name (``ti``, ``params``, ...).

``pagination_function(response)`` returns the changes (``endpoint``, ``data``,
``headers``, ``extra_options``) for the next request, or None to stop; with it
``response_check`` and ``response_filter`` receive the list of responses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import requests

from chalicelib.sdk.baseoperator import BaseOperator
from chalicelib.sdk.exceptions import TaskFailed
from operators.hooks.http import HttpHook
from operators.python import determine_kwargs

_task_log = logging.getLogger("slipstream.task")  # masked: a body may echo a secret
MAX_PAGES = 10_000  # a pagination_function that never returns None must not loop forever


class HttpOperator(BaseOperator):
    template_fields = ("endpoint", "data", "headers")
    template_fields_renderers = {"headers": "json", "data": "py"}
    template_ext = ()

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        method: str = "POST",
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        pagination_function: Callable[..., Any] | None = None,
        response_check: Callable[..., Any] | None = None,
        response_filter: Callable[..., Any] | None = None,
        extra_options: Mapping[str, Any] | None = None,
        request_kwargs: Mapping[str, Any] | None = None,
        http_conn_id: str | None = "http_default",
        log_response: bool = False,
        auth_type: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        for name, value in (
            ("response_check", response_check),
            ("response_filter", response_filter),
            ("pagination_function", pagination_function),
        ):
            if value is not None and not callable(value):
                raise TypeError(
                    f"{type(self).__name__} (task_id: {self.task_id!r}): {name} must be "
                    f"callable, got {value!r}"
                )
        self.endpoint = endpoint
        self.method = method
        self.data = data
        self.headers = dict(headers or {})
        self.pagination_function = pagination_function
        self.response_check = response_check
        self.response_filter = response_filter
        self.extra_options = dict(extra_options or {})
        self.request_kwargs = dict(request_kwargs or {})
        self.http_conn_id = http_conn_id
        self.log_response = log_response
        self.auth_type = auth_type

    def hook(self) -> HttpHook:
        return HttpHook(self.method, http_conn_id=self.http_conn_id, auth_type=self.auth_type)

    def execute(self, context: Mapping[str, Any]) -> Any:
        hook = self.hook()
        request = {
            "endpoint": self.endpoint,
            "data": self.data,
            "headers": self.headers,
            "extra_options": self.extra_options,
        }
        responses = [self._send(hook, request)]
        if self.pagination_function is not None:
            while len(responses) < MAX_PAGES:
                changes = self.pagination_function(responses[-1])
                if not changes:
                    break
                request = _next_request(request, changes)
                responses.append(self._send(hook, request))
            else:
                raise TaskFailed(f"pagination stopped after {MAX_PAGES} pages", non_retryable=True)
        found: Any = responses if self.pagination_function is not None else responses[0]
        if self.response_check is not None:
            kwargs = determine_kwargs(self.response_check, [found], context)
            if not self.response_check(found, **kwargs):
                raise TaskFailed("Response check returned False.", non_retryable=False)
        if self.response_filter is not None:
            kwargs = determine_kwargs(self.response_filter, [found], context)
            return self.response_filter(found, **kwargs)
        if isinstance(found, list):
            return [response.text for response in found]
        return found.text

    def _send(self, hook: HttpHook, request: Mapping[str, Any]) -> requests.Response:
        response = hook.run(
            request["endpoint"],
            request["data"],
            request["headers"],
            request["extra_options"],
            **self.request_kwargs,
        )
        if self.log_response:
            _task_log.info("%s", response.text)
        return response


def _next_request(previous: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """Airflow merges dict-valued fields of the next page's request and replaces the rest."""
    if not isinstance(changes, Mapping):
        raise TaskFailed(
            f"pagination_function must return a dict of request changes or None, got {changes!r}"
        )
    merged = dict(previous)
    for name, value in changes.items():
        if name not in merged:
            raise TaskFailed(
                f"pagination_function returned {name!r}; it may change endpoint, data, headers "
                "and extra_options"
            )
        old = merged[name]
        merged[name] = (
            {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return merged


# Airflow 2 files import this name (airflow.providers.http.operators.http.SimpleHttpOperator).
SimpleHttpOperator = HttpOperator
