"""``XComArg.map(fn)`` and ``XComArg.zip(*others, fillvalue=...)``: Airflow's composed results.

A composed reference is still a reference to upstream results: it declares the
same edges as the plain references it is made of, and the worker resolves it.
What it adds is applied lazily, element by element, when a mapped instance asks
for its own element: ``fn`` runs inside that instance's try (so an
AirflowSkipException raised in ``fn`` skips just that instance, any other error
fails it under its retries), never in the scheduler. The scheduler needs only
the length, which ``map`` keeps and ``zip`` takes as the shortest of its inputs
(the longest when a ``fillvalue`` is given); the spec records that shape
(``MapSource.map_callables`` / ``zip_sources``) and the callables by reference.

Deliberate difference from Airflow: a dict result is taken as its ``(key, value)``
pairs, as ``expand`` over a dict does, where Airflow indexes the dict by position
number (and fails, or fills). See docs/porting.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from chalicelib.core.spec import MapSource
from chalicelib.sdk.xcom_arg import NOTSET, RETURN_VALUE, XComArg

if TYPE_CHECKING:
    from chalicelib.sdk.dependencies import TaskNode


class SpecReferences(Protocol):
    """What the serializer lends a composed reference to describe itself stably
    (callables named by their DAG file's bundle path, not the loader's module name)."""

    def encode(self, value: Any) -> Any: ...

    def callable_ref(self, value: Any) -> str: ...


class ComposedXComArg(XComArg):
    """A reference built from plain XComArgs; it has no single ``operator`` or ``key``."""

    operator: Any = None
    key: Any = None

    def __init__(self) -> None:
        """Unlike XComArg, no single operator and key: subclasses keep their parts."""

    def plain_args(self) -> Iterator[XComArg]:
        """The plain references this one reads, in order (repeats kept)."""
        raise NotImplementedError

    def iter_references(self) -> Iterator[tuple[TaskNode, str]]:
        for arg in self.plain_args():
            yield arg.operator, arg.key

    def _relation_roots(self) -> list[TaskNode]:
        return list(dict.fromkeys(arg.operator for arg in self.plain_args()))

    def _relation_leaves(self) -> list[TaskNode]:
        return self._relation_roots()

    @property
    def task_id(self) -> str:
        raise AttributeError(f"{self!r} reads several results; it has no single task_id")

    def __getitem__(self, key: str) -> NoReturn:
        raise TypeError(f"{self!r} cannot be indexed by key: only a task's own result can")

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def map(self, f: Callable[[Any], Any]) -> XComArg:
        return MapXComArg(self, [_checked_callable(f)])

    def map_source(self, refs: SpecReferences) -> MapSource:
        """The shape the scheduler sizes the map from (core.spec.MapSource)."""
        raise NotImplementedError

    def describe(self, refs: SpecReferences) -> dict[str, Any]:
        """The spec's record of this reference (``TaskSpec.args``): what it reads and does."""
        raise NotImplementedError

    def __slipstream_encode__(self) -> dict[str, Any]:
        return self.describe(_RawReferences())


class MapXComArg(ComposedXComArg):
    """``arg.map(f1).map(f2)``: each element of ``arg`` passed through f1, then f2."""

    def __init__(self, arg: XComArg, callables: Sequence[Callable[[Any], Any]]):
        super().__init__()
        self.arg = arg
        self.callables = list(callables)

    def plain_args(self) -> Iterator[XComArg]:
        yield from _plain_args_of(self.arg)

    def map(self, f: Callable[[Any], Any]) -> XComArg:
        # arg.map(f).map(g) is one map with two functions, as in Airflow.
        return MapXComArg(self.arg, [*self.callables, _checked_callable(f)])

    def resolve(self, context: Mapping[str, Any]) -> Sequence[Any]:
        value = self.arg.resolve(context)
        return MappedResult(_as_sequence(value, "map", self.arg), self.callables)

    def map_source(self, refs: SpecReferences) -> MapSource:
        base = _map_source_of(self.arg, refs)
        names = [refs.callable_ref(f) for f in self.callables]
        return base.model_copy(update={"map_callables": [*base.map_callables, *names]})

    def describe(self, refs: SpecReferences) -> dict[str, Any]:
        return _tagged(
            {
                "type": "map",
                "arg": refs.encode(self.arg),
                "callables": [refs.callable_ref(f) for f in self.callables],
            }
        )

    def __repr__(self) -> str:
        calls = "".join(f".map({getattr(f, '__name__', f)!s})" for f in self.callables)
        return f"{self.arg!r}{calls}"


class ZipXComArg(ComposedXComArg):
    """``a.zip(b, ...)``: tuples of the inputs' elements, like ``zip`` or ``zip_longest``."""

    def __init__(self, args: Sequence[XComArg], *, fillvalue: Any = NOTSET):
        super().__init__()
        self.args = list(args)
        self.fillvalue = fillvalue

    @property
    def longest(self) -> bool:
        return self.fillvalue is not NOTSET

    def plain_args(self) -> Iterator[XComArg]:
        for arg in self.args:
            yield from _plain_args_of(arg)

    def resolve(self, context: Mapping[str, Any]) -> Sequence[Any]:
        values = [_as_sequence(arg.resolve(context), "zip", arg) for arg in self.args]
        return ZippedResult(values, self.fillvalue)

    def map_source(self, refs: SpecReferences) -> MapSource:
        return MapSource(
            zip_sources=[_map_source_of(arg, refs) for arg in self.args],
            zip_longest=self.longest,
        )

    def describe(self, refs: SpecReferences) -> dict[str, Any]:
        described: dict[str, Any] = {"type": "zip", "args": [refs.encode(a) for a in self.args]}
        if self.longest:
            described["fillvalue"] = refs.encode(self.fillvalue)
        return _tagged(described)

    def __repr__(self) -> str:
        first, *rest = (repr(arg) for arg in self.args)
        extra = [f"fillvalue={self.fillvalue!r}"] if self.longest else []
        return f"{first}.zip({', '.join([*rest, *extra])})"


