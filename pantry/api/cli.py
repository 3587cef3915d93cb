"""``pantry``: the command line. Flags match ``mf query`` so dbt users need no new habits.

Why errors are caught here: a PantryError is a sentence for a person, so the CLI prints
it and exits 1, never a traceback; ``--debug`` shows the traceback for us.
"""

from __future__ import annotations

import csv
import json
import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pandas as pd
import pyarrow as pa
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pantry.api.store import Store
from pantry.api.tables import drift_table, frame_table
from pantry.errors import PantryError

if TYPE_CHECKING:
    pass

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Pantry: metrics and features, defined once.")
console = Console()
errors = Console(stderr=True)
_state = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        from pantry.scaffold import installed_version

        console.print(f"pantry {installed_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print Pantry's version."
    ),
) -> None:
    _state["debug"] = debug


@app.command()
def init(
    directory: Path = typer.Argument(..., help="A new or empty folder for the project."),
    example: str = typer.Option("shop", "--example", help="The sample project: shop."),
) -> None:
    """Create a project of your own: definitions, sample data, Dagster location, README, a test."""
    from pantry.scaffold import init_project

    created = init_project(directory, example)
    console.print(f"[green]created[/green] {created.root} (project '{created.name}'):", highlight=False)
    for path in created.files:
        console.print(f"  {path.relative_to(created.root)}", highlight=False)
    console.print(
        f"next: cd {directory} && pantry validate && pantry query --metrics revenue --group-by metric_time__week\n"
        "      dagster dev   (the README lists the rest)",
        highlight=False,
        soft_wrap=True,
    )


def _store() -> Store:
    return Store()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


@app.command()
def validate() -> None:
    """Check every definition: YAML, references, SQL and source columns."""
    store = _store()
    catalog = store.validate()
    console.print(
        f"[green]ok[/green]: {_count(len(catalog.semantic_models), 'semantic model')}, "
        f"{_count(len(catalog.public_metrics()), 'metric')}, {_count(len(catalog.views), 'feature view')} "
        f"({sum(len(v.features) for v in catalog.views.values())} features) in {store.defs}"
    )
    for line in catalog.skipped:
        console.print(f"skipped {line}")


