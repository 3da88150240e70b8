"""Every command of the three programs explains itself: `--help` on each command and subcommand shows an
example and exits 0, and each program run with no arguments lists its commands without a traceback (DESIGN.md:
"--help on every command and an example in it"). In-process, through typer's CliRunner."""

from __future__ import annotations

import importlib

import pytest
import typer
from typer.testing import CliRunner

runner = CliRunner()

PROGRAMS = {"pgdata": "pgdata.cli", "pgtrain": "pgtrain.cli", "pgmetrics": "pgmetrics.cli"}


def program_app(program: str) -> typer.Typer:
    return importlib.import_module(PROGRAMS[program]).app


def visible_commands(group) -> dict[str, object]:
    return {name: command for name, command in sorted(group.commands.items()) if not command.hidden}


def command_paths(program: str) -> list[tuple[str, ...]]:
    """Every visible command and subcommand of a program, as the words that invoke it."""
    paths: list[tuple[str, ...]] = []

    def walk(group, prefix: tuple[str, ...]) -> None:
        for name, command in visible_commands(group).items():
            paths.append((*prefix, name))
            if hasattr(command, "commands"):
                walk(command, (*prefix, name))

    walk(typer.main.get_command(program_app(program)), ())
    return paths


CASES = [(program, path) for program in PROGRAMS for path in command_paths(program)]


@pytest.mark.parametrize("program,path", CASES, ids=[" ".join((p, *words)) for p, words in CASES])
def test_every_command_help_has_an_example(program: str, path: tuple[str, ...]) -> None:
    result = runner.invoke(program_app(program), [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"{program} {' '.join(path)} --help shows no example"


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_no_arguments_lists_the_commands(program: str) -> None:
    result = runner.invoke(program_app(program), [], terminal_width=200)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    top_level = visible_commands(typer.main.get_command(program_app(program)))
    assert top_level and all(name in result.output for name in top_level), result.output
