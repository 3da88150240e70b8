"""The one base class of the toolkit's user errors, so that each CLI entry (pgdata.common.cli.run_cli) can catch
the errors of all three packages with one `except`.

PgdataError, PgtrainError and PgmetricsError derive from it by changing only their base: their own `__init__`
(message, optional path) keeps working, because the attributes they set first are kept here. Their bodies can
then go: ToolkitError's constructor, text and pickling are theirs.
"""

from __future__ import annotations

from pathlib import Path


class ToolkitError(Exception):
    """A problem the user can act on: bad input, a missing file, a refused overwrite. `str()` is the one line
    the CLI prints: "<path>: <message>", or the message alone."""

    path: str | None = None

    def __init__(self, message: str = "", path: str | Path | None = None):
        where = None if path is None else str(path)
        vars(self).setdefault("path", where)
        vars(self).setdefault("message", _without_prefix(message, self.path if where is None else None))
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self) -> tuple:
        # Keep `.path` when the error crosses a worker process (pickling would rebuild it from the text).
        return (type(self), (self.message, self.path))


def _without_prefix(text: str, path: str | None) -> str:
    """The message of "<path>: <message>": a subclass whose own __init__ set `path` first and passes the joined
    text up (today's PgdataError and PgmetricsError) keeps its path and message as they were given."""
    prefix = f"{path}: " if path else ""
    return text[len(prefix):] if prefix and text.startswith(prefix) else text
