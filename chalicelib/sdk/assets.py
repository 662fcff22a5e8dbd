"""``Asset``, ``Dataset``, ``AssetAlias``, ``AssetAll`` and ``AssetAny`` for DAG files.

They mirror ``airflow.sdk`` (and ``airflow.datasets.Dataset`` for Airflow 2
files): assets are combined with ``&`` and ``|``, named in ``outlets=[...]``
of any task and in ``schedule=[...]`` of a DAG. Validation errors surface
where Airflow raises them, when the object is built, as ValueError/TypeError.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.core.assets import (
    AliasRef,
    AllOf,
    AnyOf,
    AssetError,
    AssetRef,
    Condition,
)


class BaseAsset:
    """What ``&`` and ``|`` combine (Airflow's BaseAsset)."""

    def __and__(self, other: BaseAsset) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def __or__(self, other: BaseAsset) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)

    def to_condition(self) -> Condition:
        raise NotImplementedError


class Asset(BaseAsset):
    """``Asset("s3://bucket/key")`` or ``Asset(name="orders", uri=...)``."""

    def __init__(
        self,
        uri: str | None = None,
        name: str | None = None,
        group: str | None = None,
        extra: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        if kwargs:
            raise TypeError(f"Asset() got unexpected arguments: {', '.join(sorted(kwargs))}")
        try:
            self._ref = AssetRef.build(uri=uri, name=name, group=group, extra=extra)
        except AssetError as exc:
            raise ValueError(str(exc)) from None

    @property
    def uri(self) -> str:
        return self._ref.uri

    @property
    def name(self) -> str:
        return self._ref.name

    @property
    def group(self) -> str:
        return self._ref.group

    @property
    def extra(self) -> dict[str, Any]:
        return dict(self._ref.extra)

    def to_condition(self) -> AssetRef:
        return self._ref

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Asset):
            return (self.uri, self.name, self.group) == (other.uri, other.name, other.group)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.uri, self.name, self.group))

    def __fspath__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Asset(name={self.name!r}, uri={self.uri!r}, group={self.group!r})"


class Dataset(Asset):
    """Airflow 2's name for an asset (``airflow.datasets.Dataset``)."""


class Model(Asset):
    """``airflow.sdk.Model``: an asset in the ``model`` group."""

    def __init__(self, uri: str | None = None, name: str | None = None, **kwargs: Any):
        kwargs.setdefault("group", "model")
        super().__init__(uri, name, **kwargs)


class AssetAlias(BaseAsset):
    """A name a task resolves to concrete assets at run time (``outlet_events[alias]``)."""

    def __init__(self, name: str, group: str = ""):
        if not isinstance(name, str) or not name.strip():
            raise ValueError("AssetAlias needs a non-empty name")
        self.name = name
        self.group = group or "asset"

    def to_condition(self) -> AliasRef:
        return AliasRef(name=self.name, group=self.group)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AssetAlias):
            return self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("alias", self.name))

    def __repr__(self) -> str:
        return f"AssetAlias(name={self.name!r})"


class _Boolean(BaseAsset):
    kind: type[AllOf] | type[AnyOf]

    def __init__(self, *objects: BaseAsset):
        for obj in objects:
            if not isinstance(obj, BaseAsset):
                raise TypeError(f"{type(self).__name__} takes assets, got {obj!r}")
        self.objects = list(objects)

    def to_condition(self) -> Condition:
        return self.kind(objects=[o.to_condition() for o in self.objects])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"


class AssetAll(_Boolean):
    """Every branch must have an event queued (``a & b``)."""

    kind = AllOf

    def __and__(self, other: BaseAsset) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(*self.objects, other)


class AssetAny(_Boolean):
    """One branch is enough (``a | b``)."""

    kind = AnyOf

    def __or__(self, other: BaseAsset) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(*self.objects, other)


DatasetAll = AssetAll
DatasetAny = AssetAny
DatasetAlias = AssetAlias


def schedule_condition(items: Iterable[Any]) -> Condition | None:
    """``schedule=[a, b]`` means all of them (Airflow); one expression stays as it is."""
    assets = [i for i in items if isinstance(i, BaseAsset)]
    if not assets:
        return None
    if len(assets) == 1 and isinstance(assets[0], _Boolean):
        return assets[0].to_condition()
    return AllOf(objects=[a.to_condition() for a in assets])


def outlet_refs(outlets: Any) -> list[AssetRef | AliasRef]:
    """The assets a task's ``outlets`` names; raises TypeError for anything else."""
    if outlets is None:
        return []
    items = list(outlets) if isinstance(outlets, (list, tuple, set)) else [outlets]
    refs: list[AssetRef | AliasRef] = []
    for item in items:
        if isinstance(item, (Asset, AssetAlias)):
            refs.append(item.to_condition())
        else:
            raise TypeError(f"outlets must be Asset or AssetAlias objects, got {item!r}")
    return refs