@app.command()
def query(
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names."),
    saved_query: Optional[str] = typer.Option(None, "--saved-query", help="Run a saved query (saved_queries:)."),
    group_by: str = typer.Option(
        "", "--group-by", help="metric_time__day|week|month|quarter|year, entity__dimension, ..."
    ),
    where: Optional[list[str]] = typer.Option(None, "--where", help="SQL over group-by names, or MetricFlow Jinja."),
    start_time: Optional[str] = typer.Option(None, "--start-time"),
    end_time: Optional[str] = typer.Option(None, "--end-time"),
    order: Optional[str] = typer.Option(None, "--order", help="Comma-separated; prefix '-' for descending."),
    limit: Optional[int] = typer.Option(None, "--limit"),
    explain: bool = typer.Option(False, "--explain", help="Print the SQL instead of running it."),
    dialect: str = typer.Option("duckdb", "--dialect", help="duckdb, postgres, snowflake, bigquery or spark."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write the result to this CSV file."),
    min_max_only: bool = typer.Option(
        False, "--min-max-only", help="Without metrics: each group-by's smallest and largest value."
    ),
    apply_group_by: bool = typer.Option(
        True, "--apply-group-by/--no-apply-group-by", help="Without metrics: distinct rows (default), or every row."
    ),
) -> None:
    """Query metrics by name, as `mf query` does."""
    store = _store()
    args = dict(
        metrics=metrics,
        group_by=group_by,
        where=where,
        start_time=start_time,
        end_time=end_time,
        order=order,
        limit=limit,
    )
    if explain:
        if saved_query:
            args = dict(
                zip(
                    ("metrics", "group_by", "where", "order", "limit"),
                    store._saved(saved_query, metrics, group_by, where, order, limit),
                ),
                start_time=start_time,
                end_time=end_time,
            )  # noqa: E501
        print(store.explain(**args, dialect=dialect))
        return
    frame = store.query(**args, saved_query=saved_query, min_max_only=min_max_only, apply_group_by=apply_group_by)
    if csv is not None:
        frame.to_csv(csv, index=False)
        console.print(f"wrote {len(frame)} rows to {csv}")
        return
    console.print(frame_table(frame))


@app.command("compile")
def compile_partition(
    partition: str = typer.Option(..., "--partition", help="The day, YYYY-MM-DD."),
    metric: Optional[str] = typer.Option(None, "--metric", help="A metric: its day-grain rows of that day."),
    view: Optional[str] = typer.Option(None, "--view", help="A feature view: its values at the partition's stamp."),
    dialect: str = typer.Option("duckdb", "--dialect", help="duckdb, postgres, snowflake, bigquery or spark."),
) -> None:
    """Print the SQL that materializes one partition of a metric or a feature view."""
    print(_store().compile_partition(partition, metric=metric, view=view, dialect=dialect))


CATALOG_WIDE = 140  # terminal columns from which the catalog shows all eight columns


@app.command()
def catalog(
    search: Optional[str] = typer.Argument(None, help="Match names, descriptions, owners and tags."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List metrics with their owners, sources, partitions and last materialization."""
    entries = _store().catalog(search)
    if as_json:
        print(json.dumps(entries, indent=2, default=str))
        return
    # at a terminal's 80 columns, eight columns wrap every cell into single words: keep four
    wide = console.width >= CATALOG_WIDE
    table = Table(title=f"Pantry catalog{f' matching {search!r}' if search else ''}")
    columns = ["name", "type", "owner", "description"]
    if wide:
        columns += ["sources / columns", "partitions", "last materialized", "version"]
        for column in columns:
            table.add_column(column, overflow="fold")
    else:  # fixed widths: names, types and owners up to a cap, the description takes the rest and wraps
        longest = {c: max([len(c)] + [len(str(e.get(c) or "")) for e in entries]) for c in columns}
        widths = {
            "name": min(longest["name"], 26),
            "type": min(longest["type"], 16),
            "owner": min(longest["owner"], 10),
        }
        widths["description"] = max(12, console.width - sum(widths.values()) - 3 * len(columns) - 1)
        for column in columns:
            table.add_column(column, overflow="fold", width=widths[column])
    for e in entries:
        cells = [e["name"], e["type"], e["owner"] or "", e["description"] or ""]
        if wide and e["kind"] == "saved_query":
            cells += ["\n".join(e["metrics"]), e["run"], "", ""]
        elif wide:
            cells += [
                "\n".join(e["source_columns"]),
                f"daily {e['partitions']['start']}..{e['partitions']['end'] or ''}",
                e["last_materialized_at"] or "never",
                e["code_version"],
            ]
        table.add_row(*cells)
    console.print(table)
    if not wide:
        console.print(f"(sources, partitions, last run and version at {CATALOG_WIDE}+ columns, or with --json)")


features_app = typer.Typer(no_args_is_help=True, help="Read features: point-in-time history for training.")
app.add_typer(features_app, name="features")


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise PantryError(
            f"entities file '{path}' does not exist",
            field="--entities",
            hint="pass a .csv or .parquet file with the entity key and event_timestamp",
        )
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
        if "event_timestamp" in frame:
            frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], format="ISO8601")
        return frame
    raise PantryError(f"'{path}' is neither CSV nor Parquet", field="--entities", hint="use a .csv or .parquet file")


@features_app.command("history")
def features_history(
    features: str = typer.Option(..., "--features", help="Comma-separated view:feature names."),
    entities: Optional[Path] = typer.Option(
        None, "--entities", help="CSV or Parquet with the entity key and event_timestamp."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the training frame here (.csv or .parquet)."),
    start_time: Optional[str] = typer.Option(None, "--start-time", help="Without --entities: first stamp."),
    end_time: Optional[str] = typer.Option(None, "--end-time", help="Without --entities: last stamp."),
    full_feature_names: bool = typer.Option(False, "--full-feature-names"),
) -> None:
    """Point-in-time-correct training frame, as Store.get_historical_features returns it."""
    entity_df = _read_table(entities) if entities else None
    with console.status("reading point-in-time features"):
        frame = _store().get_historical_features(
            entity_df,
            [f.strip() for f in features.split(",") if f.strip()],
            full_feature_names=full_feature_names,
            start_time=start_time,
            end_time=end_time,
        )
    if out is None:
        console.print(frame_table(frame.head(50), title=f"{len(frame)} rows (first 50)"))
        return
    if out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    console.print(f"wrote {len(frame)} rows to {out}")


@features_app.command("online")
def features_online(
    features: str = typer.Option(..., "--features", help="Comma-separated view:feature names."),
    entity: list[str] = typer.Option(
        ..., "--entity", help="key=value, repeatable: --entity customer_id=1 --entity customer_id=2"
    ),
) -> None:
    """Served values from Redis, as Store.get_online_features returns them.

    ``--entity`` takes the entity's name (``customer=17``) or its key column
    (``customer_id=17``): a person thinks of the entity, the rows carry the column."""
    store = _store()
    names = [f.strip() for f in features.split(",") if f.strip()]
    keys = {plan.view.entity: plan.key for plan, _ in store._plans(names).values()}
    example = next(iter(keys), "customer")
    rows = []
    for item in entity:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PantryError(
                f"--entity '{item}' is not name=value", field="--entity", hint=f"write --entity {example}=17"
            )
        key = keys.get(key.strip(), key.strip())
        if key not in keys.values():
            known = ", ".join(f"'{name}' (column '{column}')" for name, column in keys.items())
            raise PantryError(
                f"--entity '{item}': these features are keyed by {known}",
                field="--entity",
                hint=f"write --entity {example}={value or 17}",
            )
        rows.append({key: int(value) if value.lstrip("-").isdigit() else value})
    values = store.get_online_features(names, rows)
    console.print(frame_table(pd.DataFrame(values), title="online values"))


online_app = typer.Typer(no_args_is_help=True, help="The online store (Redis).")
app.add_typer(online_app, name="online")


@online_app.command("push")
def online_push(
    view: str = typer.Argument(..., help="Feature view name."),
    partition: Optional[str] = typer.Option(None, "--partition", help="The partition (day) to push."),
    latest: bool = typer.Option(
        False, "--latest", help="Push the newest materialized partition (rebuilds Redis after data loss)."
    ),
) -> None:
    """Push a materialized partition of a feature view into Redis."""
    store = _store()
    if latest == bool(partition):
        raise PantryError(
            "give exactly one of --partition D or --latest",
            field="--partition",
            hint="e.g. pantry online push customer_orders --latest",
        )
    day = partition or store.latest_partition(view)
    with Progress(
        TextColumn(f"pushing {view} {day}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("push", total=None)
        written = store.push_online(
            view, day, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    console.print(f"pushed {view} partition {day}: {written} keys written to {store.online_url}")


@online_app.command("stop")
def online_stop() -> None:
    """Stop the local redis-server that Pantry started under PANTRY_HOME/redis (not PANTRY_REDIS_URL's)."""
    from pantry.online.local import stop_local_redis

    home = _store().home
    port = stop_local_redis(home)
    if port is None:
        console.print(f"no local redis-server is running under {home / 'redis'}")
    else:
        console.print(f"stopped the local redis-server on port {port} ({home / 'redis'})")


@app.command()
def drift(
    view: str = typer.Argument(..., help="Feature view name."),
    partition: str = typer.Option(..., "--partition", help="The partition (day) to judge."),
) -> None:
    """Judge a partition's drift with Evidently, as the asset check does; exit 1 when a feature drifted."""
    from pantry.monitor.checks import view_partition_checks
    from pantry.monitor.slack import deliver, post_from_env
    from pantry.monitor.verdicts import record

    store = _store()
    day = datetime.fromisoformat(partition).date() if _is_day(partition) else None
    if day is None:
        raise PantryError(f"partition '{partition}' is not a date", field="--partition", hint="write it as YYYY-MM-DD")
    verdicts, result = view_partition_checks(store, view, day)
    record(store.home, verdicts)
    console.print(drift_table(result))
    console.print(f"report: {result.report}" if result.report else "report: none (nothing was judged)")
    sent = deliver(store.home, post_from_env())
    if sent.sent or sent.recovered:
        console.print(f"Slack: {sent.sent} new failure(s), {sent.recovered} recovery(ies) sent")
    if result.drifted:
        raise typer.Exit(1)


def _is_day(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="server processes sharing the port; each has its own Redis client and metrics query worker",
    ),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    from pantry.api.http import serving_app

    _ = _store().definitions  # fail fast on bad definitions, before any worker starts
    if workers == 1:
        uvicorn.run(serving_app(), host=host, port=port, log_level="warning", access_log=False)
    else:  # each worker builds its own app from the same environment (PANTRY_DEFS, ...)
        uvicorn.run(
            "pantry.api.http:serving_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,  # at log level warning it prints nothing anyway; this skips the call
        )


@app.command()
def push(
    model: str = typer.Argument(..., help="An 'ingest: push' semantic model."),
    file: Path = typer.Argument(..., help="A CSV or Parquet file of rows."),
    batch: int = typer.Option(50_000, "--batch", min=1, help="Rows per durable batch."),
) -> None:
    """Push a file's rows into a model: each batch is durable before the next; refused rows
    are listed with their reasons (exit 1), the good ones kept."""
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    if not file.is_file():
        raise PantryError(f"'{file}' does not exist", field="file", hint="give a CSV or Parquet file")
    store = _store()
    from pantry.ingest.push import push_model

    push_model(store.definitions, model)  # refuse a model that takes no pushes before reading
    if file.suffix.lower() in (".parquet", ".pq"):
        data = ds.dataset(str(file), format="parquet")
    else:  # every column as text: DuckDB casts each value to the model's type and names what does not fit
        with file.open(newline="") as handle:
            header = next(csv.reader(handle), [])
        text = pacsv.ConvertOptions(column_types={name: pa.string() for name in header}, strings_can_be_null=True)
        data = ds.dataset(str(file), format=ds.CsvFileFormat(convert_options=text))
    total = data.count_rows()
    accepted, refused, offset = 0, [], 0
    with Progress(console=errors, transient=True) as progress:
        task = progress.add_task(f"pushing {file.name}", total=total)
        for chunk in data.to_batches(batch_size=batch):
            table = pa.Table.from_batches([chunk])
            result = store.push(model, table.to_pandas())
            accepted += result.accepted
            refused += [(offset + i + 1, why) for i, why in result.refused]
            offset += table.num_rows
            progress.update(task, advance=table.num_rows)
    console.print(f"{accepted} row(s) pushed to {model}", highlight=False)
    for row, why in refused:
        errors.print(f"row {row}: {escape(why)}", highlight=False)
    if refused:
        raise typer.Exit(1)


@app.command()
def ingest(
    models: list[str] = typer.Argument(None, help="Push models to consume (default: every 'ingest: push' model)."),
    batch: int = typer.Option(500, "--batch", min=1, help="Entries per XREADGROUP."),
    idle_exit: Optional[int] = typer.Option(
        None, "--idle-exit", help="Stop after this many rounds with nothing new (default: run until stopped)."
    ),
    name: Optional[str] = typer.Option(None, "--name", help="Consumer name (default: host-pid); reuse it to resume."),
    claim_idle_ms: int = typer.Option(
        30_000, "--claim-idle-ms", min=0, help="Claim entries another consumer left pending this long."
    ),
) -> None:
    """Consume the Redis Streams pantry:ingest:<model> (consumer group 'pantry') into the
    offline store: rows are durable before an entry is acknowledged, bad entries move to
    pantry:ingest:<model>:dead with their reason, and a restart resumes where it stopped."""
    from pantry.ingest.stream import StreamConsumer, stream_key
    from pantry.online.client import connect, guarded

    store = _store()
    names = list(models or []) or [m.name for m in store.definitions.semantic_models.values() if m.ingest == "push"]
    if not names:
        raise PantryError("no semantic model declares 'ingest: push'", hint="add 'ingest: push' to a model")
    client = connect(store.online_url, timeout=10.0)
    consumer = guarded(
        store.online_url,
        lambda: StreamConsumer(store, names, client, name=name, batch=batch, claim_idle_ms=claim_idle_ms),
        "creating the consumer group",
    )
    errors.print(f"consuming {', '.join(stream_key(n) for n in names)} as {consumer.name}", highlight=False)
    try:  # Redis going away mid-run is one clear error (after the client's bounded retries)
        counts = guarded(store.online_url, lambda: consumer.run(idle_rounds=idle_exit), "the stream consumer")
    except KeyboardInterrupt:
        counts = consumer.counts
    console.print(
        f"{counts.accepted} row(s) kept, {counts.refused} refused to the dead-letter stream, "
        f"{counts.acked} entries acknowledged ({counts.claimed} claimed from stopped consumers)",
        highlight=False,
    )


@app.command()
def demo(
    skip_materialize: bool = typer.Option(False, "--skip-materialize", help="Only build the demo data."),
) -> None:
    """Build the demo data, materialize every demo asset through Dagster, print metrics."""
    from pantry.demo.run import run_demo

    run_demo(_store(), console, materialize=not skip_materialize)


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    """Warnings as one plain line, not Python's 'file:line: Category:' form."""
    errors.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, markup=True, soft_wrap=True)


def main() -> None:
    warnings.showwarning = _show_warning
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n here
        if isinstance(code, int) and code:
            sys.exit(code)
    except PantryError as err:
        if _state["debug"]:
            raise
        # escaped: "[line 8]" is part of the message, not rich markup
        errors.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        sys.exit(1)
    except Exception as err:  # click usage errors print themselves
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if _state["debug"]:
            raise
        # no input may end in a traceback: one line that says what broke, and how to see more
        text = f"unexpected {type(err).__name__}: {err}".strip().splitlines()[0]
        errors.print(
            f"[red]error:[/red] {escape(text)} (a bug in Pantry, not in your input: run again with --debug for the traceback)",
            highlight=False,
            markup=True,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