class MappedResult(Sequence[Any]):
    """The resolved ``map``: ``fn`` runs only on the elements read, when they are read."""

    def __init__(self, values: Sequence[Any], callables: Sequence[Callable[[Any], Any]]):
        self._values = values
        self._callables = callables

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        value = self._values[index]
        for f in self._callables:
            value = f(value)
        return value


class Indexable(Protocol):
    """What zip reads of an input: a length and one element (a list, or a lazy source)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


class ZippedResult(Sequence[Any]):
    """The resolved ``zip``: element ``i`` is the tuple of every input's element ``i``."""

    def __init__(self, values: Sequence[Indexable], fillvalue: Any):
        self._values = values
        self._fillvalue = fillvalue

    def __len__(self) -> int:
        lengths = [len(v) for v in self._values]
        return max(lengths) if self._fillvalue is not NOTSET else min(lengths)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"zip index {index} is outside 0..{size - 1}")
        return tuple(v[index] if index < len(v) else self._fillvalue for v in self._values)


def split_map(value: Any) -> tuple[Any, Callable[[Any], Any] | None]:
    """A map's source and the function that turns one of its elements into the map's
    element; ``(value, None)`` for anything else. The worker reads only its own element
    of the source (one page of a large stored list), then applies the function."""
    if not isinstance(value, MapXComArg):
        return value, None
    callables = tuple(value.callables)

    def apply(element: Any) -> Any:
        for f in callables:
            element = f(element)
        return element

    return value.arg, apply


# -- building them (XComArg.map / XComArg.zip call these) -----------------------
def map_arg(arg: XComArg, f: Any) -> XComArg:
    """``arg.map(f)`` for a plain reference: only a task's return value can be mapped."""
    if arg.key != RETURN_VALUE:
        raise ValueError(
            f"cannot map against non-return XCom {arg!r}: map() reads a task's return value"
        )
    return MapXComArg(arg, [_checked_callable(f)])


def zip_args(first: XComArg, others: Sequence[Any], fillvalue: Any = NOTSET) -> ZipXComArg:
    """``first.zip(*others)``: every input must be a task result (an XComArg)."""
    if not isinstance(first, ComposedXComArg) and first.key != RETURN_VALUE:
        raise ValueError(
            f"cannot map against non-return XCom {first!r}: zip() reads a task's return value"
        )
    for position, other in enumerate(others, start=1):
        if not isinstance(other, XComArg):
            raise TypeError(
                f"zip() argument {position} must be a task's result (an XComArg), got "
                f"{type(other).__name__}: a literal list cannot be zipped; return it from "
                "a task, or pass it to expand() as its own argument"
            )
    return ZipXComArg([first, *others], fillvalue=fillvalue)


def _checked_callable(f: Any) -> Callable[[Any], Any]:
    from chalicelib.sdk.decorators import _TaskDecorator  # decorators import this module's users
    from chalicelib.sdk.dependencies import DependencyMixin

    if isinstance(f, _TaskDecorator):
        raise ValueError("map() argument must be a plain function, not a @task operator")
    if isinstance(f, DependencyMixin):
        raise TypeError(
            f"map() argument must be a plain function, not a task or task result: {f!r}"
        )
    if not callable(f):
        raise TypeError(f"map() argument must be a callable, got {type(f).__name__}: {f!r}")
    return f


def _plain_args_of(arg: XComArg) -> Iterator[XComArg]:
    if isinstance(arg, ComposedXComArg):
        yield from arg.plain_args()
    else:
        yield arg


def _map_source_of(arg: XComArg, refs: SpecReferences) -> MapSource:
    if isinstance(arg, ComposedXComArg):
        return arg.map_source(refs)
    return MapSource(xcom_task_id=arg.operator.task_id, xcom_key=arg.key)


def _as_sequence(value: Any, what: str, arg: XComArg) -> Sequence[Any]:
    """A result as the elements a map or zip goes over: a dict gives its (key, value) pairs."""
    if isinstance(value, Mapping):
        return list(value.items())
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return value
    raise ValueError(f"XCom {what} expects a list or dict from {arg!r}, not {type(value).__name__}")


def _tagged(described: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.core.values import XCOM_TAG

    return {XCOM_TAG: described}


class _RawReferences:
    """Outside the serializer (a log line, a repr): module names as Python has them."""

    def encode(self, value: Any) -> Any:
        from chalicelib.core.values import encode

        return encode(value)

    def callable_ref(self, value: Any) -> str:
        module = getattr(value, "__module__", None) or "builtins"
        name = getattr(value, "__qualname__", None) or type(value).__qualname__
        return f"{module}:{name}"
