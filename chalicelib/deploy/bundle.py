"""The code bundle: a zip of the project's ``dags/`` and ``operators/``, named by its sha256.

Workers run a run's tasks with the code of the version it pinned, so the
bundle must be addressed by its content: the same files must give the same
bytes on every machine, or two deploys of one commit would make two versions.
Hence sorted entries, one fixed timestamp (1980-01-01, the zip epoch), fixed
permissions, a fixed "made on Unix" marker and no compression: deflate output
differs between zlib builds (zlib-ng, as some distributions ship, emits other
bytes than zlib), while stored entries are just the files. DAG code is small,
so the size this costs does not matter.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chalicelib.core.errors import SlipstreamError

DEFAULT_ROOTS: tuple[str, ...] = ("dags", "operators")
BUNDLE_PREFIX = "bundles/"
PLUGINS_FOLDER = "_plugins"  # operator plugins' code inside a bundle (plugin_files.py)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--: executable bits never change the hash
MADE_ON_UNIX = 3


class BundleError(SlipstreamError):
    """A bundle could not be built, stored or read."""


@dataclass(frozen=True)
class Bundle:
    """The zip's bytes, their sha256, and the files inside (paths relative to the root)."""

    data: bytes
    sha256: str
    files: tuple[str, ...]

    @property
    def key(self) -> str:
        return bundle_key(self.sha256)


def bundle_key(sha256: str) -> str:
    return f"{BUNDLE_PREFIX}{sha256}.zip"


def sha256_of_key(key: str) -> str:
    """The content hash a bundle key names; raises BundleError for anything else."""
    digest = key.removeprefix(BUNDLE_PREFIX).removesuffix(".zip")
    if (
        not key.startswith(BUNDLE_PREFIX)
        or not key.endswith(".zip")
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise BundleError(f"not a bundle key: {key!r} (expected bundles/<sha256>.zip)")
    return digest


def build_bundle(
    root: str | os.PathLike[str],
    roots: Sequence[str] = DEFAULT_ROOTS,
    extra_files: Iterable[tuple[str, Path]] = (),
) -> Bundle:
    """Zip the folders ``roots`` (relative to ``root``) that exist, deterministically.

    Skipped: ``__pycache__``, ``*.pyc`` and anything whose name starts with a
    dot (``.git``, editor swap files, ``.DS_Store``). ``extra_files`` are
    (entry name, file) pairs from outside the project: installed operator
    plugins (``chalicelib.deploy.plugin_files``).
    """
    base = Path(root).resolve()
    sources = {relative: base / relative for relative in _bundle_files(base, roots)}
    for entry, path in extra_files:
        if entry in sources:
            raise BundleError(
                f"bundle entry {entry} would come from both {sources[entry]} and {path}"
            )
        sources[entry] = path
    files = sorted(sources)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for relative in files:
            try:
                content = sources[relative].read_bytes()
            except OSError as exc:
                raise BundleError(f"{sources[relative]}: cannot read: {exc}") from exc
            archive.writestr(_entry(relative), content)
    data = buffer.getvalue()
    return Bundle(data=data, sha256=hashlib.sha256(data).hexdigest(), files=tuple(files))


def _entry(relative: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(relative, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = MADE_ON_UNIX  # ZipInfo says 0 on Windows, 3 elsewhere
    info.external_attr = FILE_MODE << 16
    return info


def _bundle_files(base: Path, roots: Sequence[str]) -> Iterator[str]:
    for name in roots:
        top = base / name
        if not top.is_dir():
            continue
        for folder, subfolders, names in os.walk(top):
            subfolders[:] = [d for d in subfolders if not _skipped(d) and d != "__pycache__"]
            for file_name in names:
                path = Path(folder, file_name)
                if _skipped(file_name) or file_name.endswith(".pyc") or not path.is_file():
                    continue
                yield path.relative_to(base).as_posix()


def _skipped(name: str) -> bool:
    return name.startswith(".")


def safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's entries, refusing any that would land outside the extraction folder."""
    members = archive.infolist()
    for info in members:
        parts = Path(info.filename).parts
        if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in info.filename:
            raise BundleError(f"bundle entry {info.filename!r} points outside the bundle")
    return members
