"""IAM (SigV4) callers: API Gateway verifies the signature, settings map the
caller's ARN to a tenant and a role."""

from __future__ import annotations

import datetime as dt

import pytest

from chalicelib.api.auth import IamSettings, Role, authenticate, iam_identity
from chalicelib.api.errors import Forbidden, Unauthorized

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SETTINGS = IamSettings(
    api_auth="iam",
    iam_principals={
        "arn:aws:iam::111122223333:role/ci-deployer": {"tenant": "acme", "role": "op"},
        "arn:aws:iam::111122223333:user/alice": {"tenant": "default", "role": "viewer"},
    },
)


class NoKeys:
    def verify(self, token: str, now: dt.datetime) -> None:
        raise AssertionError("an IAM stage never reads API keys")


def _context(arn: str | None) -> dict[str, object]:
    return {"identity": {"userArn": arn}} if arn else {"identity": {}}


def test_an_assumed_role_session_is_its_role() -> None:
    session = "arn:aws:sts::111122223333:assumed-role/ci-deployer/gh-run-42"
    assert iam_identity(session) == "arn:aws:iam::111122223333:role/ci-deployer"
    principal = authenticate({}, NoKeys(), NOW, context=_context(session), iam=SETTINGS)
    assert (principal.tenant, principal.role) == ("acme", Role.OP)
    assert principal.owner == "arn:aws:iam::111122223333:role/ci-deployer"


def test_a_user_arn_maps_directly() -> None:
    user = "arn:aws:iam::111122223333:user/alice"
    principal = authenticate({}, NoKeys(), NOW, context=_context(user), iam=SETTINGS)
    assert (principal.tenant, principal.role) == ("default", Role.VIEWER)


def test_an_unmapped_caller_is_refused_and_an_unsigned_one_unauthenticated() -> None:
    stranger = "arn:aws:sts::111122223333:assumed-role/someone-else/x"
    with pytest.raises(Forbidden, match="has no Slipstream role"):
        authenticate({}, NoKeys(), NOW, context=_context(stranger), iam=SETTINGS)
    with pytest.raises(Unauthorized, match="SigV4"):
        authenticate({}, NoKeys(), NOW, context=_context(None), iam=SETTINGS)


def test_settings_read_the_mapping_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPSTREAM_API_AUTH", "iam")
    monkeypatch.setenv(
        "SLIPSTREAM_IAM_PRINCIPALS",
        '{"arn:aws:iam::1:role/r": {"tenant": "t", "role": "admin"}}',
    )
    settings = IamSettings()
    assert settings.api_auth == "iam"
    assert settings.iam_principals["arn:aws:iam::1:role/r"].role == "admin"


def test_an_iam_stage_puts_the_iam_authorizer_on_every_guarded_route() -> None:
    import os
    import subprocess
    import sys

    script = (
        "import app\n"
        "guarded = [(p, m, e.authorizer) for p, ms in app.app.routes.items() "
        "for m, e in ms.items() if p.startswith('/api/v2/dags')]\n"
        "assert guarded and all(type(a).__name__ == 'IAMAuthorizer' for _, _, a in guarded)\n"
        "open_ = app.app.routes['/api/v2/version']['GET'].authorizer\n"
        "assert open_ is None, open_\n"
        "print('ok')\n"
    )
    env = {**os.environ, "SLIPSTREAM_API_AUTH": "iam"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
