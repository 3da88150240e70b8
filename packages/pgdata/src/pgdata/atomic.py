"""The one way the three tools reserve a temporary file beside an output, so that an output appears whole under
its final name or not at all."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def reserve_temporary(path: Path) -> Path:
    """A new, empty, uniquely named file beside `path`, created exclusively (nobody else's file is ever opened or
    replaced), with the umask's permissions like any new file. Rename it over `path` when complete. OSError as is:
    each tool words it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return temporary
