"""A fake installed operator plugin: a package and its ``*.dist-info`` in a folder on sys.path."""

from __future__ import annotations

import textwrap
from pathlib import Path

SHOUT = '''
from chalicelib.sdk.baseoperator import BaseOperator


class ShoutOperator(BaseOperator):
    """Returns its (templated) text in capitals, with the plugin's mark."""

    template_fields = ("text",)

    def __init__(self, *, text: str, **kwargs):
        super().__init__(**kwargs)
        self.text = text

    def execute(self, context):
        return self.text.upper() + MARK


MARK = "!"
'''


def make_distribution(
    site: Path,
    *,
    name: str = "acme-ops",
    package: str = "acme_ops",
    version: str = "1.2.0",
    entry_points: str = "ShoutOperator = acme_ops.shout:ShoutOperator",
    extra_files: dict[str, str | bytes] | None = None,
) -> Path:
    """Write the package and its metadata (METADATA, entry_points.txt, RECORD) into ``site``."""
    files: dict[str, str | bytes] = {
        f"{package}/__init__.py": "",
        f"{package}/shout.py": textwrap.dedent(SHOUT),
        **(extra_files or {}),
    }
    info = f"{package}-{version}.dist-info"
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{info}/entry_points.txt"] = f"[slipstream.operators]\n{entry_points}\n"
    files[f"{info}/INSTALLER"] = "pip\n"
    files[f"{info}/direct_url.json"] = f'{{"url": "file://{site}"}}\n'
    record = [f"{path},," for path in files] + [f"{info}/RECORD,,", "../../bin/acme,,"]
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    for relative, content in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return site
