"""``ecomap users``, ``ecomap keys``, ``ecomap audit``: accounts, API keys and the audit log.

Registered in :mod:`gis_service.cli` by ``register(app)``. Every change is audited (actor
``cli:<OS user>``). Errors print ``error: ...`` on stderr and exit with 1 (refused by the
data or the database) or 2 (a wrong argument). Passwords are read from stdin or a hidden
prompt, or generated and printed once; they are never taken as arguments (shell history).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from gis_service.cli_data import database_url, unreachable

users_app = typer.Typer(
    help="Accounts of people (roles: planner, chief, analyst, data_manager, admin).", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys of machine clients (station, partner).", no_args_is_help=True)

EXIT_FAILED = 1
EXIT_USAGE = 2
T = TypeVar("T")
DEMO_LOGINS = {
    "planner": "demo-planner",
    "chief": "demo-chief",
    "analyst": "demo-analyst",
    "data_manager": "demo-data-manager",
    "admin": "demo-admin",
}


def register(app: typer.Typer) -> None:
    """Add the commands to the ``ecomap`` app."""
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.command("audit")(audit)


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=code)


def _run(action: Callable[[Any], Awaitable[T]], announce: bool = True) -> T:
    """Run ``action(conn)`` on an async autocommit connection; service errors become CLI errors."""
    import psycopg

    from gis_service.errors import EcoMapError, InvalidRequest

    url = database_url(announce)

    async def main() -> T:
        async with await psycopg.AsyncConnection.connect(
            url, autocommit=True, application_name="ecomap-cli", connect_timeout=10
        ) as conn:
            return await action(conn)

    try:
        return asyncio.run(main())
    except psycopg.OperationalError as exc:
        _fail(unreachable(url, exc))
    except psycopg.errors.UndefinedTable:
        _fail("the database has no access tables yet: run `ecomap setup` (or `ecomap db upgrade`) first")
    except InvalidRequest as exc:
        _fail(str(exc), EXIT_USAGE)
    except EcoMapError as exc:
        _fail(str(exc))


def _context():
    from gis_service.access.audit import AuditContext

    return AuditContext.cli()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail(
                "--password-stdin: no password on stdin (pipe one line, e.g. `... --password-stdin < file`)", EXIT_USAGE
            )
        return password
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def generate_password() -> str:
    """A random password of ~96 bits (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


RoleOption = Annotated[str, typer.Option("--role", help="planner, chief, analyst, data_manager or admin")]
ChiefOption = Annotated[int | None, typer.Option("--chief", help="Chief record id (required for the chief role)")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin")]


@users_app.command("add")
def users_add(
    login: Annotated[str, typer.Argument(help="Login (lower-case letters, digits, . _ @ -)")],
    role: RoleOption,
    chief: ChiefOption = None,
    password_stdin: StdinOption = False,
) -> None:
    """Create an account (the password from stdin, or a hidden prompt)."""
    from gis_service.access import admin
    from gis_service.access.accounts import check_login, check_role
    from gis_service.errors import InvalidRequest

    try:  # before asking for a password
        check_login(login)
        check_role(role, chief)
    except InvalidRequest as exc:
        _fail(str(exc), EXIT_USAGE)
    password = _read_password(password_stdin)
    account = _run(lambda conn: admin.add_user(conn, _context(), login, role, password, chief))
    typer.echo(f"account {account.login} created (role {account.role}{_chief_text(account.chief_id)})")


def _chief_text(chief_id: int | None) -> str:
    return f", chief {chief_id}" if chief_id is not None else ""


@users_app.command("list")
def users_list() -> None:
    """List accounts: login, role, chief, enabled."""
    from gis_service.access.accounts import list_accounts

    rows = _run(list_accounts, announce=False)
    for a in rows:
        state = "enabled" if a.enabled else "DISABLED"
        typer.echo(f"{a.login}\t{a.role}\t{a.chief_id if a.chief_id is not None else '-'}\t{state}")
    if not rows:
        typer.echo("no accounts (create one with `ecomap users add LOGIN --role ROLE`)", err=True)


@users_app.command("disable")
def users_disable(login: Annotated[str, typer.Argument(help="Login")]) -> None:
    """Disable an account: its sign-ins are refused and its sessions end."""
    from gis_service.access import admin

    account = _run(lambda conn: admin.set_enabled(conn, _context(), login, False))
    typer.echo(f"account {account.login} disabled")


@users_app.command("enable")
def users_enable(login: Annotated[str, typer.Argument(help="Login")]) -> None:
    """Enable a disabled account."""
    from gis_service.access import admin

    account = _run(lambda conn: admin.set_enabled(conn, _context(), login, True))
    typer.echo(f"account {account.login} enabled")


@users_app.command("set-role")
def users_set_role(
    login: Annotated[str, typer.Argument(help="Login")], role: RoleOption, chief: ChiefOption = None
) -> None:
    """Change an account's role (its sessions end, so new tokens carry the new role)."""
    from gis_service.access import admin

    account = _run(lambda conn: admin.set_role(conn, _context(), login, role, chief))
    typer.echo(f"account {account.login} now has role {account.role}{_chief_text(account.chief_id)}")


@users_app.command("reset-password")
def users_reset_password(
    login: Annotated[str, typer.Argument(help="Login")], password_stdin: StdinOption = False
) -> None:
    """Set a new password: from stdin with --password-stdin, else a random one printed once. Sessions end."""
    from gis_service.access import admin

    password = _read_password(True) if password_stdin else generate_password()
    account = _run(lambda conn: admin.reset_password(conn, _context(), login, password))
    if password_stdin:
        typer.echo(f"password of {account.login} changed")
    else:
        typer.echo(f"new password of {account.login} (shown once): {password}")


def _parse_expiry(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--expires must be a date or time in ISO 8601, e.g. 2027-01-01 (got {value!r})", EXIT_USAGE)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Name of the client, e.g. station-S01 or zhangzhou")],
    role: Annotated[str, typer.Option("--role", help="station or partner")],
    layers: Annotated[str, typer.Option("--layers", help="Comma-separated layers a partner key may read")] = "",
    expires: Annotated[str | None, typer.Option("--expires", help="Expiry date or time (ISO 8601, UTC)")] = None,
    area: Annotated[
        str | None,
        typer.Option(
            "--area",
            help="A partner key's shared area: district adcodes (350203,350206) or a GeoJSON file of polygons;"
            " its layers are then read only inside it (default: whole)",
        ),
    ] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from gis_service.access import admin
    from gis_service.access.keys import parse_area
    from gis_service.errors import InvalidRequest
    from gis_service.settings import Settings
    from layers.catalog import load_catalog

    chosen = [part.strip() for part in layers.split(",") if part.strip()]
    known = load_catalog(Settings().catalog_dir).ids
    expires_at = _parse_expiry(expires)
    try:
        shared = parse_area(area) if area is not None else None
    except InvalidRequest as exc:
        _fail(str(exc), EXIT_USAGE)
    key, secret = _run(
        lambda conn: admin.create_key(
            conn,
            _context(),
            name=name,
            role=role,
            layers=chosen,
            expires_at=expires_at,
            known_layers=known,
            area=shared,
        )
    )
    typer.echo(f"API key {key.name} created (role {key.role}); send it as X-API-Key. It is shown once:", err=True)
    typer.echo(secret)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys: name, role, layers, prefix, expiry, revocation."""
    from gis_service.access.keys import list_keys

    rows = _run(list_keys, announce=False)
    for k in rows:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        expiry = f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "no expiry"
        area = f"area {k.area_km2} km²" if k.area_km2 is not None else "-"
        typer.echo(f"{k.name}\t{k.role}\t{','.join(k.layers) or '-'}\t{area}\t{k.prefix}…\t{expiry}\t{state}")
    if not rows:
        typer.echo("no API keys (create one with `ecomap keys create --name NAME --role station|partner`)", err=True)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="Key name")]) -> None:
    """Revoke a key: refused from the next request on, on every worker."""
    from gis_service.access import admin

    key = _run(lambda conn: admin.revoke_key(conn, _context(), name))
    typer.echo(f"API key {key.name} revoked")


def audit(
    actor: Annotated[str | None, typer.Option(help="Only this actor (login, key:NAME, cli:USER)")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. auth.login, key.revoke")] = None,
    since: Annotated[str | None, typer.Option(help="From this time on (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Entries to show (newest first)")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Show the audit log (sign-ins, refreshes, key and user administration), newest first."""
    from gis_service.access.audit import list_entries

    since_at, until_at = _parse_expiry(since), _parse_expiry(until)
    rows = _run(
        lambda conn: list_entries(conn, actor=actor, action=action, since=since_at, until=until_at, limit=limit),
        announce=False,
    )
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))
        else:
            where = row["client_addr"] or "-"
            target = f" {row['target']}" if row["target"] else ""
            typer.echo(
                f"{row['at']:%Y-%m-%d %H:%M:%S%z}\t{row['actor']}\t{row['action']}{target}\t{row['outcome']}\t{where}"
            )


