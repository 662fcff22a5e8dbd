"""The CLI's HTTP client for a Slipstream API (a deployment or ``slipstream dev``).

Scripts call the CLI, so its failures must be short and classifiable: every
error is ONE line on stderr, ``error: <status> <detail>``, and the exit code
says whose fault it was:

    0  it worked
    1  the thing asked about failed (a run ended failed)
    2  bad input: a 4xx answer, or an argument the CLI refused
    3  the API cannot be reached, timed out, or answered 5xx
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import requests
import typer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3

API_PATH = "/api/v2"
TIMEOUT_SECONDS = 30.0
URL_ENV = "SLIPSTREAM_API_URL"
KEY_ENV = "SLIPSTREAM_API_KEY"

ApiUrl = Annotated[
    str | None,
    typer.Option("--api-url", envvar=URL_ENV, help="Slipstream API base URL.", show_default=False),
]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar=KEY_ENV, help="API key (Bearer).", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]


def fail(status: Any, detail: Any, code: int) -> NoReturn:
    """Print the one error line and exit with ``code``."""
    if not isinstance(detail, str):
        detail = json.dumps(detail, default=str)
    line = " ".join(str(p) for p in (status, detail) if p not in (None, ""))
    typer.echo(f"error: {' '.join(line.split())}", err=True)
    raise typer.Exit(code)


def bad_input(detail: str) -> NoReturn:
    fail("", detail, EXIT_BAD_INPUT)


def configured(api_url: str | None) -> bool:
    """Whether commands that can work either way (pools, keys, deploy) go to the API."""
    return bool(api_url or os.environ.get(URL_ENV))


def _detail(response: requests.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        if isinstance(detail, list):  # pydantic errors: "loc: msg" each
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}"
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        return detail
    return body


def _gateway_refusal(response: requests.Response) -> bool:
    if response.status_code != 403:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "message" in body and "detail" not in body


@dataclass
class Client:
    base_url: str
    api_key: str | None
    timeout: float = TIMEOUT_SECONDS

    @classmethod
    def from_options(cls, api_url: str | None, api_key: str | None) -> Client:
        url = api_url or os.environ.get(URL_ENV)
        key = api_key or os.environ.get(KEY_ENV)
        if not url:
            bad_input(f"no API: pass --api-url or set {URL_ENV} (slipstream dev prints it)")
        url = url.rstrip("/")
        # Either the server's root or its /api/v2 works: both are printed and documented.
        if url.endswith(API_PATH):
            url = url[: -len(API_PATH)]
        return cls(base_url=url, api_key=key)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        accept_404: bool = False,
    ) -> Any:
        """JSON out of the answer (None for 204, or a 404 when ``accept_404``);
        anything else than 2xx ends the CLI with the one-line error."""
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = f"{self.base_url}{API_PATH}{path}"
        try:
            response = requests.request(
                method,
                url,
                json=body,
                params=params,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.Timeout:
            fail("", f"{method} {url}: no answer in {self.timeout:g}s", EXIT_UNREACHABLE)
        except requests.RequestException as exc:
            reason = type(exc).__name__
            fail("", f"cannot reach {self.base_url} ({reason})", EXIT_UNREACHABLE)
        if response.status_code == 404 and accept_404:
            return None
        if _gateway_refusal(response):
            # API Gateway (and chalice local) answer an unknown route with a 403
            # that quotes the Authorization header: say what happened, not the key.
            fail(
                404,
                f"the API has no {method} {API_PATH}{path}; is it older than this CLI?",
                EXIT_BAD_INPUT,
            )
        if response.status_code >= 500:
            fail(response.status_code, _detail(response), EXIT_UNREACHABLE)
        if response.status_code >= 400:
            fail(response.status_code, _detail(response), EXIT_BAD_INPUT)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            fail(response.status_code, "the answer is not JSON", EXIT_UNREACHABLE)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Any, **params: Any) -> Any:
        return self.request("PATCH", path, body=body, params=params or None)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def quote(segment: str) -> str:
    """A path segment as the API expects it (run ids hold ':' and '+')."""
    from urllib.parse import quote as url_quote

    return url_quote(segment, safe="")


def parse_json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        bad_input(f"{option}: not valid JSON: {exc.msg}")
    if not isinstance(value, dict):
        bad_input(f"{option}: must be a JSON object")
    return value
