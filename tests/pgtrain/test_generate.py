"""Generation: official uint8 conversion, official latents, raw output shapes, the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pgdata.common.images import to_uint8 as images_to_uint8
from pgtrain.checkpoint import save_snapshot
from pgtrain.generate import generate_images, random_latents
from pgtrain.networks import Discriminator, Generator


def test_uint8_conversion_follows_the_official_rule() -> None:
    # x * 127.5 + 127.5 (float32), numpy.rint (half to even), clip to [0, 255]
    values = np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0, -0.996078431, 0.003921569], np.float32)
    expected = [0, 0, 128, 191, 255, 255, 0, 128]  # 127.5 -> 128 (even); 0.5 -> 0 (even); 128.0 -> 128
    assert images_to_uint8(values).tolist() == expected
    halfway = (np.array([1.5, 2.5], np.float32) - 127.5) / 127.5  # lands on 1.5 / 2.5 before rint
    assert images_to_uint8(halfway).tolist() == [2, 2]
    assert images_to_uint8(np.array([0.25, 0.75], np.float32), drange=(0, 1)).tolist() == [64, 191]


def test_random_latents_are_the_official_per_png_draws() -> None:
    latents = random_latents(3, 7, seed=1000)
    state = np.random.RandomState(1000)  # official: one randn(1, latent) per PNG from one RandomState
    rows = [state.randn(1, 7).astype(np.float32) for _ in range(3)]
    assert latents.dtype == np.float32 and np.array_equal(latents, np.concatenate(rows))


def _network(tmp_path: Path, label_size: int = 0) -> tuple[Path, Generator]:
    torch.manual_seed(0)
    kwargs = {"num_channels": 3, "resolution": 16, "fmap_base": 32, "fmap_max": 8, "label_size": label_size}
    G, D, Gs = Generator(**kwargs), Discriminator(**kwargs), Generator(**kwargs)
    path = save_snapshot(tmp_path / "n.pt", network_kwargs={"G": kwargs, "D": kwargs}, G_state=G.state_dict(),
                         D_state=D.state_dict(), Gs_state=Gs.state_dict(), metadata={"lod": {"Gs": 1.0}})
    return path, Gs


def test_generate_images_full_resolution_at_any_lod(tmp_path: Path) -> None:
    _, Gs = _network(tmp_path)
    z = random_latents(5, Gs.latent_size, 1)
    for lod in (0.0, 1.0, 1.5, 2.0):
        images = generate_images(Gs, z, lod=lod, batch_size=2)
        assert images.shape == (5, 3, 16, 16) and images.dtype == np.float32
        with torch.no_grad():
            np.testing.assert_allclose(images, Gs(torch.from_numpy(z), lod=lod).numpy(), atol=1e-4)
    coarse = generate_images(Gs, z, lod=2.0)
    np.testing.assert_array_equal(coarse, np.repeat(np.repeat(coarse[:, :, ::4, ::4], 4, 2), 4, 3))
    with pytest.raises(ValueError, match="latents"):
        generate_images(Gs, z[:, :3])


def _run_cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    from pgtrain.cli import main

    monkeypatch.setattr(sys, "argv", ["pgtrain", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)


def test_cli_writes_raw_and_pngs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, Gs = _network(tmp_path, label_size=2)
    labels = np.eye(2, dtype=np.float32)[[0, 1, 1]]
    np.save(tmp_path / "y.npy", labels)
    _run_cli(monkeypatch, "generate", str(path), "--num", "3", "--seed", "5", "--labels", str(tmp_path / "y.npy"),
             "--raw", str(tmp_path / "raw.npy"), "--out", str(tmp_path / "pngs"), "--prefix", "")
    raw = np.load(tmp_path / "raw.npy")
    # the default lod is the one Gs was saved with (official generation runs Gs at its stored lod)
    expected = generate_images(Gs, random_latents(3, Gs.latent_size, 5), labels, lod=1.0)
    np.testing.assert_allclose(raw, expected, atol=1e-6)
    pngs = sorted((tmp_path / "pngs").iterdir())
    assert [p.name for p in pngs] == ["000000.png", "000001.png", "000002.png"]
    for png, image in zip(pngs, images_to_uint8(raw), strict=True):
        assert np.array_equal(np.asarray(Image.open(png)), image.transpose(1, 2, 0))


def test_cli_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture) -> None:
    from pgtrain.cli import main

    path, _ = _network(tmp_path, label_size=2)
    cases = [["generate", str(path), "--num", "2", "--raw", str(tmp_path / "r.npy")],  # labels missing
             ["generate", str(tmp_path / "missing.pt"), "--num", "2", "--raw", str(tmp_path / "r.npy")],
             ["generate", str(path), "--raw", str(tmp_path / "r.npy")]]
    for argv in cases:
        monkeypatch.setattr(sys, "argv", ["pgtrain", *argv])
        with pytest.raises(SystemExit) as exit_info:
            main()
        assert exit_info.value.code == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pgtrain: error:")


def test_summary_command_prints_the_paper_totals(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture) -> None:
    _run_cli(monkeypatch, "summary", "--resolution", "1024")
    out = capsys.readouterr().out
    assert "23,079,115" in out and "23,087,249" in out and "16 x 1024 x 1024" in out


def test_summary_command_applies_preset_network_keywords(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("pgtrain.presets")
    _run_cli(monkeypatch, "summary", "--resolution", "32", "--label-size", "10", "--preset", "v1-1gpu")
    out = capsys.readouterr().out
    assert "Minibatch stddev (group 16)" in out and "11 x 1 x 1" in out  # 1 score + 10 label logits


# -- pgtrain generate as the official generate_fake_images ------------------------------------------------------


def _cli_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *argv: str) -> str:
    """Run a command that must fail; return its single stderr line."""
    from pgtrain.cli import main

    monkeypatch.setattr(sys, "argv", ["pgtrain", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pgtrain: error:"), lines
    return lines[0]


def _official_grid(Gs: Generator, latents: np.ndarray, columns: int, rows: int, shrink: int = 1,
                   labels: np.ndarray | None = None, lod: float = 0.0) -> np.ndarray:
    """The official pipeline written out: x * 127.5 + 127.5, K x K average, rint, clip, create_image_grid."""
    with torch.no_grad():
        images = Gs(torch.from_numpy(latents), None if labels is None else torch.from_numpy(labels), lod).numpy()
    scaled = images * np.float32(127.5) + np.float32(127.5)
    n, c, h, w = scaled.shape
    pooled = scaled.reshape(n, c, h // shrink, shrink, w // shrink, shrink).mean(axis=(3, 5))
    cells = np.rint(pooled).clip(0, 255).astype(np.uint8)
    grid = np.zeros((c, rows * (h // shrink), columns * (w // shrink)), np.uint8)
    for index in range(n):
        y, x = divmod(index, columns)
        grid[:, y * (h // shrink):(y + 1) * (h // shrink), x * (w // shrink):(x + 1) * (w // shrink)] = cells[index]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_png_latents_are_drawn_grid_by_grid_from_one_random_state() -> None:
    from pgtrain.latents import png_latents

    state = np.random.RandomState(7)  # official: randn(prod(grid_size), latent) per png, one RandomState
    expected = [state.randn(6, 5).astype(np.float32) for _ in range(3)]
    drawn = list(png_latents(7, 3, 6, 5))
    assert all(np.array_equal(a, b) for a, b in zip(drawn, expected, strict=True))
    # the first PNGs do not depend on how many are asked for, and 1x1 grids are the rows of random_latents
    assert np.array_equal(list(png_latents(7, 1, 6, 5))[0], expected[0])
    assert np.array_equal(np.concatenate(list(png_latents(7, 4, 1, 5))), random_latents(4, 5, 7))


def test_gs_output_to_uint8_pools_after_scaling_and_rounds_half_to_even() -> None:
    from pgtrain.generate import gs_output_to_uint8

    images = np.random.default_rng(0).uniform(-1.1, 1.1, (4, 3, 8, 8)).astype(np.float32)
    scaled = images * np.float32(127.5) + np.float32(127.5)  # official: out_mul, out_add, then the pool
    pooled = scaled.reshape(4, 3, 4, 2, 4, 2).mean(axis=(3, 5))
    expected = np.rint(pooled).clip(0, 255).astype(np.uint8)
    rounded_first = np.rint(np.rint(scaled).reshape(4, 3, 4, 2, 4, 2).mean(axis=(3, 5))).clip(0, 255)
    assert not np.array_equal(expected, rounded_first)  # the order matters on these values
    assert np.array_equal(gs_output_to_uint8(images, 2), expected)
    values = np.array([-1.5, -1.0, 0.0, 0.5, 1.0, 2.0], np.float32)
    assert np.array_equal(gs_output_to_uint8(values), images_to_uint8(values))


def test_default_prefix_is_the_official_id_string() -> None:
    from pgtrain.fake_images import default_prefix

    # official get_id_string_for_network_pkl: the last two path parts without the extension, joined by '-'
    assert default_prefix(Path("results/003-pgan-x/network-snapshot-000140.pt")) == \
        "003-pgan-x-network-snapshot-000140-"
    assert default_prefix(Path("celebahq.pt")) == "celebahq-"
    assert default_prefix(Path("/abs/nets/karras2018iclr-celebahq-1024x1024.pt")) == \
        "nets-karras2018iclr-celebahq-1024x1024-"


def test_cli_grids_names_shrink_and_the_official_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, Gs = _network(tmp_path)
    _run_cli(monkeypatch, "generate", str(path), "--num", "3", "--grid", "3x2", "--shrink", "2", "--seed", "9",
             "--out", str(tmp_path / "out"), "--quiet")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"{tmp_path.name}-n-00000{i}.png" for i in range(3)]  # official default prefix
    state = np.random.RandomState(9)
    for name in names:
        png = _png(tmp_path / "out" / name)
        assert png.shape == (2 * 8, 3 * 8, 3)  # 3 columns x 2 rows of 16 / 2
        expected = _official_grid(Gs, state.randn(6, Gs.latent_size).astype(np.float32), 3, 2, shrink=2, lod=1.0)
        assert np.abs(png.astype(int) - expected).max() <= 1 and np.mean(png == expected) > 0.99


def test_cli_same_seed_same_images_whatever_batch_size_or_count(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _network(tmp_path)
    runs = {"b1": ("--batch-size", "1", "--num", "4"), "b5": ("--batch-size", "5", "--num", "4"),
            "b5again": ("--batch-size", "5", "--num", "4"), "n2": ("--batch-size", "3", "--num", "2")}
    for name, extra in runs.items():
        _run_cli(monkeypatch, "generate", str(path), "--grid", "2x2", "--prefix", "", *extra,
                 "--out", str(tmp_path / name), "--raw", str(tmp_path / f"{name}.npy"), "-q")
    raws = {name: np.load(tmp_path / f"{name}.npy") for name in runs}
    assert raws["b1"].shape == (16, 3, 16, 16) and raws["n2"].shape == (8, 3, 16, 16)
    np.testing.assert_allclose(raws["b1"], raws["b5"], atol=1e-5)  # float rounding of another batch shape only
    np.testing.assert_allclose(raws["n2"], raws["b5"][:8], atol=1e-5)
    assert np.array_equal(raws["b5"], raws["b5again"])
    for index in range(4):
        name = f"{index:06d}.png"
        assert (tmp_path / "b5" / name).read_bytes() == (tmp_path / "b5again" / name).read_bytes()
        assert np.abs(_png(tmp_path / "b1" / name).astype(int) - _png(tmp_path / "b5" / name)).max() <= 1
    assert sorted(p.name for p in (tmp_path / "n2").iterdir()) == ["000000.png", "000001.png"]


def test_cli_labels_by_class_index_cycle_over_the_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, Gs = _network(tmp_path, label_size=2)
    _run_cli(monkeypatch, "generate", str(path), "--num", "2", "--grid", "3x1", "--labels", "1,0",
             "--prefix", "p", "--raw", str(tmp_path / "raw.npy"), "-q")
    labels = np.eye(2, dtype=np.float32)[[1, 0, 1, 0, 1, 0]]  # image i gets class [1, 0][i mod 2]
    expected = generate_images(Gs, random_latents(6, Gs.latent_size, 1000), labels, lod=1.0)
    np.testing.assert_allclose(np.load(tmp_path / "raw.npy"), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["r32_released", "r32_gray", "r64_labels"])
def test_cli_on_imported_networks_matches_the_original_outputs(name: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pgtrain.test_import_tf import _import_config, fixture_inputs_as_files

    path = _import_config(name, tmp_path)[0].path
    data, extra = fixture_inputs_as_files(name, tmp_path)
    _run_cli(monkeypatch, "generate", str(path), "--latents", str(tmp_path / "z.npy"), *extra, "--prefix", "",
             "--raw", str(tmp_path / "raw.npy"), "--out", str(tmp_path / "pngs"), "-q")
    recorded = data["Gs_images"][list(data["lods"]).index(0.0)]  # the TF network's own output at its lod 0
    np.testing.assert_allclose(np.load(tmp_path / "raw.npy"), recorded, atol=1e-4)
    for index, image in enumerate(images_to_uint8(recorded)):
        png = _png(tmp_path / "pngs" / f"{index:06d}.png")
        official = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        assert png.shape == official.shape and np.abs(png.astype(int) - official).max() <= 1


def test_cli_generate_refuses_bad_input_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    path, Gs = _network(tmp_path)
    out = str(tmp_path / "out")
    cases = {"--num must be positive": ["--num", "0", "--out", out],
             "--grid must be WxH": ["--num", "1", "--grid", "3", "--out", out],
             "--shrink 3: must be a divisor": ["--num", "1", "--shrink", "3", "--out", out],
             "--seed: seed must be in [0, 2**32 - 1]": ["--num", "1", "--seed", "-1", "--out", out],
             "not conditioned": ["--num", "1", "--labels", "0", "--out", out],
             "cannot read latents": ["--latents", str(tmp_path / "none.npy"), "--out", out],
             "not a torch device": ["--num", "1", "--device", "gpu0", "--out", out]}
    if not torch.cuda.is_available():
        cases["CUDA is not available here"] = ["--num", "1", "--device", "cuda", "--out", out]
    for expected, argv in cases.items():
        assert expected in _cli_error(monkeypatch, capsys, "generate", str(path), *argv)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    np.save(tmp_path / "z5.npy", np.zeros((5, Gs.latent_size), np.float32))
    assert "do not fill whole 4-image grids" in _cli_error(
        monkeypatch, capsys, "generate", str(path), "--latents", str(tmp_path / "z5.npy"), "--grid", "2x2",
        "--out", out)
    labelled, _ = _network(tmp_path / "labelled", label_size=2)
    assert "class 2 is out of range" in _cli_error(monkeypatch, capsys, "generate", str(labelled), "--num", "1",
                                                   "--labels", "0,2", "--out", out)


def test_cli_generate_never_replaces_files_unasked_and_leaves_no_partial_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    path, _ = _network(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "000001.png").write_bytes(b"someone else's")
    message = _cli_error(monkeypatch, capsys, "generate", str(path), "--num", "2", "--prefix", "", "--out", str(out))
    assert "000001.png: already exists" in message
    assert sorted(p.name for p in out.iterdir()) == ["000001.png"]  # checked before any work
    assert (out / "000001.png").read_bytes() == b"someone else's"
    _run_cli(monkeypatch, "generate", str(path), "--num", "2", "--prefix", "", "--out", str(out), "--overwrite", "-q")
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png"]
    (tmp_path / "a-file").write_text("x")  # an output folder that cannot exist: one line, nothing written
    message = _cli_error(monkeypatch, capsys, "generate", str(path), "--num", "1",
                         "--raw", str(tmp_path / "a-file" / "raw.npy"))
    assert f"{tmp_path / 'a-file'}: not a folder" in message


def test_a_write_error_becomes_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    import errno

    from pgtrain.errors import PgtrainError
    from pgtrain.outputs import atomic_output

    with pytest.raises(PgtrainError, match=r"out.npy: cannot write \(No space left on device\)"):
        with atomic_output(tmp_path / "out.npy") as temporary:
            temporary.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(tmp_path / "out.npy") as temporary:
        temporary.write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["out.npy"] and (tmp_path / "out.npy").read_bytes() == b"whole"
