"""Operator commands: ``flask --app app argus COMMAND``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from argus.legacy import LegacyFormatError
from argus.legacy import erase_legacy_objects
from argus.legacy import import_legacy_objects
from argus.links import describe_link
from argus.mapping_cache import publish_mappings
from argus.mappings import MappingError
from argus.services import Services

cli = AppGroup("argus", help="Operate the Argus backend (mappings and links).")


def _services() -> Services:
    return current_app.extensions["argus"]


def _channel_id(value: str) -> str:
    if not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise click.BadParameter(f"{value!r} is not a numeric Twitch user id")
    return value


@cli.command("update-ui-mappings")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def update_ui_mappings(file: Path) -> None:
    """Validate a mapping file and publish it to the store.

    Running services pick it up within their refresh interval.
    """
    raw = file.read_bytes()
    try:
        mappings = publish_mappings(_services().store, raw)
    except MappingError as error:
        raise click.ClickException(f"{file} is not valid: {error}") from None
    counts = ", ".join(f"{count} {kind}" for kind, count in mappings.counts().items())
    click.echo(f"published {file} ({counts})")


@cli.command("link")
@click.argument("channel_id")
@click.option("--username", help="Twitch display name shown on the dashboard.")
@click.option("--picture", help="Profile picture URL shown on the dashboard.")
def link(channel_id: str, username: str | None, picture: str | None) -> None:
    """Link a channel by hand and print its new Argus token on the last line.

    An earlier token of the channel stops working.
    """
    channel_id = _channel_id(channel_id)
    token = _services().links.link(channel_id, username=username, picture=picture)
    click.echo(f"linked channel {channel_id}; its Argus token is:")
    click.echo(token)


@cli.command("print-tokens")
def print_tokens() -> None:
    """List linked channels with username and link time (never a token)."""
    links = _services().links.list_links()
    for link_record in links:
        click.echo(describe_link(link_record))
    click.echo(f"{len(links)} linked channels")


@cli.command("erase-tokens")
@click.option(
    "--yes-erase-all",
    is_flag=True,
    help="Confirm that every link and pending login is to be deleted.",
)
def erase_tokens(yes_erase_all: bool) -> None:
    """Delete every link and pending login; every streamer must link again.

    The original service's token objects go too, so that a later
    migrate-legacy cannot bring erased tokens back.
    """
    if not yes_erase_all:
        raise click.UsageError(
            "this deletes every link; run again with --yes-erase-all to confirm"
        )
    argus = _services()
    links = argus.links.erase_all()
    pending = argus.logins.erase_all()
    legacy = erase_legacy_objects(argus.store)
    click.echo(
        f"erased {links} links, {pending} pending logins and "
        f"{legacy} legacy token objects"
    )


@cli.command("migrate-legacy")
@click.option(
    "--replace-existing",
    is_flag=True,
    help="Also overwrite channels that already have a link in the new layout.",
)
def migrate_legacy(replace_existing: bool) -> None:
    """Import the original service's twitchIdByArgusToken and pendingTwitchLogins.

    Tokens already in the wild keep working. The legacy objects are left in
    place. Channels linked in the new layout are skipped unless
    --replace-existing is given.
    """
    try:
        report = import_legacy_objects(_services(), replace_existing)
    except LegacyFormatError as error:
        raise click.ClickException(str(error)) from None
    click.echo(report.summary())
