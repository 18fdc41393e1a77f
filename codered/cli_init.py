"""``codered init``: write or edit the configuration file by answering questions."""

from __future__ import annotations

from typing import Annotated

import typer

from codered.cli_support import ConfigOption, console, fail

__all__ = ["register_init_command"]


def register_init_command(app: typer.Typer) -> None:
    """Add ``init`` to ``app`` (the wizard itself is imported only when it runs)."""

    @app.command("init")
    def init(
        config: ConfigOption = None,
        test: Annotated[
            bool,
            typer.Option(
                "--test/--no-test",
                help="Test the IMAP and SMTP connections as soon as they are answered.",
            ),
        ] = True,
    ) -> None:
        """Write the configuration file by answering questions; run again to edit it.

        Every current value is offered as the default, sections the wizard does not ask
        about are kept, and the previous file is saved as <file>.bak. Passwords are asked
        only to test the connections and are never written: the file names the
        environment variables that hold them.
        """
        from codered.init_wizard import print_outcome, run_wizard
        from codered.settings import ConfigError, resolve_config_path

        path = resolve_config_path(config)
        try:
            result = run_wizard(path, test_connections=test, console=console())
        except ConfigError as exc:
            raise fail(str(exc), 2) from None
        print_outcome(result, console())
        if result.problem is not None:
            raise typer.Exit(2)
