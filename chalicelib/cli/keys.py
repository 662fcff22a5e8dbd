"""``slipstream keys``: API keys, over the API or straight in the stage's store.

Over the API (``SLIPSTREAM_API_URL`` or ``--api-url``) an admin key manages
its own tenant's keys. Without an API the command writes the store the
environment names (``SLIPSTREAM_*``), as ``slipstream pools`` does: that is
how the first admin key of a new deployment is made, by whoever holds AWS
credentials for its table.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from chalicelib.cli.main import app
from chalicelib.cli.output import emit_rows, print_json
from chalicelib.cli.remote import ApiKey, ApiUrl, AsJson, Client, bad_input, configured, quote

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

ROLES = ("viewer", "user", "op", "admin")
COLUMNS = ["key_id", "name", "tenant", "role", "created_at", "expires_at", "revoked_at"]


def _expiry(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        bad_input(f"--expires: not an ISO 8601 date-time: {text!r}")
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)  # a bare time is UTC


def _store_keys() -> Any:
    from chalicelib.api import deps

    return deps.api_keys()


def _key_json(key: Any) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "name": key.name,
        "tenant": key.tenant,
        "role": key.role,
        "created_at": key.created_at.isoformat(),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _caller_tenant(client: Client) -> str | None:
    """The tenant of the key the client calls with: its id is in the key's text."""
    parts = (client.api_key or "").split("_", 2)
    listed = client.get("/slipstream/keys")["api_keys"]
    return next((k["tenant"] for k in listed if len(parts) == 3 and k["key_id"] == parts[1]), None)


@keys_app.command("create")
def create_command(
    role: Annotated[str, typer.Option("--role", help="viewer, user, op or admin.")],
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Tenant of the key (over the API: the caller's own)."),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Who or what uses it.")] = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="ISO date-time it stops working (UTC if bare).")
    ] = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Make a key. Its text is printed this once and cannot be shown again."""
    if role not in ROLES:
        bad_input(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    expires_at = _expiry(expires)
    if configured(api_url):
        client = Client.from_options(api_url, api_key)
        if tenant is not None:
            own = _caller_tenant(client)
            if own is not None and own != tenant:
                bad_input(
                    f"the API makes keys in the caller's tenant ({own}), not {tenant!r}; "
                    "unset SLIPSTREAM_API_URL to write another tenant's key to the store"
                )
        body: dict[str, Any] = {"role": role, "name": name}
        if expires_at is not None:
            body["expires_at"] = expires_at.isoformat()
        created = client.post("/slipstream/keys", body)
        text = created.pop("api_key")
        record = created
    else:
        if not tenant:
            bad_input("--tenant is required when writing to the store (no API URL set)")
        key, text = _store_keys().create(
            tenant=tenant, role=role, name=name, expires_at=expires_at, now=dt.datetime.now(dt.UTC)
        )
        record = _key_json(key)
    if as_json:
        print_json({**record, "api_key": text})
        return
    typer.echo(f"key {record['key_id']} ({record['role']} in tenant {record['tenant']})")
    typer.echo(f"API key: {text}")
    typer.echo("It is shown only now: store it in your secrets manager.")


@keys_app.command("list")
def list_command(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant (store only; the API lists its own).")
    ] = None,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Keys of a tenant (never their secrets)."""
    if configured(api_url):
        rows = Client.from_options(api_url, api_key).get("/slipstream/keys")["api_keys"]
        if tenant is not None:
            rows = [r for r in rows if r["tenant"] == tenant]
    else:
        rows = [_key_json(k) for k in _store_keys().list(tenant or "default")]
    emit_rows(rows, as_json, "API keys", rows, COLUMNS)


@keys_app.command("revoke")
def revoke_command(
    key_id: Annotated[str, typer.Argument(help="The key's id (the part after ssk_).")],
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Revoke a key: it stops working at once."""
    if configured(api_url):
        Client.from_options(api_url, api_key).delete(f"/slipstream/keys/{quote(key_id)}")
    elif not _store_keys().revoke(key_id, dt.datetime.now(dt.UTC)):
        bad_input(f"no active API key {key_id!r}")
    typer.echo(f"revoked {key_id}")
