"""``ecomap hj212 simulate``: simulated station data loggers sending HJ 212-2017 packets.

Registered in :mod:`gis_service.cli` by ``register(app)``. The stations (their ``mn``
device codes and kinds) are read from the database the service uses.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from gis_service.cli_data import database_url, unreachable

hj212_app = typer.Typer(help="HJ 212-2017 data loggers: the receiver's simulator.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``hj212`` commands to the ``ecomap`` app."""
    app.add_typer(hj212_app, name="hj212")


def _stations(limit: int) -> list:
    import psycopg

    from gis_service.monitoring.hj212.simulator import SimulatedStation

    url = database_url()
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            rows = conn.execute(
                "SELECT mn, kind FROM station WHERE mn IS NOT NULL AND kind <> 'outfall' ORDER BY id LIMIT %s", (limit,)
            ).fetchall()
    except psycopg.OperationalError as error:
        typer.secho(f"error: {unreachable(url, error)}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    except psycopg.errors.UndefinedColumn:
        typer.secho("error: the database has no station.mn: run `ecomap db upgrade`", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    return [SimulatedStation(mn, kind) for mn, kind in rows]


@hj212_app.command("simulate")
def simulate(
    stations: Annotated[int, typer.Option(min=1, help="How many stations (loggers) to simulate")] = 10,
    rate: Annotated[float, typer.Option(min=0.01, help="Packets per second, all loggers together")] = 10.0,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The receiver's port (ECOMAP_HJ212__PORT)")] = 9212,
    host: Annotated[str, typer.Option(help="The receiver's address")] = "127.0.0.1",
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds to run")] = 60.0,
) -> None:
    """Send real-time data (CN 2011) from simulated loggers and report what was acknowledged."""
    from gis_service.monitoring.hj212.simulator import simulate as run

    chosen = _stations(stations)
    if not chosen:
        typer.secho(
            "error: no station has an mn: load the demo data (`ecomap demo load`)", err=True, fg=typer.colors.RED
        )
        raise typer.Exit(code=1)
    try:
        report = asyncio.run(run(chosen, host=host, port=port, rate=rate, duration_s=duration))
    except (OSError, TimeoutError) as error:
        typer.secho(f"error: the receiver at {host}:{port} failed: {error!r}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    typer.echo(
        f"{len(chosen)} loggers: {report.sent} packets sent, {report.acknowledged} acknowledged, "
        f"{report.corrupted} corrupted on purpose (refused), {report.observations} observations; "
        f"flags {dict(sorted(report.flags.items()))}"
    )
