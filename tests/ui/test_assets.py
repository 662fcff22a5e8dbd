"""The UI's files as the API Lambda serves them: versioned names, ETags, gzip,
cache lifetimes, and the redirects to ``/ui/``. No browser and no AWS needed."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from chalice import Chalice
from chalice.config import Config
from chalice.local import LocalGateway

from chalicelib import ui
from chalicelib.ui.assets import IMMUTABLE, STATIC, bundle


@pytest.fixture(scope="module")
def gateway() -> LocalGateway:
    app = Chalice(app_name="ui-test")
    ui.register(app)
    return LocalGateway(app, Config())


def _get(gateway: LocalGateway, path: str, **headers: str) -> dict:
    sent = {"accept": "*/*", **{k.replace("_", "-"): v for k, v in headers.items()}}
    answer = gateway.handle_request("GET", path, sent, b"")
    if answer.get("isBase64Encoded"):
        import base64

        answer["body"] = base64.b64decode(answer["body"])
    return answer


def _public(name: str) -> str:
    stem, ext = name.rsplit(".", 1)
    found = [n for n in bundle() if re.fullmatch(rf"{re.escape(stem)}\.[0-9a-f]{{10}}\.{ext}", n)]
    assert len(found) == 1, found
    return found[0]


def test_root_and_bare_ui_lead_to_the_page(gateway: LocalGateway) -> None:
    root = _get(gateway, "/")
    assert root["statusCode"] == 302 and root["headers"]["Location"] == "/ui/"
    page = _get(gateway, "/ui/")
    assert page["statusCode"] == 200
    assert b"<title>Slipstream</title>" in page["body"]


def test_the_page_names_versioned_assets_and_is_always_revalidated(gateway: LocalGateway) -> None:
    page = _get(gateway, "/ui/")
    assert page["headers"]["Cache-Control"] == "no-cache"
    referenced = re.findall(rb'(?:src|href)="\./([^"]+)"', page["body"])
    assert sorted(referenced) == sorted([_public("app.js").encode(), _public("app.css").encode()])


def test_every_module_import_points_at_a_versioned_file_that_is_served() -> None:
    assets = bundle()
    scripts = [a for a in assets.values() if a.content_type == "text/javascript"]
    assert len(scripts) == len(list(STATIC.glob("*.js")))
    for asset in scripts:
        for target in re.findall(rb'from\s+"\./([^"]+)"', asset.body):
            assert target.decode() in assets, f"{asset.name} imports {target!r}"


def test_an_asset_is_cached_for_a_year_gzipped_and_answers_304(gateway: LocalGateway) -> None:
    name = _public("app.js")
    plain = _get(gateway, f"/ui/{name}")
    assert plain["statusCode"] == 200
    assert plain["headers"]["Cache-Control"] == IMMUTABLE
    assert plain["headers"]["Content-Type"] == "text/javascript"
    assert "Content-Encoding" not in plain["headers"]
    zipped = _get(gateway, f"/ui/{name}", accept_encoding="gzip, deflate, br")
    assert zipped["headers"]["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped["body"]) == plain["body"]
    assert len(zipped["body"]) < len(plain["body"])
    etag = plain["headers"]["ETag"]
    again = _get(gateway, f"/ui/{name}", if_none_match=etag)
    assert again["statusCode"] == 304 and not again["body"]


def test_an_unknown_or_outdated_asset_is_404(gateway: LocalGateway) -> None:
    assert _get(gateway, "/ui/app.0000000000.js")["statusCode"] == 404
    assert _get(gateway, "/ui/index.html")["statusCode"] == 404


def test_the_version_follows_the_content(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<script type="module" src="./a.js"></script>')
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\n')
    (tmp_path / "b.js").write_text("export const b = 1;\n")
    first = bundle(tmp_path)
    (tmp_path / "b.js").write_text("export const b = 2;\n")
    second = bundle.__wrapped__(tmp_path)
    assert set(first) != set(second)
    a_name = next(n for n in second if n.startswith("a."))
    b_name = next(n for n in second if n.startswith("b."))
    assert f'from "./{b_name}"'.encode() in second[a_name].body
    assert f'src="./{a_name}"'.encode() in second["index.html"].body
