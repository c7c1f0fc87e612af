"""``ecomap hj212 simulate``: simulated station data loggers sending HJ 212-2017 packets;
``ecomap observations import``: historical lab results from CSV or Excel.

Registered in :mod:`gis_service.cli` by ``register(app)``. The stations (their ``mn``
device codes and kinds) are read from the database the service uses.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from gis_service.cli_data import (
    EXIT_FAILED,
    EXIT_USAGE,
    _connect,
    _fail,
    _parse_mapping,
    _print_json,
    database_url,
    unreachable,
)

hj212_app = typer.Typer(help="HJ 212-2017 data loggers: the receiver's simulator.", no_args_is_help=True)
observations_app = typer.Typer(help="Observations of the monitoring stations.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``hj212`` and ``observations`` commands to the ``ecomap`` app."""
    app.add_typer(hj212_app, name="hj212")
    app.add_typer(observations_app, name="observations")


@observations_app.command("import")
def observations_import(
    path: Annotated[Path, typer.Argument(help="A .csv (UTF-8 or GBK) or .xlsx file, one observation a row")],
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="COLUMN=ROLE: the file's column for station, time, factor, value, unit or flag (repeatable)"
        ),
    ] = None,
    aggregation: Annotated[
        str, typer.Option(help="The datastream the results go to: hour (default) or day (daily lab means)")
    ] = "hour",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report only")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Import lab results, all or nothing: columns mapped (station code or MN, time, factor code or
    name, value, optional unit and HJ 212 flag), units checked against the factor's; with any error
    the validation report is printed, nothing is written and the exit code is 1.

    Times without a zone are China time. Rows already stored for a station, factor and time are kept.
    """
    import psycopg

    from gis_service.monitoring.ingest.lab_import import ImportRejected, map_columns, read_table, validate, write
    from layers.validation import ValidationReport

    if aggregation not in ("hour", "day"):
        _fail(f"--aggregation {aggregation!r}: use hour or day", EXIT_USAGE)
    try:
        frame = read_table(path)
        columns = map_columns(frame, _parse_mapping(mapping))
    except ImportRejected as error:
        _fail(f"{error} — nothing was written", EXIT_USAGE)
    report = ValidationReport(file=str(path), layer="observation", driver=path.suffix.lstrip(".").lower())
    report.mapping = {role: str(column) for role, column in columns.items()}
    with _connect(autocommit=False, announce=True) as conn:
        try:
            rows = validate(conn, frame, columns, report)
            if not report.ok or not rows:
                if not rows and report.ok:
                    report.add("error", "empty", "the file has no observation rows")
                conn.rollback()
                _report(report, as_json, applied=False)
                _fail(f"{report.first_error()} — nothing was written", EXIT_FAILED)
            if dry_run:
                conn.rollback()
                _report(report, as_json, applied=False)
                typer.echo("dry run: nothing written")
                return
            inserted, kept = write(conn, rows, aggregation)
            conn.commit()
        except psycopg.Error as error:
            conn.rollback()
            _fail(f"the database refused the import ({error}) — nothing was written")
    _report(report, as_json, applied=True, inserted=inserted, kept=kept)
    if not as_json:
        typer.echo(f"imported {inserted} observations ({kept} already stored, kept as they were)")


def _report(report, as_json: bool, applied: bool, **counts: int) -> None:
    if as_json:
        _print_json({"applied": applied, **counts, "report": report.to_dict()})
    else:
        typer.echo(report.to_text())


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
