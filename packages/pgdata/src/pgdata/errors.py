"""The one exception type for pgdata's user errors; the CLI (pgdata.common.cli.run_cli) turns it into one line
and a non-zero exit. Its message, `.path` and pickling are ToolkitError's, shared with pgtrain and pgmetrics."""

from __future__ import annotations

from pgdata.common.errors import ToolkitError


class PgdataError(ToolkitError):
    """A problem the user can act on: bad input, a missing file, a refused overwrite."""
