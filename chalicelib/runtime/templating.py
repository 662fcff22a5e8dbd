"""Jinja rendering of an operator's template fields, as Airflow does it.

The environment matches Airflow's: sandboxed, ``StrictUndefined`` unless the
DAG says otherwise, the ``do`` extension, a file loader rooted at the DAG
file's folder (plus ``template_searchpath``), Airflow's date filters and the
DAG's ``user_defined_macros`` / ``user_defined_filters``. Rendering never
touches the operator the DAG holds: it works on a shallow copy, because tries
and mapped instances of one task run concurrently in threads.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

import jinja2
import jinja2.nativetypes
import jinja2.sandbox

from chalicelib.core.errors import SlipstreamError
from chalicelib.runtime.xcom_args import is_xcom_arg

_TEMPLATE_CACHE_SIZE = 1024


class TemplateRenderError(SlipstreamError):
    """A template field could not be rendered; the message names task and field."""


def ds_filter(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d")


def ds_nodash_filter(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%d")


def ts_filter(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def ts_nodash_filter(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y%m%dT%H%M%S")


def ts_nodash_with_tz_filter(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("-", "").replace(":", "")


FILTERS = {
    "ds": ds_filter,
    "ds_nodash": ds_nodash_filter,
    "ts": ts_filter,
    "ts_nodash": ts_nodash_filter,
    "ts_nodash_with_tz": ts_nodash_with_tz_filter,
}


class _SafeAttributes:
    """Airflow's relaxation of the sandbox: ``_private`` is readable, ``__dunder__`` is not."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("__"):
            return False
        return not jinja2.sandbox.is_internal_attribute(obj, attr)


class SandboxedEnvironment(_SafeAttributes, jinja2.sandbox.SandboxedEnvironment):
    """The default environment: what DAG authors' templates may reach is limited."""


class NativeEnvironment(_SafeAttributes, jinja2.nativetypes.NativeEnvironment):
    """``render_template_as_native_obj=True``: templates render to Python objects."""


class TemplateEnv:
    """One DAG's Jinja environment plus a cache of compiled inline templates.

    Compiling is the expensive part of rendering; the same strings come back
    for every try and mapped instance, so each is compiled once.
    """

    def __init__(self, env: jinja2.Environment, *, plain_syntax: bool):
        self.env = env
        self.native = isinstance(env, jinja2.nativetypes.NativeEnvironment)
        self._plain_syntax = plain_syntax and not self.native
        self._compiled: dict[str, jinja2.Template] = {}

    def render_string(self, source: str, context: Mapping[str, Any]) -> Any:
        if self._plain_syntax and "{" not in source and "\r" not in source:
            # What Jinja would return for a string without markup: itself, less
            # one trailing newline (keep_trailing_newline is off, as in Airflow).
            return source[:-1] if source.endswith("\n") else source
        template = self._compiled.get(source)
        if template is None:
            template = self.env.from_string(source)
            if len(self._compiled) >= _TEMPLATE_CACHE_SIZE:
                self._compiled.clear()
            self._compiled[source] = template
        return template.render(context)

    def render_file(self, name: str, context: Mapping[str, Any]) -> Any:
        return self.env.get_template(name).render(context)


_ENV_LOCK = threading.Lock()
_MAX_ENVS = 256
# Keyed by identity, not by equality: two DAG objects with one dag_id (a file
# imported twice, two bundle versions) may differ in folder or macros.
_ENVS: dict[int, tuple[Any, TemplateEnv]] = {}


def template_env(dag: Any) -> TemplateEnv:
    """The (cached) environment for ``dag``; a DAG object's settings are read once."""
    entry = _ENVS.get(id(dag))
    if entry is not None and entry[0] is dag:
        return entry[1]
    built = _build_env(dag)
    with _ENV_LOCK:
        if len(_ENVS) >= _MAX_ENVS:
            _ENVS.clear()
        _ENVS[id(dag)] = (dag, built)
    return built


def template_searchpath(dag: Any) -> list[str]:
    """The DAG file's folder first, then ``template_searchpath``, as Airflow orders them."""
    paths: list[str] = []
    fileloc = getattr(dag, "fileloc", None)
    if fileloc:
        paths.append(os.path.dirname(os.path.abspath(str(fileloc))))
    extra = getattr(dag, "template_searchpath", None) or ()
    if isinstance(extra, (str, os.PathLike)):
        extra = [extra]
    # A relative folder is taken from the DAG file's folder, not the process's working
    # directory, so the same bundle finds its templates on a laptop and in a worker.
    base = paths[0] if paths else os.getcwd()
    paths.extend(os.path.join(base, os.fspath(p)) for p in extra)
    return paths or [os.getcwd()]


