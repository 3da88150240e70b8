"""The pgdata command line: the original dataset_tool.py / h5tool.py commands and a few more.

Each command group lives in its own module and registers on `app`; `main` turns PgdataError into one line.
"""

from __future__ import annotations

import os
import sys

from pgdata.cli import celebahq as _celebahq  # noqa: F401,E402

# Command modules register themselves on import.
from pgdata.cli import create as _create  # noqa: F401,E402
from pgdata.cli import inspect as _inspect  # noqa: F401,E402
from pgdata.cli.app import app
from pgdata.errors import PgdataError


def main() -> None:
    """Console entry point: one line on stderr and exit status 1 for user errors and for system errors that
    reach it (a full disk, a read-only folder: OSError), with --debug a traceback. Ctrl-C exits with 130
    (typer), after the command said what it left behind."""
    debug = "--debug" in sys.argv or os.environ.get("PGDATA_DEBUG") == "1"
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        app()  # standalone mode: typer reports usage errors itself and exits
    except PgdataError as error:
        if debug:
            raise
        print(f"pgdata: error: {error}", file=sys.stderr)
        sys.exit(1)
    except OSError as error:
        if debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"pgdata: error: {where}{error.strerror or error}", file=sys.stderr)
        sys.exit(1)
