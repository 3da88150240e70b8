"""The one exception type for pgmetrics user errors; the CLI (pgdata.common.cli.run_cli) turns it into one line
and exit status 1. Its message, `.path` and pickling are ToolkitError's, shared with pgdata and pgtrain."""

from __future__ import annotations

from pgdata.common.errors import ToolkitError


class PgmetricsError(ToolkitError):
    """A problem the user can act on: bad input, a missing weights file, too few images."""
