"""The pgdata command line: the original dataset_tool.py / h5tool.py commands and a few more.

Each command group lives in its own module and registers on `app`; `main` is the toolkit's shared entry
(pgdata.common.cli.run_cli): PgdataError and OSError become one line, `--debug` or PGDATA_DEBUG=1 a traceback.
"""

from __future__ import annotations

from pgdata.cli import celebahq as _celebahq  # noqa: F401,E402

# Command modules register themselves on import.
from pgdata.cli import create as _create  # noqa: F401,E402
from pgdata.cli import inspect as _inspect  # noqa: F401,E402
from pgdata.cli.app import app
from pgdata.common.cli import run_cli
from pgdata.errors import PgdataError


def main() -> None:
    """Console entry point: one line on stderr and exit status 1 for user errors and for system errors that
    reach it (a full disk, a read-only folder: OSError); with --debug (or PG_DEBUG=1, PGDATA_DEBUG=1) the
    traceback with its whole chain. Ctrl-C exits with 130 (typer), after the command said what it left behind."""
    run_cli(app, "pgdata", PgdataError)
