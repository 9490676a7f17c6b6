"""config reference: the settings as the Markdown table README.md holds."""

from __future__ import annotations

from pathlib import Path

import click

from gateway import config_reference
from gateway.cli.common import main


@main.group("config")
def config_group() -> None:
    """The service's settings."""


@config_group.command("reference")
@click.option(
    "--write",
    "readme",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Replace the table between the config-reference markers of this file (README.md).",
)
def reference(readme: Path | None) -> None:
    """Print every setting, its default and its meaning as a Markdown table."""
    try:
        text = config_reference.table()
        if readme is None:
            click.echo(text, nl=False)
            return
        updated = config_reference.rewritten(readme.read_text(encoding="utf-8"))
    except (config_reference.MissingDescription, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    readme.write_text(updated, encoding="utf-8")
    click.echo(f"wrote the configuration reference into {readme}", err=True)
