"""The UI's static files, each with a versioned name, an ETag and a gzip copy.

Every asset's public name carries one version, a hash of all the files
(``app.js`` is served as ``app.<version>.js``), and ``import './x.js'`` inside
the modules is rewritten to the versioned name too. So an asset can be cached
for a year (a new deploy changes every name), while ``index.html`` is always
revalidated. One version for all files, rather than one per file, keeps the
rewriting free of import-order bookkeeping; a deploy changes few enough UI
files that refetching all (about 60 KB gzipped) costs nothing worth saving.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_IMPORT = re.compile(r"""(from\s+|import\s*\(\s*|import\s+)(["'])\./([\w-]+)\.js\2""")
_INDEX_REF = re.compile(r"""(href|src)="\./([\w-]+)\.(js|css)\"""")


@dataclass(frozen=True)
class Asset:
    name: str
    content_type: str
    body: bytes
    gzipped: bytes
    etag: str
    cache_control: str


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _asset(name: str, body: bytes, cache_control: str) -> Asset:
    suffix = Path(name).suffix
    return Asset(
        name=name,
        content_type=CONTENT_TYPES[suffix],
        body=body,
        # mtime=0: the same file always gives the same bytes (and ETag stays honest)
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=_etag(body),
        cache_control=cache_control,
    )


def versioned(name: str, version: str) -> str:
    stem, _, ext = name.rpartition(".")
    return f"{stem}.{version}.{ext}"


@functools.cache
def bundle(root: Path = STATIC) -> dict[str, Asset]:
    """Public name -> asset. ``index.html`` keeps its name; every other file is versioned."""
    files = {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.suffix in CONTENT_TYPES}
    digest = hashlib.blake2b(digest_size=5)
    for name, body in files.items():
        digest.update(name.encode() + b"\0" + body + b"\0")
    version = digest.hexdigest()
    assets: dict[str, Asset] = {}
    for name, body in files.items():
        text = body.decode("utf-8")
        if name == "index.html":
            text = _INDEX_REF.sub(
                lambda m: f'{m[1]}="./{versioned(m[2] + "." + m[3], version)}"', text
            )
            assets[name] = _asset(name, text.encode(), REVALIDATE)
            continue
        if name.endswith(".js"):
            text = _IMPORT.sub(lambda m: f"{m[1]}{m[2]}./{m[3]}.{version}.js{m[2]}", text)
        public = versioned(name, version)
        assets[public] = _asset(public, text.encode(), IMMUTABLE)
    return assets
