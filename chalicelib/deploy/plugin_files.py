"""Which files of installed operator plugins go into the code bundle, and where.

Decision (docs/operators.md, "Plugins in deployed bundles"): a plugin is part of
the code a DAG version runs, so ``dags deploy`` **includes** every installed
distribution that registers ``slipstream.operators`` entries: its importable
files go under ``_plugins/`` in the bundle, which workers put on ``sys.path``
right after the bundle root, ahead of anything installed. A run therefore uses
the plugin version it was deployed with, and upgrading a plugin makes a new DAG
version, as editing a file in ``operators/`` does.

What cannot travel in a zip of source is **declared** instead: a distribution
named in ``SLIPSTREAM_PROVIDED_PLUGINS`` (comma-separated) is left out, and the
worker image or Lambda layer must install it. A plugin with compiled files
(``.so``, ``.pyd``) or installed in editable mode must be declared; the deploy
refuses it with a line saying so, rather than ship a bundle that fails on the
worker. A plugin's own dependencies are never bundled: they belong to the
worker runtime like any other third-party package.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from chalicelib.deploy.bundle import PLUGINS_FOLDER, BundleError
from chalicelib.sdk.plugins import normalize, plugin_distributions

PROVIDED_ENV = "SLIPSTREAM_PROVIDED_PLUGINS"
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")
# Of a distribution's metadata only what importlib.metadata needs to find it and
# its entry points: RECORD, INSTALLER and direct_url.json differ between machines.
KEPT_METADATA = frozenset({"METADATA", "entry_points.txt", "top_level.txt"})


def provided_plugins(environ: dict[str, str] | None = None) -> set[str]:
    """Distribution names the worker runtime installs itself (normalized)."""
    raw = (environ if environ is not None else os.environ).get(PROVIDED_ENV, "")
    return {normalize(name.strip()) for name in raw.split(",") if name.strip()}


def plugin_bundle_files(provided: Iterable[str] | None = None) -> list[tuple[str, Path]]:
    """(entry name in the bundle, file on disk) for every plugin to include, sorted."""
    skip = {normalize(n) for n in provided} if provided is not None else provided_plugins()
    files: dict[str, Path] = {}
    for dist in plugin_distributions():
        name = dist.metadata["Name"]
        if normalize(name) in skip:
            continue
        for entry, path in _distribution_files(dist, name):
            if entry in files and files[entry] != path:
                raise BundleError(f"plugin {name}: {entry} is also provided by another plugin")
            files[entry] = path
    return sorted(files.items())


def _distribution_files(dist: metadata.Distribution, name: str) -> list[tuple[str, Path]]:
    listed = dist.files
    if listed is None:
        raise BundleError(
            f"operator plugin {name}: its installed files are not listed (no RECORD); "
            f"reinstall it with pip, or install it in the worker image and add it to {PROVIDED_ENV}"
        )
    base = Path(str(dist.locate_file(""))).resolve()
    chosen: list[tuple[str, Path]] = []
    for item in listed:
        relative = PurePosixPath(str(item))
        if not relative.parts or relative.parts[0] == ".." or relative.is_absolute():
            continue  # console scripts and data files outside site-packages
        if "__pycache__" in relative.parts or relative.suffix == ".pyc":
            continue
        top = relative.parts[0]
        if top.endswith(".dist-info"):
            if relative.name not in KEPT_METADATA:
                continue
        elif relative.suffix == ".pth" or top.startswith("__editable__"):
            raise BundleError(
                f"operator plugin {name} is installed in editable mode ({relative}): its code is "
                f"not in site-packages; install it normally to deploy, or install it in the "
                f"worker image and add it to {PROVIDED_ENV}"
            )
        if relative.suffix in COMPILED_SUFFIXES or ".cpython-" in relative.name:
            raise BundleError(
                f"operator plugin {name} has compiled code ({relative}) that a bundle cannot "
                f"carry; install it in the worker image and add it to {PROVIDED_ENV}"
            )
        path = base / Path(*relative.parts)
        if path.is_file():
            chosen.append((f"{PLUGINS_FOLDER}/{relative.as_posix()}", path))
    return chosen
