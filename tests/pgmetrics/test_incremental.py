"""`pgmetrics evaluate` is incremental (contract C1): a snapshot already scored with the same settings keeps its
row, a new or replaced snapshot is the only one scored, a changed setting re-scores the metric, and when nothing
is new no image is read at all. Also the settings API (make_settings, the one defaults table, the weights check)
and the CLI's help."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import typer

from pgmetrics import cli, compare, evaluate, inception
from pgmetrics.errors import PgmetricsError
from pgmetrics.evaluate import RealStream, evaluate_run
from pgmetrics.settings import DEFAULTS, Settings, check_weights_available, make_settings
from tests.pgmetrics.test_reliability import NUM, one_line_error, run, tiny_snapshot


@pytest.fixture()
def run_dir(env):
    folder = env / "run"
    folder.mkdir()
    for kimg in (1, 3):
        tiny_snapshot(folder / f"network-snapshot-{kimg:06d}.pt", kimg)
    return folder


def evaluate_cli(monkeypatch, capsys, run_dir, real, *extra):
    code, out, err = run(monkeypatch, capsys, "evaluate", run_dir, "--real", real, "--metrics", "swd,msssim",
                         "--num", NUM, "--quiet", *extra)
    assert code == 0, err
    return out


def table_titles(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines()[2:] if line.strip()]


def table_rows(path: Path) -> dict[str, str]:
    """Each row without its timing column (the values only)."""
    return {line.split()[0]: line[22:] for line in path.read_text().splitlines()[2:] if line.strip()}


def forbid_image_work(monkeypatch) -> None:
    """Any scoring, real-set statistics or real image read fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("image work was done")

    monkeypatch.setattr(compare.Evaluator, "__init__", refuse)
    monkeypatch.setattr(compare.SetPass, "run", refuse)
    monkeypatch.setattr(RealStream, "iter_batches", refuse)


def record_scored(monkeypatch) -> list[str]:
    """The snapshot files scored from now on (the real scorer still runs)."""
    scored: list[str] = []
    original = evaluate.score_snapshot

    def spy(evaluator, path, *args, **kwargs):
        scored.append(path.name)
        return original(evaluator, path, *args, **kwargs)

    monkeypatch.setattr(evaluate, "score_snapshot", spy)
    return scored


def test_a_second_evaluate_is_up_to_date_and_does_no_image_work(run_dir, fakes, monkeypatch, capsys):
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    table = run_dir / f"metric-swd-{NUM}.txt"
    before = {path.name: path.read_bytes() for path in run_dir.glob("metric-*")}
    assert set(before) == {f"metric-{m}-{NUM}.{s}" for m in ("swd", "msssim") for s in ("txt", "png", "json")}
    forbid_image_work(monkeypatch)
    out = evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    assert out.splitlines() == [f"{table}: up to date (2 snapshots)",
                                f"{run_dir / f'metric-msssim-{NUM}.txt'}: up to date (2 snapshots)"]
    assert {path.name: path.read_bytes() for path in run_dir.glob("metric-*")} == before


def test_only_a_new_snapshot_is_scored_and_the_table_keeps_the_official_order(run_dir, fakes,
                                                                              monkeypatch, capsys):
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    table = run_dir / f"metric-swd-{NUM}.txt"
    first = table_rows(table)
    tiny_snapshot(run_dir / "network-snapshot-000002.pt", 2)
    scored = record_scored(monkeypatch)
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    assert scored == ["network-snapshot-000002.pt"]
    assert table_titles(table) == ["Reals", "3", "2", "1"]  # Reals, then newest first
    rows = table_rows(table)
    assert {title: rows[title] for title in first} == first  # the kept rows are the stored ones
    record = json.loads((run_dir / f"metric-swd-{NUM}.json").read_text())
    assert [row["kimg"] for row in record["snapshots"]] == [3, 2, 1]


def test_a_replaced_snapshot_is_scored_again_and_a_deleted_one_loses_its_row(run_dir, fakes,
                                                                             monkeypatch, capsys):
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    table = run_dir / f"metric-msssim-{NUM}.txt"
    first = table_rows(table)
    tiny_snapshot(run_dir / "network-snapshot-000003.pt", 30)  # same name, other content (same mtime or not)
    scored = record_scored(monkeypatch)
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    assert scored == ["network-snapshot-000003.pt"]
    assert table_rows(table)["3"] != first["3"] and table_rows(table)["1"] == first["1"]
    (run_dir / "network-snapshot-000003.pt").unlink()
    forbid_image_work(monkeypatch)
    out = evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    assert "up to date (1 snapshots)" in out
    assert table_titles(table) == ["Reals", "1"]


@pytest.mark.parametrize("change", [["--seed", "5"], ["--num", str(NUM - 2)], ["--real-passes", "2"]])
def test_a_changed_setting_scores_the_metric_again(run_dir, fakes, monkeypatch, capsys, change):
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    scored = record_scored(monkeypatch)
    evaluate_cli(monkeypatch, capsys, run_dir, fakes, *change)
    assert sorted(scored) == ["network-snapshot-000001.pt", "network-snapshot-000003.pt"]


