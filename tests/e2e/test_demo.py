"""`make demo` (tools/demo.py): it trains, scores the generator before and after, and the score falls.

The slow test runs the demo as `make demo` does, shortened to 8 kimg (4x4 and 8x8 with its fade-in); the fast tests
check how the demo reads pgtrain's grids and pgmetrics' table.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT, load_module

demo = load_module(REPO_ROOT / "tools" / "demo.py", "demo")


def test_a_fakes_grid_is_cut_back_into_its_images_in_row_major_order(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 3, 4, 4), dtype=np.uint8)
    grid = np.zeros((3, 2 * 4, 3 * 4), np.uint8)  # 3 columns, 2 rows, as pgtrain.grids.image_grid lays them out
    for index, image in enumerate(images):
        row, column = divmod(index, 3)
        grid[:, row * 4:(row + 1) * 4, column * 4:(column + 1) * 4] = image
    Image.fromarray(grid.transpose(1, 2, 0), "RGB").save(tmp_path / "fakes000000.png")
    assert np.array_equal(demo.grid_images(tmp_path / "fakes000000.png", 4), images)


def test_the_first_grid_is_the_untrained_generator_and_the_last_the_trained_one(tmp_path):
    for name in ("fakes000016.png", "fakes000000.png", "fakes000004.png", "fakes-other.png"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in demo.fakes_grids(tmp_path)] == ["fakes000000.png", "fakes000004.png", "fakes000016.png"]


def test_pgmetrics_compare_table_is_read_by_name():
    text = "SWDx1e3_32   265.224000\nSWDx1e3_16   226.058000\nSWDx1e3_avg  245.641000\nnote: not a value\n"
    assert demo.parse_scores(text) == {"SWDx1e3_32": 265.224, "SWDx1e3_16": 226.058, "SWDx1e3_avg": 245.641}


@pytest.mark.slow
def test_the_demo_ends_with_the_score_falling_and_a_rerun_skips_the_training(tmp_path):
    command = [sys.executable, str(REPO_ROOT / "tools" / "demo.py"), "--out", str(tmp_path / "demo"), "--kimg", "8"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    row = re.search(r"SWDx1e3_avg\s+([\d.]+)\s+([\d.]+)", result.stdout)
    assert row, result.stdout
    untrained, trained = float(row.group(1)), float(row.group(2))
    assert trained < untrained
    run_dir = tmp_path / "demo" / "results" / demo.RUN_NAME
    assert (run_dir / "metric-swd-512.txt").is_file() and (run_dir / "_training-done.txt").is_file()

    again = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "training already finished" in again.stdout + again.stderr
    assert re.search(r"SWDx1e3_avg\s+([\d.]+)\s+([\d.]+)", again.stdout).groups() == row.groups()
