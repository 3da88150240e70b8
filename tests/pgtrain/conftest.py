"""Fixtures shared by the pgtrain tests that train through the CLI."""

from __future__ import annotations

import pytest

from pgdata.exporter import export_dataset
from tests.pgtrain.test_training_cli import TinySource


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """12 random 16x16 RGB images as pgshards (a module that needs another dataset defines its own `dataset`)."""
    return export_dataset(TinySource(), tmp_path_factory.mktemp("data") / "tiny", command="test", arguments={},
                          quiet=True)