def _build_env(dag: Any) -> TemplateEnv:
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(template_searchpath(dag)),
        "undefined": getattr(dag, "template_undefined", None) or jinja2.StrictUndefined,
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
    }
    user_options = dict(getattr(dag, "jinja_environment_kwargs", None) or {})
    options.update(user_options)
    native = bool(getattr(dag, "render_template_as_native_obj", False))
    env_class = NativeEnvironment if native else SandboxedEnvironment
    env = env_class(**options)
    env.filters.update(FILTERS)
    env.filters.update(getattr(dag, "user_defined_filters", None) or {})
    env.globals.update(getattr(dag, "user_defined_macros", None) or {})
    syntax_keys = {k for k in user_options if k.endswith(("_string", "_prefix"))}
    return TemplateEnv(env, plain_syntax=not syntax_keys)


def render_template_fields(
    operator: Any,
    context: Mapping[str, Any],
    *,
    env: TemplateEnv | None = None,
    keep_as_is: Collection[int] = (),
) -> Any:
    """A shallow copy of ``operator`` whose template fields hold rendered values.

    XComArgs inside the fields become their upstream values (not rendered
    further, as in Airflow). ``keep_as_is`` holds ids of values that must not
    be rendered either: mapped arguments that came from an upstream result.
    """
    dag = getattr(operator, "dag", None)
    env = env or template_env(dag)
    rendered = copy.copy(operator)
    task_id = getattr(operator, "task_id", "?")
    template_ext = tuple(getattr(operator, "template_ext", ()) or ())
    seen: set[int] = set()
    for field in getattr(operator, "template_fields", ()) or ():
        value = getattr(operator, field)
        if value is None:
            continue
        try:
            new_value = _render(value, context, env, template_ext, keep_as_is, seen)
        except TemplateRenderError:
            raise
        except jinja2.TemplateNotFound as exc:
            raise TemplateRenderError(
                f"task {task_id!r} field {field!r}: template file {exc.name!r} not found "
                f"in {template_searchpath(dag)} (a string ending in {template_ext} is read "
                "as a file; add a trailing space to use it as a literal command)"
            ) from exc
        except Exception as exc:
            raise TemplateRenderError(
                f"task {task_id!r} field {field!r}: {_describe(exc)}"
            ) from exc
        object.__setattr__(rendered, field, new_value)
    return rendered


def render_value(value: Any, context: Mapping[str, Any], env: TemplateEnv) -> Any:
    """Render one value the way template fields are rendered (no template files)."""
    return _render(value, context, env, (), (), set())


def _render(
    value: Any,
    context: Mapping[str, Any],
    env: TemplateEnv,
    template_ext: tuple[str, ...],
    keep_as_is: Collection[int],
    seen: set[int],
) -> Any:
    if isinstance(value, str):
        if id(value) in keep_as_is:
            return value
        if template_ext and value.endswith(template_ext):
            return env.render_file(value, context)
        return env.render_string(value, context)
    if isinstance(value, (int, float, bool, bytes, type(None), datetime)):
        return value
    if id(value) in keep_as_is:
        return value
    if is_xcom_arg(value):
        return value.resolve(context)
    if isinstance(value, dict):
        return {
            k: _render(v, context, env, template_ext, keep_as_is, seen) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_render(v, context, env, template_ext, keep_as_is, seen) for v in value]
    if isinstance(value, tuple):
        items = [_render(v, context, env, template_ext, keep_as_is, seen) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, (set, frozenset)):
        return type(value)(_render(v, context, env, template_ext, keep_as_is, seen) for v in value)
    fields = getattr(value, "template_fields", None)
    if fields and not isinstance(value, type) and id(value) not in seen:
        # Airflow also renders objects that declare their own template_fields.
        seen.add(id(value))
        nested = copy.copy(value)
        for name in fields:
            inner = getattr(value, name, None)
            if inner is not None:
                new_inner = _render(inner, context, env, template_ext, keep_as_is, seen)
                object.__setattr__(nested, name, new_inner)
        return nested
    return value


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = exc.filename or exc.name or "<template>"
        return f"{text} ({where}:{exc.lineno})"
    if isinstance(exc, jinja2.UndefinedError):
        return text
    return f"{type(exc).__name__}: {text}"
