"""--allow-unverified-weights: other Inception weights are refused without it; with it they are used, one warning
line says the scores are not comparable, and the file's sha256 is recorded in every output. Real-set statistics
made with one weights file are never served for another."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pgmetrics import inception
from pgmetrics.evaluate import header_lines
from tests.pgmetrics.test_reliability import one_line_error, run, tiny_snapshot

INCEPTION_OPTIONS = ["--metrics", "kid", "--kid-subsets", "1", "--kid-subset-size", "2", "--num", "2", "--quiet"]


def standin_weights(path: Path, seed: int) -> Path:
    """A random state dict of the TF-Inception network's shapes (not the published weights)."""
    torch.manual_seed(seed)
    torch.save(inception.InceptionV3TF().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("weights")
    return standin_weights(folder / "standin-a.pth", 1), standin_weights(folder / "standin-b.pth", 2)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def warning_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("pgmetrics: warning: ")]


def test_features_refuses_other_weights_unless_allowed_and_records_their_sha(weights, fakes, env, monkeypatch,
                                                                             capsys):
    out = env / "features.npz"
    code, _, err = run(monkeypatch, capsys, "features", fakes, "--out", out, "--num", 2, "--inception-weights",
                       weights[0], "--quiet")
    assert one_line_error(code, err, "not the TF-Inception 2015-12-05 weights", "--allow-unverified-weights")
    assert not out.exists()
    code, _, err = run(monkeypatch, capsys, "features", fakes, "--out", out, "--num", 2, "--inception-weights",
                       weights[0], "--allow-unverified-weights", "--quiet")
    assert code == 0, err
    (warning,) = warning_lines(err)
    assert str(weights[0]) in warning and sha256(weights[0])[:16] in warning and "not comparable" in warning
    with np.load(out) as stored:
        assert str(stored["weights_sha256"]) == sha256(weights[0]) and not bool(stored["weights_verified"])
        assert stored["pool_3"].shape == (2, 2048)


def test_compare_records_the_weights_and_the_cache_is_keyed_on_them(weights, fakes, env, monkeypatch,
                                                                     capsys):
    result = env / "scores.json"
    code, _, err = run(monkeypatch, capsys, "compare", fakes, fakes, *INCEPTION_OPTIONS, "--inception-weights",
                       weights[0])
    assert one_line_error(code, err, "not the TF-Inception", "--allow-unverified-weights")
    notes = []
    for path in (weights[0], weights[0], weights[1]):
        code, _, err = run(monkeypatch, capsys, "compare", fakes, fakes, *INCEPTION_OPTIONS, "--inception-weights",
                           path, "--allow-unverified-weights", "--json", result)
        assert code == 0, err
        assert len(warning_lines(err)) == 1
        settings = json.loads(result.read_text())["settings"]
        assert settings["inception_weights_sha256"] == sha256(path)
        assert settings["inception_weights_verified"] is False
        notes.append("real Inception features from the cache" in err)
    assert notes == [False, True, False]  # the second weights file does not get the first one's statistics
    assert len(list((env / "cache" / "stats").glob("inception-*.npz"))) == 2


def test_evaluate_records_the_weights_beside_an_official_table(weights, fakes, env, monkeypatch,
                                                               capsys):
    run_dir = env / "run"
    run_dir.mkdir()
    tiny_snapshot(run_dir / "network-snapshot-000001.pt", 1)
    arguments = ["evaluate", run_dir, "--real", fakes, *INCEPTION_OPTIONS, "--inception-weights", weights[1]]
    code, _, err = run(monkeypatch, capsys, *arguments)
    assert one_line_error(code, err, "not the TF-Inception", "--allow-unverified-weights")
    assert not list(run_dir.glob("metric-*"))
    code, _, err = run(monkeypatch, capsys, *arguments, "--allow-unverified-weights")
    assert code == 0, err
    assert len(warning_lines(err)) == 1
    record = json.loads((run_dir / "metric-kid-2.json").read_text())
    assert record["settings"]["inception_weights_sha256"] == sha256(weights[1])
    assert record["inception_weights_verified"] is False
    assert [row["sha256"] for row in record["snapshots"]] == [sha256(run_dir / "network-snapshot-000001.pt")]
    lines = (run_dir / "metric-kid-2.txt").read_text().split("\n")
    assert lines[:2] == header_lines(["KID_mean", "KID_std"]) and lines[-2:] == ["", ""]
    assert [line.split()[0] for line in lines[2:-2]] == ["Reals", "1"]
    code, out, err = run(monkeypatch, capsys, *arguments, "--allow-unverified-weights")
    assert code == 0 and "up to date" in out
    code, out, err = run(monkeypatch, capsys, "evaluate", run_dir, "--real", fakes, *INCEPTION_OPTIONS,
                         "--inception-weights", weights[0], "--allow-unverified-weights")
    assert code == 0 and "up to date" not in out  # other weights: scored again
    assert json.loads((run_dir / "metric-kid-2.json").read_text())["settings"]["inception_weights_sha256"] == \
        sha256(weights[0])
