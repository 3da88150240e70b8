"""The one exception type for user errors; the CLI (pgdata.common.cli.run_cli) turns it into one line and a
non-zero exit. Its text, `.path` and pickling are those of the toolkit's shared base, ToolkitError."""

from __future__ import annotations

from pgdata.common.errors import ToolkitError


class PgtrainError(ToolkitError):
    """A problem the user can act on: a missing dataset, an unknown preset, a corrupt snapshot."""