def ensure_demo_accounts() -> None:
    """With the demo dataset loaded, create one demo account per role when absent, printing each
    new password once (a database without the sample data gets none).

    The chief account takes the first sample chief record, again after ``demo load --force``
    replaced the chiefs. Reset a forgotten password with ``ecomap users reset-password LOGIN``."""
    from gis_service.access import admin
    from gis_service.access.accounts import find_account

    async def create(conn) -> list[tuple[str, str, str]]:
        row = await (await conn.execute("SELECT min(id) FROM chief WHERE is_sample")).fetchone()
        demo_chief = row[0]
        if demo_chief is None:
            return []  # not the demo dataset: no demo accounts
        created = []
        for role, login in DEMO_LOGINS.items():
            found = await find_account(conn, login)
            if found is not None:
                account = found[0]
                if role == "chief" and account.role == "chief" and account.chief_id != demo_chief:
                    known = await (
                        await conn.execute("SELECT 1 FROM chief WHERE id = %s", [account.chief_id])
                    ).fetchone()
                    if known is None:  # the chiefs were replaced (demo load --force)
                        await admin.set_role(conn, _context(), login, "chief", demo_chief)
                continue
            chief_id = demo_chief if role == "chief" else None
            password = generate_password()
            await admin.add_user(conn, _context(), login, role, password, chief_id)
            created.append((login, role, password))
        return created

    created = _run(create, announce=False)
    if created:
        typer.echo("demo accounts created (passwords shown once; `ecomap users reset-password LOGIN` makes a new one):")
        for login, role, password in created:
            typer.echo(f"  {login:<20} {role:<13} {password}")


def prepare_access(demo: bool) -> None:
    """Set-up step: the token signing key file (unless ECOMAP_ACCESS__SECRET_KEY is set), the demo accounts."""
    from gis_service.access.secrets_file import SecretKeyError, ensure_secret_key_file, signing_key
    from gis_service.settings import Settings

    settings = Settings().access
    if settings.secret_key is None and ensure_secret_key_file(settings.secret_key_file):
        typer.echo(f"token signing key generated in {settings.secret_key_file} (mode 0600)")
    try:
        signing_key(settings)
    except SecretKeyError as exc:
        _fail(str(exc))
    if demo:
        ensure_demo_accounts()
