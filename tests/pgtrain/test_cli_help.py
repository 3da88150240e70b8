"""Every pgtrain command's --help shows an example, and `pgtrain` alone lists the commands (DESIGN.md's
command-line conventions)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from pgtrain.cli import app

runner = CliRunner()


def _command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand, as the words that invoke it."""
    paths = [prefix] if prefix else []
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            paths += _command_paths(sub, (*prefix, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_command_list_is_complete():
    assert {"run", "presets", "generate", "import-tf", "summary", "bench"} <= {path[0] for path in COMMANDS}
    assert ("presets", "show") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_help_has_an_example(path):
    result = runner.invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert re.search(r"^\s*Examples?:", result.output, re.MULTILINE), result.output


def test_pgtrain_alone_lists_its_commands():
    result = runner.invoke(app, [], terminal_width=200)
    for path in COMMANDS:
        assert path[0] in result.output
    assert "Usage: pgtrain" in result.output
