"""Errors of the connection and variable stores as HTTP answers, and offset paging
over their token-paged lists."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.api.errors import ApiError, BadRequest, Conflict, NotFound
from chalicelib.secrets.errors import (
    AlreadyExists,
    BackendError,
    InvalidKey,
    InvalidValue,
)
from chalicelib.secrets.errors import NotFound as SecretNotFound


class Unavailable(ApiError):
    status = 503


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except AlreadyExists as exc:
        raise Conflict(str(exc)) from None
    except SecretNotFound as exc:
        raise NotFound(str(exc)) from None
    except (InvalidKey, InvalidValue) as exc:
        raise BadRequest(str(exc)) from None
    except BackendError as exc:
        raise Unavailable(f"The secrets store did not answer; try again ({exc})") from None


def offset_page(
    fetch: Callable[[str | None], tuple[list[Any], str | None]], offset: int, limit: int
) -> tuple[list[Any], int]:
    """Skip ``offset`` entries of a token-paged list, keep ``limit``, and count them
    all. Secrets Manager and SSM page by token and count nothing, so the total
    walks the tenant's whole list (a tenant has tens, not thousands)."""
    page: list[Any] = []
    seen = 0
    token: str | None = None
    while True:
        items, token = fetch(token)
        for item in items:
            if offset <= seen < offset + limit:
                page.append(item)
            seen += 1
        if token is None:
            return page, seen