def test_another_real_set_scores_the_metric_again(run_dir, fakes, env, monkeypatch, capsys):
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    other = env / "other.npy"
    import numpy as np

    np.save(other, np.load(fakes)[::-1].copy())
    scored = record_scored(monkeypatch)
    evaluate_cli(monkeypatch, capsys, run_dir, other)
    assert len(scored) == 2


def test_a_damaged_record_is_not_trusted(run_dir, fakes, monkeypatch, capsys):
    evaluate_cli(monkeypatch, capsys, run_dir, fakes)
    record = run_dir / f"metric-swd-{NUM}.json"
    content = json.loads(record.read_text())
    content["snapshots"][0]["values"] = {"SWDx1e3_16": "0.0"}
    record.write_text(json.dumps(content))
    scored = record_scored(monkeypatch)
    evaluate_cli(monkeypatch, capsys, run_dir, fakes, "--metrics", "swd")
    assert len(scored) == 2


def test_evaluate_run_through_python_with_make_settings(run_dir, fakes):
    lines: list[str] = []
    settings = make_settings("swd", num=NUM, quiet=True)
    written = evaluate_run(run_dir, settings, real=str(fakes), echo=lines.append)
    assert written == [run_dir / f"metric-swd-{NUM}.txt", run_dir / f"metric-swd-{NUM}.png"]
    lines.clear()
    assert evaluate_run(run_dir, settings, real=str(fakes), echo=lines.append) == written
    assert lines == [f"{written[0]}: up to date (2 snapshots)"]


# --- settings: one defaults table, checked before any work ---------------------------------------------------


def test_make_settings_uses_the_defaults_and_refuses_mistakes():
    settings = make_settings(["fid", "swd"], num=16, device="cpu")
    assert settings.metrics == ["fid", "swd"] and settings.num == 16 and settings.device == "cpu"
    assert all(getattr(settings, name) == value for name, value in DEFAULTS.items() if name not in ("num", "device"))
    with pytest.raises(PgmetricsError, match="unknown setting"):
        make_settings("swd", nmu=3)
    with pytest.raises(PgmetricsError, match="--num must be at least 1"):
        make_settings("swd", num=0)
    with pytest.raises(PgmetricsError, match="unknown metric"):
        make_settings("swd,bogus")


def command_defaults(name: str) -> dict[str, object]:
    command = typer.main.get_command(cli.app).commands[name]
    return {param.name: param.default for param in command.params if param.param_type_name == "option"}


@pytest.mark.parametrize("name", ["compare", "evaluate", "features"])
def test_the_cli_defaults_are_the_api_defaults(name):
    defaults = command_defaults(name)
    shared = {key: value for key, value in DEFAULTS.items() if key in defaults}
    assert len(shared) >= 4 and all(defaults[key] == value for key, value in shared.items())
    if "no_cache" in defaults:
        assert defaults["no_cache"] is (not DEFAULTS["use_cache"])


def test_the_weights_check_comes_before_any_work(env, monkeypatch):
    assert check_weights_available(Settings(metrics=["swd", "msssim"], inception_weights="/nowhere.pth")) is None
    with pytest.raises(PgmetricsError, match="TF-Inception weights not found"):
        check_weights_available(Settings(metrics=["swd", "kid"], inception_weights=str(env / "missing.pth")))
    other = env / "other.pth"
    other.write_bytes(b"not the TF-Inception weights")
    with pytest.raises(PgmetricsError, match="allow-unverified-weights"):
        check_weights_available(Settings(metrics=["is"], inception_weights=str(other)))
    sha = check_weights_available(Settings(metrics=["is"], inception_weights=str(other),
                                           allow_unverified_weights=True))
    assert sha == inception.weights_sha256(other, verify=False) and len(sha) == 64


def test_evaluate_refuses_missing_weights_before_reading_anything(run_dir, env, monkeypatch, capsys):
    forbid_image_work(monkeypatch)
    code, out, err = run(monkeypatch, capsys, "evaluate", run_dir, "--real", env / "not-there", "--metrics", "fid",
                         "--inception-weights", env / "missing.pth")
    assert one_line_error(code, err, "TF-Inception weights not found") and "not-there" not in err


# --- the command line's help ---------------------------------------------------------------------------------


def test_no_arguments_lists_the_commands(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["pgmetrics"])
    with pytest.raises(SystemExit):
        cli.main()
    out = capsys.readouterr()
    text = out.out + out.err
    assert all(command in text for command in ("compare", "features", "evaluate", "version"))


@pytest.mark.parametrize("name", ["compare", "features", "evaluate", "version"])
def test_every_command_help_has_an_example(monkeypatch, capsys, name):
    code, out, _ = run(monkeypatch, capsys, name, "--help")
    assert code == 0 and f"Example: pgmetrics {name}" in out
