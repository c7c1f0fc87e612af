"""``ecomap federation``: list the remote layers and refresh them by hand."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, NoReturn

import typer

EXIT_FAILED = 1
EXIT_USAGE = 2

federation_app = typer.Typer(
    help="Remote layers: partners' OGC API Features collections copied here (ECOMAP_FEDERATION__DIR).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the commands to the ``ecomap`` app."""
    app.add_typer(federation_app, name="federation")


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=code)


def _remotes():
    from gis_service.federation.config import FederationError, RemoteLayers, load_remote_layers
    from gis_service.settings import Settings

    settings = Settings()
    try:
        remotes = RemoteLayers(load_remote_layers(settings.federation.dir))
    except FederationError as exc:
        _fail(str(exc), EXIT_USAGE)
    if not remotes:
        _fail("no remote layers are declared: set ECOMAP_FEDERATION__DIR to a directory of declarations", EXIT_USAGE)
    return settings, remotes


async def _connect(url: str):
    import psycopg

    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, application_name="ecomap-cli", connect_timeout=10
    )


@federation_app.command("refresh")
def refresh(
    layer: Annotated[str | None, typer.Argument(help="A remote layer id (default: every remote layer)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
    force: Annotated[bool, typer.Option("--force", help="Fetch whole, without If-None-Match")] = False,
) -> None:
    """Ask the partners now (If-None-Match with the stored ETag), validate and write the copies.

    Exits 1 when a refresh failed (its error is printed and recorded; the previous copy is kept).
    """
    import psycopg

    from gis_service.cli_data import database_url, unreachable
    from gis_service.federation.refresh import http_client, refresh_layer

    settings, remotes = _remotes()
    try:
        chosen = [remotes.get(layer)] if layer else list(remotes.remotes.values())
    except KeyError as exc:
        _fail(str(exc.args[0]), EXIT_USAGE)
    url = database_url(True)

    async def main():
        async with await _connect(url) as conn, http_client(settings.federation) as client:
            return [
                await refresh_layer(conn, client, r, settings.federation, settings.region, force=force) for r in chosen
            ]

    try:
        results = asyncio.run(main())
    except psycopg.OperationalError as exc:
        _fail(unreachable(url, exc))
    except psycopg.errors.UndefinedTable:
        _fail("the database has no federation tables yet: run `ecomap db upgrade` first")
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    else:
        for result in results:
            typer.echo(result.describe())
    if any(r.outcome == "failed" for r in results):
        raise typer.Exit(code=EXIT_FAILED)


@federation_app.command("list")
def list_layers() -> None:
    """The remote layers and the state of their copies (last check, change, ETag, features, error)."""
    from gis_service.cli_data import database_url
    from gis_service.federation import store

    _, remotes = _remotes()
    url = database_url(False)

    async def main():
        async with await _connect(url) as conn:
            return await store.states(conn)

    known = asyncio.run(main())
    for remote in remotes.remotes.values():
        state = known.get(remote.id) or store.RemoteState(remote.id)
        typer.echo(
            f"{remote.id}\t{remote.partner.en}\t{state.feature_count} features\tchecked {state.checked_at or '-'}"
            f"\tchanged {state.changed_at or '-'}\tETag {state.etag or '-'}"
            + (f"\tERROR {state.last_error}" if state.last_error else "")
        )


@federation_app.command("forget")
def forget(layer: Annotated[str, typer.Argument(help="The id of a remote layer no longer declared")]) -> None:
    """Delete the copy and state of a remote layer taken out of the declarations (its tiles are
    invalidated by the change trigger). A layer still declared is refused: it would be fetched again."""
    from gis_service.cli_data import database_url
    from gis_service.federation import store
    from gis_service.federation.config import FederationError, RemoteLayers, load_remote_layers
    from gis_service.settings import Settings

    try:
        declared = RemoteLayers(load_remote_layers(Settings().federation.dir))
    except FederationError as exc:
        _fail(str(exc), EXIT_USAGE)
    if layer in declared.remotes:
        _fail(f"{layer} is still declared in ECOMAP_FEDERATION__DIR: remove its file first", EXIT_USAGE)
    url = database_url(True)

    async def main() -> int:
        async with await _connect(url) as conn:
            return await store.forget(conn, layer)

    import psycopg

    try:
        deleted = asyncio.run(main())
    except psycopg.errors.InsufficientPrivilege:
        _fail("only the owner role may delete a copy: run the CLI as it (ECOMAP_DATABASE_OWNER_URL)")
    typer.echo(f"{layer}: {deleted} features deleted")
