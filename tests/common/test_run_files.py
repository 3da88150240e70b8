"""pgdata.common.run_files: the snapshot names that pgtrain writes are exactly those pgmetrics evaluates."""

from __future__ import annotations

from pathlib import Path

from pgdata.common.run_files import (
    DONE_MARKER_NAME,
    FINAL_SNAPSHOT_NAME,
    list_snapshots,
    snapshot_kimg,
    snapshot_name,
)

REALISTIC = ["network-snapshot-000000.pt", "network-snapshot-000140.pt", "network-snapshot-12000.pt",
             "network-snapshot-1234567.pt", FINAL_SNAPSHOT_NAME, "network-snapshot-000140.pt.tmp",
             ".network-snapshot-000140.pt.123.ab12cd34.tmp", "network-snapshot-.pt", "network-snapshot-0x1.pt",
             "training-state-000140.pt", "fakes000140.png", "metric-fid-50k.txt", DONE_MARKER_NAME, "log.txt"]


def test_names_by_hand(tmp_path: Path) -> None:
    assert snapshot_name(140) == "network-snapshot-000140.pt" and snapshot_kimg(snapshot_name(140)) == 140
    assert snapshot_name(1234567) == "network-snapshot-1234567.pt"
    assert [snapshot_kimg(n) for n in ("network-final.pt", "xnetwork-snapshot-000001.pt",
                                       "network-snapshot-000001.pt\n", "a-network-snapshot-000001.pt")] == [None] * 4
    for name in REALISTIC:
        (tmp_path / name).touch()
    assert list_snapshots(tmp_path) == [(0, tmp_path / "network-snapshot-000000.pt"),
                                        (140, tmp_path / "network-snapshot-000140.pt"),
                                        (12000, tmp_path / "network-snapshot-12000.pt"),
                                        (1234567, tmp_path / "network-snapshot-1234567.pt")]


def test_the_trainer_resumes_from_the_snapshot_the_evaluator_lists_last(tmp_path: Path) -> None:
    from pgtrain.run_dir import latest_snapshot

    for name in REALISTIC:
        if name != FINAL_SNAPSHOT_NAME:
            (tmp_path / name).touch()
    assert latest_snapshot(tmp_path) == list_snapshots(tmp_path)[-1][1] == tmp_path / "network-snapshot-1234567.pt"
    (tmp_path / FINAL_SNAPSHOT_NAME).touch()
    assert latest_snapshot(tmp_path) == tmp_path / FINAL_SNAPSHOT_NAME
