"""The pgtrain command line. Command groups live in their own modules and register on `app`."""

from __future__ import annotations

import errno
import sys

import typer

from pgtrain.errors import PgtrainError

app = typer.Typer(name="pgtrain", help="Train Progressive GANs (Karras et al., ICLR 2018) in PyTorch.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

from pgtrain.cli import bench as _bench  # noqa: F401,E402
from pgtrain.cli import media as _media  # noqa: F401,E402
from pgtrain.cli import networks as _networks  # noqa: F401,E402
from pgtrain.cli import training as _training  # noqa: F401,E402

# The machine's refusals (full disk, no permission, read-only file system): the user's to fix, not a bug of ours.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def main() -> None:
    """Console entry point: one line on stderr and exit status 1 for user errors (--debug: traceback)."""
    from pgdata.errors import PgdataError

    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        app()  # standalone mode: typer reports usage errors itself and exits
    except (PgtrainError, PgdataError) as error:
        if debug:
            raise
        print(f"pgtrain: error: {error}", file=sys.stderr)
        sys.exit(1)
    except OSError as error:
        if debug or error.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f"{error.filename}: " if error.filename else ""
        print(f"pgtrain: error: {where}{error.strerror or error} (the last training state written is "
              "intact; --resume, or the same --run-dir, continues from it)", file=sys.stderr)
        sys.exit(1)
