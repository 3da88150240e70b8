"""The copies of each shared helper that the packages held before pgdata.common: the tests compare the shared
helper with them while they exist, and skip (saying so) once a copy has been migrated away."""

from __future__ import annotations

import importlib

import pytest


def current_copy(name: str, *modules: str):
    """`name` from the first of `modules` that still holds it (modules move while the tree is reorganised),
    else skip the comparison."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    pytest.skip(f"{name} is no longer in {', '.join(modules)} (migrated to pgdata.common): nothing to compare")
