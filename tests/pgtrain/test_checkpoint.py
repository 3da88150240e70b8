"""The pgtrain snapshot format: round trip, weights_only loading, atomic writes, clear errors."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
import torch

from pgtrain.checkpoint import FORMAT, Snapshot, build_networks, load_snapshot, save_snapshot, snapshot_lod
from pgtrain.errors import PgtrainError
from pgtrain.networks import Discriminator, Generator

G_KWARGS = {"num_channels": 3, "resolution": 16, "fmap_base": 32, "fmap_max": 8, "label_size": 2}
D_KWARGS = {"num_channels": 3, "resolution": 16, "fmap_base": 32, "fmap_max": 8, "label_size": 2,
            "mbstd_group_size": 2, "fused_scale": False}


def _save(path: Path, **extra) -> tuple[Generator, Discriminator, Generator]:
    torch.manual_seed(0)
    G, D, Gs = Generator(**G_KWARGS), Discriminator(**D_KWARGS), Generator(**G_KWARGS)
    save_snapshot(path, network_kwargs={"G": G_KWARGS, "D": D_KWARGS}, G_state=G.state_dict(),
                  D_state=D.state_dict(), Gs_state=Gs.state_dict(), **extra)
    return G, D, Gs


def test_round_trip_and_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "run" / "network-snapshot-000140.pt"
    training_state = {"kimg": 140.5, "lod": 2.25, "rng": torch.get_rng_state(), "opt": {"step": 3}}
    G, D, Gs = _save(path, training_state=training_state, metadata={"note": "test"})
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == FORMAT == "pgtrain-snapshot/1"
    snapshot = load_snapshot(path)
    assert snapshot.training_state["kimg"] == 140.5 and snapshot.metadata == {"note": "test"}
    torch.testing.assert_close(snapshot.training_state["rng"], training_state["rng"])
    G2, D2, Gs2 = build_networks(snapshot)
    for before, after in ((G, G2), (D, D2), (Gs, Gs2)):
        for (name, a), (name2, b) in zip(before.state_dict().items(), after.state_dict().items(), strict=True):
            assert name == name2 and torch.equal(a, b)
    assert not any(p.requires_grad for p in Gs2.parameters()) and all(p.requires_grad for p in G2.parameters())
    assert [p.name for p in tmp_path.joinpath("run").iterdir()] == [path.name]  # no temporary file left


def test_overwrite_is_atomic_replacement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.pt"
    _save(path, metadata={"version": 1})
    original = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(PgtrainError, match=r"s.pt: cannot write the snapshot \(disk full\); nothing was written"):
        _save(path, metadata={"version": 2})
    assert path.read_bytes() == original and os.listdir(tmp_path) == ["s.pt"]


def test_a_full_disk_reported_by_torchs_zip_writer_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed\nmore torch detail")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(PgtrainError, match="cannot write the snapshot .*file write failed") as info:
        _save(tmp_path / "s.pt")
    assert "\n" not in str(info.value) and os.listdir(tmp_path) == []


def test_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(PgtrainError, match="cannot write the snapshot"):
            _save(folder / "s.pt")
    finally:
        folder.chmod(0o700)


def _tensor_data_offset(path: Path, member_suffix: str) -> int:
    """Where a member's bytes start: after its local header, whose extra field (torch pads it for alignment)
    differs from the central directory's."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    header = path.read_bytes()[info.header_offset:info.header_offset + 30]
    name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_length + extra_length


def test_flipped_bytes_in_a_tensor_are_caught_by_the_archive_crc(tmp_path: Path) -> None:
    """torch.load does not check CRCs: four flipped bytes in a tensor loaded silently (as NaN weights)."""
    good = tmp_path / "good.pt"
    _save(good)
    data = bytearray(good.read_bytes())
    start = _tensor_data_offset(good, "data/0")
    data[start:start + 4] = b"\x00\x00\x80\x3f"  # 1.0: a finite, plausible weight; only the CRC tells
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(bytes(data))
    with pytest.raises(PgtrainError, match=r"damaged.pt: damaged snapshot \(CRC mismatch in .*data/0\)"):
        load_snapshot(damaged)


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    G, D = Generator(**G_KWARGS), Discriminator(**D_KWARGS)
    Gs_state = {name: tensor.clone() for name, tensor in G.state_dict().items()}
    Gs_state["to_rgb.0.bias"][0] = float("nan")
    path = save_snapshot(tmp_path / "nan.pt", network_kwargs={"G": G_KWARGS, "D": D_KWARGS},
                         G_state=G.state_dict(), D_state=D.state_dict(), Gs_state=Gs_state)
    with pytest.raises(PgtrainError, match=r"nan.pt: Gs weight to_rgb.0.bias holds NaN or infinite values") as info:
        load_snapshot(path)
    assert "\n" not in str(info.value)


def test_missing_corrupt_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(PgtrainError, match="no such snapshot"):
        load_snapshot(tmp_path / "missing.pt")
    good = tmp_path / "good.pt"
    _save(good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    for path in (truncated, garbage):
        with pytest.raises(PgtrainError, match=path.name) as error:
            load_snapshot(path)
        assert "\n" not in str(error.value)
    # flip bytes inside the archive's data (still a zip): must still be a clear error, not a traceback
    damaged = tmp_path / "damaged.pt"
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("data.pkl"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start:start + 20] = b"\xff" * 20
    damaged.write_bytes(bytes(data))
    with pytest.raises(PgtrainError, match="damaged.pt"):
        load_snapshot(damaged)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(PgtrainError, match="not a pgtrain snapshot"):
        load_snapshot(other)
    future = tmp_path / "future.pt"
    torch.save({"format": "pgtrain-snapshot/9"}, future)
    with pytest.raises(PgtrainError, match="unsupported snapshot format"):
        load_snapshot(future)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should-not-run",))


def test_arbitrary_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "network_kwargs": {"G": {}, "D": {}}, "G": {}, "D": {}, "Gs": {},
                "metadata": _Payload()}, path)
    with pytest.raises(PgtrainError, match="weights_only"):
        load_snapshot(path)


def test_weights_that_do_not_fit_the_kwargs(tmp_path: Path) -> None:
    path = tmp_path / "s.pt"
    _save(path)
    snapshot = load_snapshot(path)
    wrong = Snapshot(network_kwargs={"G": {**G_KWARGS, "fmap_max": 4}, "D": D_KWARGS}, G_state=snapshot.G_state,
                     D_state=snapshot.D_state, Gs_state=snapshot.Gs_state, path=path)
    with pytest.raises(PgtrainError, match="G weights do not fit"):
        build_networks(wrong)
    bad_kwargs = Snapshot(network_kwargs={"G": {**G_KWARGS, "colour": 1}, "D": D_KWARGS}, G_state={}, D_state={},
                          Gs_state={}, path=path)
    with pytest.raises(PgtrainError, match="invalid network_kwargs"):
        build_networks(bad_kwargs)


def test_snapshot_lod_from_importer_or_trainer() -> None:
    def make(metadata=None, training_state=None) -> Snapshot:
        return Snapshot({"G": {}, "D": {}}, {}, {}, {}, training_state=training_state, metadata=metadata or {})

    assert snapshot_lod(make()) == 0.0
    assert snapshot_lod(make(metadata={"lod": {"G": 0.0, "D": 0.0, "Gs": 1.5}})) == 1.5
    assert snapshot_lod(make(training_state={"state": {"prev_lod": 2.25}})) == 2.25
    assert snapshot_lod(make(training_state={"state": {"prev_lod": None}})) == 0.0
