"""run_cli: the console entry of the three programs. A user error or a refusal by the machine is one line and
exit status 1; --debug (or PG_DEBUG=1, or the program's own variable) shows the traceback with its whole chain,
including the cause that `raise ... from None` hides from users."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
import typer

from pgdata.common.cli import run_cli
from pgdata.common.errors import ToolkitError

app = typer.Typer(name="demo", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


class DemoError(ToolkitError):
    pass


@app.command()
def user_error() -> None:
    """Raise a user error whose cause is hidden from users."""
    try:
        int("x1")
    except ValueError:
        raise DemoError("not a number", "data/config.txt") from None


@app.command()
def full_disk() -> None:
    """Raise the machine's refusal."""
    raise OSError(errno.ENOSPC, "No space left on device", "results/000/network-snapshot-000010.pt")


@app.command()
def missing() -> None:
    """Raise an OSError that is not the environment's."""
    raise OSError(errno.ENOENT, "No such file or directory", "x.txt")


@app.command()
def bug() -> None:
    """Raise a bug of ours."""
    raise KeyError("oops")


@app.command()
def ok(name: str = "") -> None:
    """Succeed."""
    print(f"hello {name}")


def run(capsys, *arguments: str, **options) -> tuple[int, str, str]:
    try:
        run_cli(app, "demo", *options.pop("error_types", ()), argv=list(arguments), **options)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def no_debug_variables(monkeypatch):
    for name in ("PG_DEBUG", "DEMO_DEBUG"):
        monkeypatch.delenv(name, raising=False)


def test_a_user_error_is_one_line_and_exit_1(capsys) -> None:
    assert run(capsys, "user-error") == (1, "", "demo: error: data/config.txt: not a number\n")


def test_an_os_error_is_one_line_naming_the_file(capsys) -> None:
    code, _, err = run(capsys, "full-disk")
    assert (code, err) == (1, "demo: error: results/000/network-snapshot-000010.pt: No space left on device\n")
    code, _, err = run(capsys, "full-disk", os_error_note="the last snapshot written is intact")
    assert err.endswith("No space left on device (the last snapshot written is intact)\n")


def test_only_the_chosen_os_errors_are_one_line(capsys) -> None:
    code, _, err = run(capsys, "full-disk", os_errnos={errno.ENOSPC})
    assert code == 1 and err.count("\n") == 1
    with pytest.raises(FileNotFoundError):
        run(capsys, "missing", os_errnos={errno.ENOSPC})


def test_only_the_given_error_types_are_user_errors(capsys) -> None:
    class OtherError(ToolkitError):
        pass

    with pytest.raises(DemoError):
        run(capsys, "user-error", error_types=(OtherError,))
    assert run(capsys, "user-error", error_types=(DemoError,))[0] == 1


@pytest.mark.parametrize("how", ["flag", "PG_DEBUG", "DEMO_DEBUG"])
def test_debug_shows_the_traceback_with_the_hidden_cause(capsys, monkeypatch, how) -> None:
    arguments = ["user-error", "--debug"] if how == "flag" else ["user-error"]
    if how != "flag":
        monkeypatch.setenv(how, "1")
    code, _, err = run(capsys, *arguments)
    assert code == 1 and err.startswith("Traceback (most recent call last):")
    assert "ValueError: invalid literal for int() with base 10: 'x1'" in err  # the cause `from None` hid
    assert "During handling of the above exception, another exception occurred" in err
    assert err.rstrip().endswith("DemoError: data/config.txt: not a number")


def test_debug_flag_is_taken_out_of_the_command_line(capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["demo", "ok", "--debug", "--name", "x"])
    with pytest.raises(SystemExit) as exit_:
        run_cli(app, "demo")
    assert exit_.value.code == 0 and capsys.readouterr().out == "hello x\n" and sys.argv == ["demo", "ok", "--name", "x"]


def test_bugs_stay_tracebacks_and_show_their_chain_with_debug(capsys) -> None:
    with pytest.raises(KeyError):
        run(capsys, "bug")
    code, _, err = run(capsys, "bug", "--debug")
    assert code == 1 and "Traceback" in err and "KeyError: 'oops'" in err


def test_usage_errors_and_no_arguments_are_typers(capsys) -> None:
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and "Traceback" not in err
    code, out, err = run(capsys)
    assert code in (0, 2) and "user-error" in out + err and "Traceback" not in out + err


REAL_PROGRAMS = {
    "pgdata": ("pgdata.cli", "pgdata.errors", "PgdataError", ["info", "{missing}"]),
    "pgtrain": ("pgtrain.cli", "pgtrain.errors", "PgtrainError", ["presets", "show", "no-such-preset"]),
    "pgmetrics": ("pgmetrics.cli", "pgmetrics.errors", "PgmetricsError", ["compare", "{missing}", "{missing}"]),
}


@pytest.mark.parametrize("program", sorted(REAL_PROGRAMS))
def test_user_errors_of_the_real_programs_read_as_before(capsys, monkeypatch, tmp_path: Path, program) -> None:
    """Through each real app: the shared entry prints what the program's own main() printed."""
    import importlib

    from pgdata.errors import PgdataError

    cli_module, errors_module, error_name, words = REAL_PROGRAMS[program]
    cli = importlib.import_module(cli_module)
    error_type = getattr(importlib.import_module(errors_module), error_name)
    arguments = [program, *(word.format(missing=tmp_path / "nowhere") for word in words)]
    monkeypatch.setattr(sys, "argv", list(arguments))
    with pytest.raises(SystemExit) as before:
        cli.main()
    before_err = capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", list(arguments))
    with pytest.raises(SystemExit) as after:
        run_cli(cli.app, program, error_type, PgdataError)
    assert (after.value.code, capsys.readouterr().err) == (before.value.code, before_err)
    assert before.value.code == 1 and before_err.startswith(f"{program}: error: ") and before_err.count("\n") == 1
