"""The one console entry of the three tools: `main()` of pgdata, pgtrain and pgmetrics is `run_cli(app, ...)`.

User errors (the toolkit's error types) and the machine's refusals (OSError: a full disk, a read-only folder)
become one line on stderr, "<program>: error: ...", and exit status 1. With `--debug` (anywhere on the command
line) or PG_DEBUG=1 (or the program's own variable, e.g. PGDATA_DEBUG=1) they print their traceback instead,
with every cause and context in the chain, including those that `raise ... from None` hides from users.
Usage errors are typer's (exit 2); Ctrl-C is typer's too.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Collection, Sequence
from typing import NoReturn

from pgdata.common.atomic import os_error_reason
from pgdata.common.errors import ToolkitError

DEBUG_FLAG = "--debug"
DEBUG_VARIABLE = "PG_DEBUG"


def debug_variables(program_name: str) -> tuple[str, str]:
    """PG_DEBUG for all three tools, and the program's own (PGDATA_DEBUG, PGTRAIN_DEBUG, PGMETRICS_DEBUG)."""
    return DEBUG_VARIABLE, f"{program_name.upper()}_DEBUG"


def take_debug_flag(argv: list[str], program_name: str) -> bool:
    """Whether debugging is asked for; removes `--debug` from `argv` in place, as the three main()s did (typer
    does not know the option, and pgtrain relaunches its worker processes from sys.argv)."""
    flagged = DEBUG_FLAG in argv
    while DEBUG_FLAG in argv:
        argv.remove(DEBUG_FLAG)
    return flagged or any(os.environ.get(name) == "1" for name in debug_variables(program_name))


def one_line(program_name: str, error: BaseException, os_error_note: str = "") -> str:
    """The user's line: the toolkit error's text, or an OSError's file and the system's words."""
    if isinstance(error, OSError):
        where = f"{error.filename}: " if error.filename else ""
        note = f" ({os_error_note})" if os_error_note else ""
        return f"{program_name}: error: {where}{os_error_reason(error)}{note}"
    return f"{program_name}: error: {error}"


def full_traceback(error: BaseException) -> str:
    """The traceback with the whole chain: contexts hidden by `raise ... from None` are shown too."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__suppress_context__ = False
        link = link.__cause__ or link.__context__
    return "".join(traceback.format_exception(error))


def _fail(program_name: str, error: BaseException, debug: bool, os_error_note: str) -> NoReturn:
    message = full_traceback(error) if debug else one_line(program_name, error, os_error_note) + "\n"
    sys.stderr.write(message)
    sys.exit(1)


def run_cli(app: Callable[..., object], program_name: str, *error_types: type[BaseException],
            os_errnos: Collection[int] | None = None, os_error_note: str = "",
            argv: Sequence[str] | None = None) -> None:
    """Run a typer `app` as the console script `program_name`.

    `error_types`: the user errors to print as one line (default: ToolkitError, the base of all three).
    `os_errnos`: the OSError numbers to print as one line (default: all); others are tracebacks (our bugs).
    `os_error_note`: added in parentheses to an OSError's line (pgtrain: what is left intact).
    `argv`: the arguments (default: sys.argv[1:], from which `--debug` is removed).
    Any other exception is a bug of ours: its traceback, with the whole chain under `--debug`.
    """
    arguments = sys.argv if argv is None else ["", *argv]
    debug = take_debug_flag(arguments, program_name)
    user_errors = error_types or (ToolkitError,)
    try:
        app(args=arguments[1:])  # standalone mode: typer reports usage errors itself and exits
    except user_errors as error:
        _fail(program_name, error, debug, os_error_note)
    except OSError as error:
        if not debug and os_errnos is not None and error.errno not in os_errnos:
            raise
        _fail(program_name, error, debug, os_error_note)
    except Exception as error:  # our bug: a traceback either way, with the whole chain under --debug
        if not debug:
            raise
        _fail(program_name, error, debug, os_error_note)
