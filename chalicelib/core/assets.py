"""Assets (Airflow's data-aware scheduling) as the control plane sees them.

An asset is identified by its normalized URI, as in Airflow 3. A DAG scheduled
on assets carries a condition: a tree of ``all``/``any`` nodes over asset and
alias leaves (``a & (b | c)``). Whether a run is due is a pure function of that
tree and the set of URIs with queued events, so it is decided here, without
I/O, and the scheduler only fetches the queue of the one consuming DAG.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Iterator, Set
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_IDENTIFIER = 1500
DEFAULT_GROUP = "asset"
ALIAS_GROUP = "asset"


class AssetError(ValueError):
    """An asset's URI, name, group or extra is not one Airflow would accept."""


def normalize_uri(uri: str) -> str:
    """The URI Airflow 3 stores for ``uri``; raises AssetError when it is invalid.

    Plain strings (no scheme) and ``x-`` schemes are kept as given; otherwise the
    scheme is lower-cased, a password is dropped with the user info (Airflow
    warns and drops it), query parameters are sorted, trailing slashes and the
    fragment removed. ``airflow`` is reserved, and ``s3`` needs a bucket.
    """
    _check_identifier("uri", uri)
    parsed = urllib.parse.urlsplit(uri)
    if not parsed.scheme and not parsed.netloc:
        return uri
    scheme = parsed.scheme.lower()
    if not scheme or scheme.startswith("x-"):
        return uri
    if scheme == "airflow":
        raise AssetError("Asset scheme 'airflow' is reserved")
    netloc = parsed.netloc.rpartition("@")[2] if parsed.password else parsed.netloc
    query = ""
    if parsed.query:
        query = urllib.parse.urlencode(sorted(urllib.parse.parse_qsl(parsed.query)))
    parts = parsed._replace(
        scheme=scheme, netloc=netloc, path=parsed.path.rstrip("/") or "/", query=query, fragment=""
    )
    if scheme in ("s3", "s3a") and not parts.netloc:
        raise AssetError(f"URI format {scheme}:// must contain a bucket name: {uri!r}")
    return urllib.parse.urlunsplit(parts)


def _check_identifier(what: str, value: Any) -> None:
    if not isinstance(value, str):
        raise AssetError(f"Asset {what} must be a str, got {value!r}")
    if not value or value.isspace():
        raise AssetError(f"Asset {what} cannot be empty or just whitespace")
    if len(value) > MAX_IDENTIFIER:
        raise AssetError(f"Asset {what} is longer than {MAX_IDENTIFIER} characters")
    if not value.isascii():
        raise AssetError(f"Asset {what} must only consist of ASCII characters: {value!r}")


def asset_id(uri: str) -> int:
    """A stable integer id for a normalized URI (Airflow's ``asset_id`` is an int).

    Derived from the URI rather than counted, so every deploy, worker and API
    call agrees on it without a shared counter; 48 bits stay exact in JavaScript.
    """
    return int(hashlib.sha256(uri.encode()).hexdigest()[:12], 16)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AssetRef(_Frozen):
    """One asset as a spec records it (outlet or condition leaf)."""

    type: Literal["asset"] = "asset"
    uri: str
    name: str
    group: str = DEFAULT_GROUP
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def build(
        cls,
        uri: str | None = None,
        name: str | None = None,
        group: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> AssetRef:
        """Airflow's rules: name defaults to the URI and the URI to the name."""
        if not uri and not name:
            raise AssetError("Asset() requires either 'name' or 'uri'")
        uri = uri or name
        name = name or uri
        assert uri is not None and name is not None
        _check_identifier("name", name)
        normalized = normalize_uri(uri)
        group = DEFAULT_GROUP if group is None else group
        if group:
            _check_identifier("group", group)
        extra = dict(extra or {})
        try:
            json.dumps(extra)
        except (TypeError, ValueError) as exc:
            raise AssetError(f"Asset extra must be JSON-serializable: {exc}") from None
        return cls(uri=normalized, name=name, group=group, extra=extra)

    @property
    def asset_id(self) -> int:
        return asset_id(self.uri)


class AliasRef(_Frozen):
    """An asset alias: the assets behind it are known only when a task emits."""

    type: Literal["alias"] = "alias"
    name: str
    group: str = ALIAS_GROUP


class AllOf(_Frozen):
    type: Literal["all"] = "all"
    objects: list[Condition]


class AnyOf(_Frozen):
    type: Literal["any"] = "any"
    objects: list[Condition]


Condition = Annotated[AssetRef | AliasRef | AllOf | AnyOf, Field(discriminator="type")]
AllOf.model_rebuild()
AnyOf.model_rebuild()


def alias_key(name: str) -> str:
    """How an alias appears among queued keys (no URI can start this way)."""
    return f"alias:{name}"


def leaf_key(leaf: AssetRef | AliasRef) -> str:
    return leaf.uri if isinstance(leaf, AssetRef) else alias_key(leaf.name)


def is_met(condition: Condition, queued: Set[str]) -> bool:
    """True when the events queued (by URI, or ``alias:<name>``) satisfy ``condition``.

    Airflow's AssetAll/AssetAny: ``all`` needs every branch, ``any`` one; an empty
    ``all`` is satisfied and an empty ``any`` is not, like Python's all()/any().
    """
    if isinstance(condition, (AssetRef, AliasRef)):
        return leaf_key(condition) in queued
    if isinstance(condition, AllOf):
        return all(is_met(c, queued) for c in condition.objects)
    return any(is_met(c, queued) for c in condition.objects)


def leaves(condition: Condition) -> Iterator[AssetRef | AliasRef]:
    """Every asset and alias the condition names, left to right, repeats included."""
    if isinstance(condition, (AssetRef, AliasRef)):
        yield condition
        return
    for child in condition.objects:
        yield from leaves(child)


def consumed_uris(condition: Condition | None) -> list[str]:
    """What a DAG waits for, as consumer index keys: asset URIs and ``alias:<name>``."""
    if condition is None:
        return []
    return sorted({leaf_key(leaf) for leaf in leaves(condition)})


def waiting_for(condition: Condition, queued: Set[str]) -> tuple[list[str], list[str]]:
    """(keys with events queued, keys still missing), for explaining a wait."""
    keys = sorted({leaf_key(leaf) for leaf in leaves(condition)})
    return [k for k in keys if k in queued], [k for k in keys if k not in queued]


def describe(condition: Condition) -> str:
    """``a & (b | c)`` written back with URIs (alias leaves as ``alias:<name>``)."""
    if isinstance(condition, (AssetRef, AliasRef)):
        return leaf_key(condition)
    sep = " & " if isinstance(condition, AllOf) else " | "
    parts = [
        f"({describe(c)})" if isinstance(c, (AllOf, AnyOf)) else describe(c)
        for c in condition.objects
    ]
    return sep.join(parts)


def airflow_expression(condition: Condition | None) -> dict[str, Any] | None:
    """Airflow's ``asset_expression`` shape in DAG details (``{"all": [...]}`` etc.)."""
    if condition is None:
        return None
    if isinstance(condition, AssetRef):
        return {"asset": {"uri": condition.uri, "name": condition.name, "group": condition.group,
                          "id": condition.asset_id}}  # fmt: skip
    if isinstance(condition, AliasRef):
        return {"alias": {"name": condition.name, "group": condition.group}}
    key = "all" if isinstance(condition, AllOf) else "any"
    return {key: [airflow_expression(c) for c in condition.objects]}
