"""``orchestrator export``: the store's runs sent elsewhere (:mod:`orchestrator.commands.export`).

A module of its own so the ``orchestrator`` group only registers it: the OpenTelemetry
SDK is imported when an export runs, not when any command starts.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_options import db_option, shown


@click.group()
def export() -> None:
    """Send the store's runs to other tools."""


@export.command("otlp")
@db_option(positional=True, postgres=True)
@click.option(
    "--endpoint",
    required=True,
    metavar="URL",
    help="OTLP/HTTP endpoint: a base URL (/v1/traces is added) or its /v1/traces.",
)
@click.option(
    "--headers",
    metavar="K=V,...",
    envvar="OTEL_EXPORTER_OTLP_HEADERS",
    help="Headers sent with each request, e.g. Authorization=Basic%20... "
    "(default: $OTEL_EXPORTER_OTLP_HEADERS).",
)
@click.option("--since", metavar="DAY", help="Only runs created on or after DAY (YYYY-MM-DD).")
@click.option(
    "--follow", is_flag=True, help="Keep running: send runs as they finish (Ctrl-C stops)."
)
@click.option(
    "--interval", default=2.0, show_default=True, help="With --follow: seconds between looks."
)
def otlp(
    db_path: Path | str,
    endpoint: str,
    headers: str | None,
    since: str | None,
    follow: bool,
    interval: float,
) -> None:
    """Send each finished run of DB as an OpenTelemetry GenAI trace (OTLP/HTTP protobuf).

    One trace per run: invoke_agent (the run, subagents nested), chat {model} per prompt
    (tokens, cost), execute_tool per tool call, a span per step; with the OpenInference
    and Langfuse attributes, for Arize Phoenix, Langfuse, Jaeger or a collector. A run
    is sent once per endpoint: run it again (or after a restart) and only new runs go.
    $OTEL_RESOURCE_ATTRIBUTES is sent as the resource (Phoenix's project:
    openinference.project.name=NAME).
    """
    from .commands.export import ExportError, export_otlp, parse_headers

    def progress(result: object) -> None:
        if follow:
            click.echo(f"{result.runs} runs, {result.spans} spans sent", err=True)  # type: ignore[attr-defined]

    try:
        result = export_otlp(
            db_path,
            endpoint,
            headers=parse_headers(headers),
            since=since,
            follow=follow,
            poll=interval,
            progress=progress,
        )
    except (ValueError, ExportError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        return
    click.echo(
        f"Sent {result.runs} runs ({result.spans} spans) of {shown(db_path)} to {result.endpoint}"
    )
