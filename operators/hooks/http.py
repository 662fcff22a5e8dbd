"""``HttpHook``: requests against the base URL an HTTP connection names.

Connection fields, as Airflow's http provider reads them:
- ``host`` (``https://api.example.com`` or just ``api.example.com``), ``schema``
  (``http``/``https``, default ``http``) and ``port`` give the base URL;
- ``login`` / ``password``: basic auth (another requests auth class via ``auth_type``);
- ``extra`` (JSON object): HTTP headers sent with every request, except the keys
  requests' session understands (``stream``, ``verify``, ``proxies``, ``cert``,
  ``max_redirects``, ``trust_env``, ``timeout``), which configure the session,
  and ``headers`` (an object), merged into the headers.

``http_conn_id=None`` means no connection: the endpoint must be a full URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from chalicelib.sdk.exceptions import TaskFailed
from chalicelib.sdk.hooks import BaseHook

SESSION_OPTIONS = frozenset(
    {"stream", "verify", "proxies", "cert", "max_redirects", "trust_env", "timeout"}
)


class HttpError(TaskFailed):
    """A request got an error status (``"<code>:<reason>"`` as in Airflow) or none at all."""

    def __init__(self, message: str) -> None:
        super().__init__(message, non_retryable=False)  # an HTTP error is worth a retry


class HttpHook(BaseHook):
    """One HTTP method against one connection (``http_conn_id``)."""

    default_conn_name = "http_default"

    def __init__(
        self,
        method: str = "POST",
        http_conn_id: str | None = "http_default",
        auth_type: Callable[..., AuthBase] | None = None,
    ):
        super().__init__()
        self.method = method.upper()
        self.http_conn_id = http_conn_id
        self.auth_type: Callable[..., AuthBase] = auth_type or HTTPBasicAuth
        self.base_url = ""
        self._session_options: dict[str, Any] = {}

    def get_conn(self, headers: Mapping[str, Any] | None = None) -> requests.Session:
        """A session with the connection's base URL, auth, headers and options applied."""
        session = requests.Session()
        self._session_options = {}
        if self.http_conn_id:
            conn = self.get_connection(self.http_conn_id)
            host = conn.host or ""
            if "://" in host:
                self.base_url = host
            else:
                self.base_url = f"{conn.schema or 'http'}://{host}" if host else ""
            if conn.port and self.base_url:
                self.base_url = f"{self.base_url.rstrip('/')}:{conn.port}"
            if conn.login:
                session.auth = self.auth_type(conn.login, conn.password or "")
            extra = conn.extra_dejson
            for name, value in extra.items():
                if name in SESSION_OPTIONS:
                    self._session_options[name] = value
                elif name == "headers" and isinstance(value, Mapping):
                    session.headers.update({str(k): str(v) for k, v in value.items()})
                else:
                    session.headers[str(name)] = str(value)
            for name in ("stream", "verify", "proxies", "cert", "max_redirects", "trust_env"):
                if name in self._session_options:
                    setattr(session, name, self._session_options[name])
        if headers:
            session.headers.update({str(k): str(v) for k, v in headers.items()})
        return session

    def url_from_endpoint(self, endpoint: str | None) -> str:
        """The base URL and the endpoint joined by exactly one ``/``."""
        endpoint = endpoint or ""
        if not self.base_url or "://" in endpoint:
            return endpoint
        if not endpoint:
            return self.base_url
        return f"{self.base_url.rstrip('/')}/{endpoint.lstrip('/')}"

    def run(
        self,
        endpoint: str | None = None,
        data: Any = None,
        headers: Mapping[str, Any] | None = None,
        extra_options: Mapping[str, Any] | None = None,
        **request_kwargs: Any,
    ) -> requests.Response:
        """Send the request: ``data`` is the query string for GET, the body otherwise."""
        options = dict(extra_options or {})
        session = self.get_conn(headers)
        url = self.url_from_endpoint(endpoint)
        if not url.startswith(("http://", "https://")):
            where = f"connection {self.http_conn_id!r}" if self.http_conn_id else "no connection"
            raise HttpError(f"no URL to call: endpoint {endpoint!r} with {where}")
        if self.method == "GET":
            request = requests.Request(
                self.method, url, params=data, headers=headers, **request_kwargs
            )
        elif self.method == "HEAD":
            request = requests.Request(self.method, url, headers=headers, **request_kwargs)
        else:
            request = requests.Request(
                self.method, url, data=data, headers=headers, **request_kwargs
            )
        prepared = session.prepare_request(request)
        self.log.info("Sending '%s' to url: %s", self.method, url)
        return self.run_and_check(session, prepared, options)

    def run_and_check(
        self,
        session: requests.Session,
        prepared: requests.PreparedRequest,
        extra_options: Mapping[str, Any],
    ) -> requests.Response:
        """Send and, unless ``check_response=False``, fail on a 4xx/5xx status."""
        options = {**self._session_options, **extra_options}
        settings = session.merge_environment_settings(
            prepared.url or "",
            options.get("proxies", {}),
            options.get("stream", False),
            options.get("verify"),
            options.get("cert"),
        )
        send_kwargs: dict[str, Any] = {
            "allow_redirects": options.get("allow_redirects", True),
            "timeout": options.get("timeout"),
            **settings,
        }
        try:
            response = session.send(prepared, **send_kwargs)
        except requests.exceptions.ConnectionError as exc:
            raise HttpError(f"cannot reach {prepared.url}: {exc}") from exc
        except requests.exceptions.Timeout as exc:
            raise HttpError(f"timed out calling {prepared.url}: {exc}") from exc
        if options.get("check_response", True):
            self.check_response(response)
        return response

    def check_response(self, response: requests.Response) -> None:
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as exc:
            self.log.error("HTTP error: %s", response.reason)
            self.log.error("%s", response.text[:2000])
            raise HttpError(f"{response.status_code}:{response.reason}") from exc
