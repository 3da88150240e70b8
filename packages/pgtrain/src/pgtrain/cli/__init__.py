"""The pgtrain command line. Command groups live in their own modules and register on `app`; `main()` is the
shared console entry (pgdata.common.cli.run_cli): user errors (PgtrainError, PgdataError) and the machine's
refusals become one line, `--debug` (or PGTRAIN_DEBUG=1, PG_DEBUG=1) shows the traceback with its causes."""

from __future__ import annotations

import errno

import typer

from pgdata.common.cli import run_cli

app = typer.Typer(name="pgtrain", help="Train Progressive GANs (Karras et al., ICLR 2018) in PyTorch.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

from pgtrain.cli import bench as _bench  # noqa: F401,E402
from pgtrain.cli import media as _media  # noqa: F401,E402
from pgtrain.cli import networks as _networks  # noqa: F401,E402
from pgtrain.cli import training as _training  # noqa: F401,E402

# The machine's refusals (full disk, no permission, read-only file system): the user's to fix, not a bug of ours.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def main() -> None:
    """Console entry point: one line on stderr and exit status 1 for user errors and the machine's refusals.
    `--debug` is taken out of sys.argv in place: `pgtrain run --gpus N` relaunches its workers from sys.argv."""
    run_cli(app, "pgtrain", os_errnos=ENVIRONMENT_ERRNOS,
            os_error_note="the last training state written is intact; --resume, or the same --run-dir, "
                          "continues from it")
