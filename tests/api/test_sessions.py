"""``/slipstream/session`` (who a key is; one-time UI sign-in codes) and the
ETag every GET answer carries."""

from __future__ import annotations

import datetime as dt

from chalicelib.api import deps
from tests.api.served import Served


def _code(role: str = "user", tenant: str = "default", lifetime_s: int = 600) -> str:
    return deps.signin_codes().create(
        tenant=tenant,
        role=role,
        now=dt.datetime.now(dt.UTC),
        lifetime=dt.timedelta(seconds=lifetime_s),
    )


def test_whoami_names_the_keys_tenant_and_role(served: Served) -> None:
    answer = served.call("GET", "/slipstream/session", role="viewer", tenant="acme")
    assert answer.status_code == 200
    assert answer.json()["tenant"] == "acme"
    assert answer.json()["role"] == "viewer"


def test_a_code_signs_in_once_and_the_session_key_works(served: Served) -> None:
    code = _code(role="user", tenant="acme")
    first = served.call("POST", "/slipstream/session", role=None, json={"code": code})
    assert first.status_code == 201, first.text
    session = first.json()
    assert (session["tenant"], session["role"]) == ("acme", "user")
    assert session["expires_at"] is not None
    again = served.call("POST", "/slipstream/session", role=None, json={"code": code})
    assert again.status_code == 401
    assert "already used" in again.json()["detail"]
    dags = served.call(
        "GET", "/dags", role=None, headers={"Authorization": f"Bearer {session['api_key']}"}
    )
    assert [d["dag_id"] for d in dags.json()["dags"]] == ["acme_only"]


def test_an_expired_or_forged_code_is_refused(served: Served) -> None:
    expired = _code(lifetime_s=-1)
    answer = served.call("POST", "/slipstream/session", role=None, json={"code": expired})
    assert answer.status_code == 401
    forged = _code()[:-4] + "AAAA"
    assert (
        served.call("POST", "/slipstream/session", role=None, json={"code": forged}).status_code
        == 401
    )
    garbage = served.call("POST", "/slipstream/session", role=None, json={"code": "ssk_x_y"})
    assert garbage.status_code == 401


def test_a_code_is_not_a_key_and_is_not_listed(served: Served) -> None:
    code = _code(role="admin")
    _, code_id, secret = code.split("_", 2)
    as_key = f"ssk_signin-{code_id}_{secret}"
    answer = served.call("GET", "/dags", role=None, headers={"Authorization": f"Bearer {as_key}"})
    assert answer.status_code == 401
    keys = served.call("GET", "/slipstream/keys").json()["api_keys"]
    assert not [k for k in keys if k["key_id"].startswith("signin-")]
    assert served.call("DELETE", f"/slipstream/keys/signin-{code_id}").status_code == 404


def test_get_answers_carry_an_etag_and_an_unchanged_one_answers_304(served: Served) -> None:
    first = served.call("GET", "/dags", params={"limit": 2})
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"')
    same = served.call("GET", "/dags", params={"limit": 2}, headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["ETag"] == etag
    other = served.call("GET", "/dags", params={"limit": 1}, headers={"If-None-Match": etag})
    assert other.status_code == 200
    weak = served.call("GET", "/dags", params={"limit": 2}, headers={"If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304


def test_an_etag_changes_when_the_answer_does(served: Served) -> None:
    before = served.call("GET", "/dags/etl_hourly").headers["ETag"]
    served.call("PATCH", "/dags/etl_hourly", json={"is_paused": True})
    try:
        changed = served.call("GET", "/dags/etl_hourly", headers={"If-None-Match": before})
        assert changed.status_code == 200
        assert changed.json()["is_paused"] is True
        assert changed.headers["ETag"] != before
    finally:
        served.call("PATCH", "/dags/etl_hourly", json={"is_paused": False})


def test_errors_and_writes_carry_no_etag(served: Served) -> None:
    assert "ETag" not in served.call("GET", "/dags/no_such_dag").headers
    assert "ETag" not in served.call("GET", "/dags", role=None).headers
