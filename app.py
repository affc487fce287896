"""The app of the ``litestar`` command, which finds it here (Litestar's CLI looks for ``app.py`` in
the working directory and calls its ``create_app``): the API of ``api/app.py`` with two commands
added. Run from the repository root:

    litestar routes                            # every route of the API
    litestar run [--host H] [--port P]         # the API under granian, as ``just api`` runs it
    litestar database upgrade --no-prompt      # migrations (advanced-alchemy), as ``just db upgrade``
    litestar database make-migrations          # a new revision from the models

The ``just`` recipes do the same without this file. The served API never carries these
commands: ``litestar run`` starts granian on ``api.app:create_app`` itself.
"""

from __future__ import annotations

import os

import click
from litestar import Litestar
from litestar.plugins import CLIPlugin

from api.app import create_app as create_api
from core.settings import get_settings
from db.config import make_migrations_plugin


class ServeWithGranian(CLIPlugin):
    """``litestar run`` serves the API with granian, the server of every stack here and of the
    image, with the same flags (``devstack.up.api_command``). Litestar's own ``run`` needs
    uvicorn, which this project does not install."""

    def on_cli_init(self, cli: click.Group) -> None:
        cli.add_command(run)


@click.command(name="run", help="Serve the API with granian (API_HOST, API_PORT and API_WORKERS by default).")
@click.option("--host", "-H", default=None, help="interface to bind (API_HOST)")
@click.option("--port", "-p", type=int, default=None, help="port to bind (API_PORT)")
@click.option("--workers", "-W", type=int, default=None, help="worker processes (API_WORKERS)")
def run(host: str | None, port: int | None, workers: int | None) -> None:
    import msgspec  # noqa: PLC0415

    from devstack.up import api_command  # noqa: PLC0415  # the dev stack's command, not in the image

    settings = get_settings()
    settings = msgspec.structs.replace(
        settings, api_host=host or settings.api_host, api_port=port or settings.api_port
    )
    command = api_command(settings, workers)
    click.echo(f"Serving the API on http://{settings.api_host}:{settings.api_port} (granian)")
    os.execv(command[0], command)  # noqa: S606  # granian takes this process over: signals reach it


def create_app() -> Litestar:
    """The API plus the ``run`` and ``database`` commands (see the module docstring)."""
    return create_api(plugins=[ServeWithGranian(), make_migrations_plugin(get_settings())])
