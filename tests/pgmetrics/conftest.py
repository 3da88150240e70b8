"""Fixtures shared by the pgmetrics tests: an isolated cache and weights environment, and a small array of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture()
def env(tmp_path, monkeypatch) -> Path:
    """A temporary folder with its own pgmetrics cache and no Inception weights configured."""
    monkeypatch.setenv("PGMETRICS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PGMETRICS_INCEPTION_WEIGHTS", raising=False)
    return tmp_path


@pytest.fixture()
def fakes(env) -> Path:
    """32 blob images at 16x16 in an .npy (the blobs in reverse order)."""
    from tests.pgmetrics.test_evaluate_e2e import BlobSource

    path = env / "fakes.npy"
    np.save(path, BlobSource(n=32).images[::-1].copy())
    return path
