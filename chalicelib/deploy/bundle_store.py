"""Where bundles live (S3, or a folder for tests and dev) and how workers import from them.

A worker needs the DAG object of its run's pinned version. Downloading and
unzipping on every try would dominate short tasks, so an extracted bundle is
kept for the life of the process (a warm Lambda container): in a module-level
table, and on disk under a folder named by the bundle's hash. Extraction goes
to a temporary sibling folder that is renamed into place only when complete,
so a crash (or a timeout) mid-extraction never leaves a folder that looks
ready; leftovers are named ``.partial-*`` and never read.

Imported DAG files are cached per (bundle, file) too. Two bundles define
modules of the same names (``operators``, ``dags.helpers``), so before
importing from a bundle, modules that came from another bundle (or from the
installed ``operators`` library, which a bundle's own copy replaces) are
dropped from ``sys.modules``. DAG objects already imported keep the modules
they were built with.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any

from chalicelib.core.errors import DagValidationError, SlipstreamError
from chalicelib.deploy.bundle import (
    PLUGINS_FOLDER,
    Bundle,
    BundleError,
    safe_members,
    sha256_of_key,
)
from chalicelib.sdk.loader import LoadResult, load_dags

PARTIAL_PREFIX = ".partial-"
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "slipstream-bundles"

# Shared by every store object of the process, so a warm container extracts and
# imports each bundle once whichever handler asks.
_extracted: dict[tuple[Path, str], Path] = {}
_dag_files: dict[tuple[Path, str, str], LoadResult] = {}
_lock = threading.RLock()


class BundleStore(abc.ABC):
    """Content-addressed bundles plus small JSON documents (the deploy manifest)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR

    # -------------------------------------------------------------- backend

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def _write(self, key: str, data: bytes, content_type: str) -> None: ...

    @abc.abstractmethod
    def _read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such key."""

    # -------------------------------------------------------------- bundles

    def put(self, bundle: Bundle) -> str:
        """Store the bundle under ``bundles/<sha256>.zip``; an existing key is not rewritten."""
        if not self.exists(bundle.key):
            self._write(bundle.key, bundle.data, "application/zip")
        return bundle.key

    def load(self, key: str) -> Path:
        """The folder holding the extracted bundle ``key``, downloading it at most once."""
        digest = sha256_of_key(key)
        cache_key = (self.cache_dir.resolve(), digest)
        with _lock:
            ready = _extracted.get(cache_key)
            if ready is not None and ready.is_dir():
                return ready
            target = cache_key[0] / digest
            if not target.is_dir():
                self._extract(key, digest, target)
            _extracted[cache_key] = target
            return target

    def load_dag(self, key: str, fileloc: str, dag_id: str) -> Any:
        """The DAG ``dag_id`` defined in ``fileloc`` (relative to the bundle root) of ``key``.

        Raises DagValidationError when the file does not import, SlipstreamError
        when it imports but defines no such DAG.
        """
        root = self.load(key)
        path = (root / fileloc).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise BundleError(f"bundle {key} has no DAG file {fileloc!r}")
        cache_key = (root, fileloc, key)
        with _lock:
            result = _dag_files.get(cache_key)
            if result is None:
                result = _import_from_bundle(root, path)
                if not result.problems:  # a broken import is retried, never cached
                    _dag_files[cache_key] = result
        if dag_id in result.dags:
            return result.dags[dag_id]
        if result.problems:
            raise DagValidationError(result.problems)
        found = ", ".join(sorted(result.dags)) or "none"
        raise SlipstreamError(f"bundle {key}: no DAG {dag_id!r} in {fileloc}; found: {found}")

    def _extract(self, key: str, digest: str, target: Path) -> None:
        data = self._read(key)
        if data is None:
            raise BundleError(f"no bundle {key} in {self.describe()}")
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise BundleError(f"bundle {key} is corrupt: its content hashes to {actual}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.parent / f"{PARTIAL_PREFIX}{digest}-{uuid.uuid4().hex}"
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(partial, members=safe_members(archive))
            try:
                partial.rename(target)
            except OSError:
                # Another process renamed its complete copy first: same bytes, use it.
                if not target.is_dir():
                    raise
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)

    # -------------------------------------------------------------- documents

    def get_json(self, key: str) -> Any:
        """A JSON document, or None when ``key`` does not exist."""
        data = self._read(key)
        return None if data is None else json.loads(data.decode())

    def put_json(self, key: str, value: Any) -> None:
        body = json.dumps(value, indent=2, sort_keys=True).encode()
        self._write(key, body, "application/json")

    def describe(self) -> str:
        return type(self).__name__


class S3BundleStore(BundleStore):
    def __init__(
        self, bucket: str, s3_client: Any, *, cache_dir: str | os.PathLike[str] | None = None
    ):
        super().__init__(cache_dir)
        self.bucket = bucket
        self._s3 = s3_client

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _write(self, key: str, data: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def _read(self, key: str) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def describe(self) -> str:
        return f"s3://{self.bucket}"


class LocalBundleStore(BundleStore):
    """Bundles as files under ``root_dir`` (same keys as S3), for tests and dev."""

    def __init__(
        self, root_dir: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None
    ):
        self.root_dir = Path(root_dir)
        super().__init__(cache_dir if cache_dir is not None else self.root_dir / ".cache")

    def _path(self, key: str) -> Path:
        path = (self.root_dir / key).resolve()
        if not path.is_relative_to(self.root_dir.resolve()):
            raise BundleError(f"key {key!r} points outside {self.root_dir}")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _write(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{PARTIAL_PREFIX}{path.name}-{uuid.uuid4().hex}")
        temporary.write_bytes(data)
        temporary.replace(path)

    def _read(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def describe(self) -> str:
        return str(self.root_dir)


def _error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _import_from_bundle(root: Path, path: Path) -> LoadResult:
    """Import one DAG file with the bundle's root first on ``sys.path``.

    The root stays on the path: a task may import ``operators`` or a sibling
    helper lazily, when it runs, and must get this bundle's copy.
    """
    provided = _top_level_names(root)
    plugins = root / PLUGINS_FOLDER  # operator plugins the deploy included
    if plugins.is_dir():
        provided |= _top_level_names(plugins)
    _forget_foreign_modules(root, provided)
    cache_root = str(root.parent)
    sys.path[:] = [p for p in sys.path if not _inside(p, cache_root)]
    sys.path.insert(0, str(root))
    if plugins.is_dir():
        sys.path.insert(1, str(plugins))
    return load_dags([str(path)], check=False)


def _top_level_names(folder: Path) -> set[str]:
    return {p.name.removesuffix(".py") for p in folder.iterdir() if not p.name.startswith(".")}


def _forget_foreign_modules(root: Path, provided: set[str]) -> None:
    own = str(root)
    other_bundles = str(root.parent)
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file is None or _inside(file, own):
            continue
        from_other_bundle = _inside(file, other_bundles)
        shadowed = name.partition(".")[0] in provided
        if from_other_bundle or shadowed:
            del sys.modules[name]


def _inside(path: str, folder: str) -> bool:
    with contextlib.suppress(ValueError):
        return os.path.commonpath([os.path.abspath(path), folder]) == folder
    return False
