"""Videos: the official interpolation latents, frames, MP4 encoding (decoded back), interpolation, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage
import torch
from PIL import Image

from pgtrain.checkpoint import save_snapshot
from pgtrain.errors import PgtrainError
from pgtrain.frames import grid_frame, gs_frames
from pgtrain.generate import gs_output_to_uint8
from pgtrain.latents import interpolation_path, lerp, num_video_frames, seed_latent, slerp, smoothed_latents
from pgtrain.networks import Discriminator, Generator
from pgtrain.video import Mp4Writer, parse_bitrate, write_mp4
from tests.pgtrain.test_generate import _cli_error, _run_cli
from tests.pgtrain.test_import_tf import _import_config


def _decode(path: Path) -> tuple[list[np.ndarray], str]:
    """Every frame of an MP4 as H x W x 3 uint8, and the codec name, read back with PyAV."""
    import av  # imported here: the GPU image that runs `pytest -m gpu` has no PyAV

    with av.open(str(path)) as container:
        codec = container.streams.video[0].codec_context.name
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)], codec


def _network(tmp_path: Path, num_channels: int = 3, label_size: int = 0) -> tuple[Path, Generator]:
    torch.manual_seed(0)
    kwargs = {"num_channels": num_channels, "resolution": 16, "fmap_base": 32, "fmap_max": 8,
              "label_size": label_size}
    G, D, Gs = Generator(**kwargs), Discriminator(**kwargs), Generator(**kwargs)
    path = save_snapshot(tmp_path / "n.pt", network_kwargs={"G": kwargs, "D": kwargs}, G_state=G.state_dict(),
                         D_state=D.state_dict(), Gs_state=Gs.state_dict())
    return path, Gs.eval()


def _imported(name: str, tmp_path: Path) -> tuple[Path, Generator]:
    snapshot, (_, _, Gs) = _import_config(name, tmp_path)
    return snapshot.path, Gs.eval()


def _official_frames(Gs: Generator, latents: np.ndarray, columns: int, rows: int, zoom: float = 1.0,
                     labels: np.ndarray | None = None) -> list[np.ndarray]:
    """The official make_frame written out: Gs, uint8, create_image_grid, scipy zoom order 0, grey -> RGB."""
    frames = []
    for frame_latents in latents:
        with torch.no_grad():
            images = Gs(torch.from_numpy(frame_latents), None if labels is None else torch.from_numpy(labels))
        cells = np.rint(images.numpy() * np.float32(127.5) + np.float32(127.5)).clip(0, 255).astype(np.uint8)
        n, c, h, w = cells.shape
        grid = np.zeros((c, rows * h, columns * w), np.uint8)
        for index in range(n):
            grid[:, (index // columns) * h:(index // columns + 1) * h, (index % columns) * w:(index % columns + 1) * w] \
                = cells[index]
        grid = grid.transpose(1, 2, 0)
        if zoom > 1:
            grid = scipy.ndimage.zoom(grid, [zoom, zoom, 1], order=0)
        frames.append(grid.repeat(3, 2) if grid.shape[2] == 1 else grid)
    return frames


# -- the official interpolation latents -------------------------------------------------------------------------


def test_smoothed_latents_are_the_official_formula() -> None:
    frames, cells, latent, fps, smoothing = 12, 3, 5, 10, 0.3
    official = np.random.RandomState(1000).randn(frames, cells, latent).astype(np.float32)
    official = scipy.ndimage.gaussian_filter(official, [smoothing * fps] + [0] * 2, mode="wrap")
    official /= np.sqrt(np.mean(np.square(official)))
    assert np.array_equal(smoothed_latents(1000, frames, cells, latent, smoothing * fps), official)


def test_smoothing_is_a_circular_gaussian_over_time_only() -> None:
    # independent of scipy: a wrapped convolution with scipy's kernel (radius int(4 sigma + 0.5), normalised)
    frames, sigma = 16, 2.0
    raw = np.random.RandomState(3).randn(frames, 2, 4).astype(np.float32).astype(np.float64)
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    smooth = sum(weight * np.roll(raw, -offset, axis=0) for offset, weight in zip(offsets, kernel, strict=True))
    smooth /= np.sqrt(np.mean(smooth**2))
    np.testing.assert_allclose(smoothed_latents(3, frames, 2, 4, sigma), smooth, atol=2e-6)
    unsmoothed = smoothed_latents(3, frames, 2, 4, 0.0)  # sigma 0: the draws, renormalised
    np.testing.assert_allclose(unsmoothed, raw / np.sqrt(np.mean(raw**2)), atol=1e-6)


def test_frame_count_is_rint_of_duration_times_fps() -> None:
    assert num_video_frames(60.0, 30) == 1800 and num_video_frames(0.2, 30) == 6
    assert num_video_frames(0.25, 10) == 2 and num_video_frames(0.35, 10) == 4  # half to even, as np.rint


def test_lerp_and_slerp() -> None:
    start, end = seed_latent(1, 16), seed_latent(2, 16)
    assert np.array_equal(seed_latent(1, 16), np.random.RandomState(1).randn(1, 16).astype(np.float32)[0])
    path = interpolation_path(start, end, 5)
    assert path.shape == (5, 16) and np.array_equal(path[0], start) and np.allclose(path[-1], end, atol=1e-6)
    np.testing.assert_allclose(path[2], (start + end) / 2, atol=1e-6)
    unit_a, unit_b = start / np.linalg.norm(start), end / np.linalg.norm(end)
    angle = np.arccos(np.dot(unit_a, unit_b))
    for t in (0.25, 0.5):
        mixed = slerp(unit_a, unit_b, t)
        np.testing.assert_allclose(np.linalg.norm(mixed), 1.0, atol=1e-6)  # stays on the sphere
        np.testing.assert_allclose(np.arccos(np.clip(np.dot(mixed, unit_a), -1, 1)), t * angle, atol=1e-5)
    np.testing.assert_allclose(slerp(start, 2 * start, 0.5), lerp(start, 2 * start, 0.5))  # parallel: lerp
    with pytest.raises(ValueError, match="at least 2"):
        interpolation_path(start, end, 1)


# -- frames --------------------------------------------------------------------------------------------------------


def test_grid_frame_zooms_as_scipy_and_makes_grey_rgb() -> None:
    images = np.random.default_rng(0).integers(0, 256, (6, 1, 4, 4), dtype=np.uint8)
    frame = grid_frame(images, 3, 2, zoom=3)
    assert frame.shape == (24, 36, 3) and np.array_equal(frame[..., 0], frame[..., 2])
    grid = np.zeros((8, 12, 1), np.uint8)
    for index, image in enumerate(images):
        grid[(index // 3) * 4:(index // 3) * 4 + 4, (index % 3) * 4:(index % 3) * 4 + 4, 0] = image[0]
    assert np.array_equal(frame[..., :1], scipy.ndimage.zoom(grid, [3, 3, 1], order=0))
    assert np.array_equal(grid_frame(images, 3, 2, zoom=2)[..., 0], grid[..., 0].repeat(2, 0).repeat(2, 1))


def test_gs_frames_follow_the_official_make_frame_whatever_the_batch(tmp_path: Path) -> None:
    _, Gs = _network(tmp_path, num_channels=1)
    latents = smoothed_latents(5, 7, 4, Gs.latent_size, 2.0)
    expected = _official_frames(Gs, latents, 2, 2, zoom=2)
    for batch_size in (1, 5, 64):
        frames = list(gs_frames(Gs, ((z, None) for z in latents), lod=0.0, columns=2, rows=2, zoom=2,
                                batch_size=batch_size))
        assert len(frames) == 7
        assert all(f.shape == (64, 64, 3) and np.abs(f.astype(int) - e).max() <= 1
                   for f, e in zip(frames, expected, strict=True))
    shrunk = next(gs_frames(Gs, [(latents[0], None)], lod=0.0, columns=2, rows=2, shrink=4))
    with torch.no_grad():
        pooled = gs_output_to_uint8(Gs(torch.from_numpy(latents[0])).numpy(), 4)
    assert shrunk.shape == (8, 8, 3) and np.array_equal(shrunk[:4, 4:, 0], pooled[1, 0])


# -- MP4 encoding ----------------------------------------------------------------------------------------------------


def _ramp(count: int, height: int, width: int) -> list[np.ndarray]:
    return [np.full((height, width, 3), 30 * index, np.uint8) for index in range(count)]


def test_mp4_round_trip_h264_and_h265(tmp_path: Path) -> None:
    for codec, decoded_name in (("libx264", "h264"), ("libx265", "hevc")):
        info = write_mp4(tmp_path / f"{codec}.mp4", iter(_ramp(5, 64, 96)), fps=30, codec=codec)
        frames, name = _decode(tmp_path / f"{codec}.mp4")
        assert (info.frames, info.width, info.height) == (5, 96, 64) and name == decoded_name
        assert len(frames) == 5 and frames[0].shape == (64, 96, 3)
        assert [round(float(f.mean()) / 30) for f in frames] == [0, 1, 2, 3, 4]  # in order
    import av

    with av.open(str(tmp_path / "libx264.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p" and stream.average_rate == 30
    data = (tmp_path / "libx264.mp4").read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # index first: browsers play before the file has loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["libx264.mp4", "libx265.mp4"]  # no temporary left


def test_odd_frame_sizes_get_a_black_row_and_column(tmp_path: Path) -> None:
    info = write_mp4(tmp_path / "odd.mp4", iter(_ramp(2, 31, 45)), fps=10)
    frames, _ = _decode(tmp_path / "odd.mp4")
    assert (info.width, info.height) == (46, 32) and frames[1].shape == (32, 46, 3)
    assert frames[1][:, -1].mean() < 12 and frames[1][:30, :44].mean() > 20


def test_a_failed_encoding_leaves_no_file(tmp_path: Path) -> None:
    frames = _ramp(2, 32, 32) + [np.zeros((16, 16, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 2 is 16x16"):
        write_mp4(tmp_path / "v.mp4", iter(frames), fps=10)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PgtrainError, match="no frames"):
        write_mp4(tmp_path / "v.mp4", iter([]), fps=10)
    assert list(tmp_path.iterdir()) == []
    # refused before x265 sees them: its build in the PyAV wheels aborts the process on some small frames
    with pytest.raises(PgtrainError, match="libx265 needs frames of at least 64x64, these are 48x32"):
        write_mp4(tmp_path / "v.mp4", iter(_ramp(2, 32, 48)), fps=10, codec="libx265")
    assert list(tmp_path.iterdir()) == []


def test_encoder_problems_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PgtrainError, match="unknown video encoder 'nope'"):
        Mp4Writer(tmp_path / "v.mp4", 30, codec="nope")
    with pytest.raises(PgtrainError, match="not a video encoder"):
        Mp4Writer(tmp_path / "v.mp4", 30, codec="aac")
    with pytest.raises(ValueError, match="bitrate"):
        parse_bitrate("fast")
    assert parse_bitrate("16M") == 16_000_000 and parse_bitrate("800k") == 800_000
    monkeypatch.setitem(sys.modules, "av", None)  # PyAV not installed
    with pytest.raises(PgtrainError, match="needs PyAV, which is not installed: pip install av"):
        Mp4Writer(tmp_path / "v.mp4", 30)
    assert list(tmp_path.iterdir()) == []


# -- the commands ----------------------------------------------------------------------------------------------------


def test_video_command_on_an_imported_grey_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, Gs = _imported("r32_gray", tmp_path)
    out = tmp_path / "v.mp4"
    _run_cli(monkeypatch, "video", str(path), "--grid", "2x1", "--duration", "0.2", "--fps", "30", "--smoothing", "0.05", "--zoom", "2",
             "--seed", "3", "--out", str(out), "-q")
    frames, codec = _decode(out)
    assert codec == "h264" and len(frames) == 6 and frames[0].shape == (64, 128, 3)
    expected = _official_frames(Gs, smoothed_latents(3, 6, 2, Gs.latent_size, 1.5), 2, 1, zoom=2)
    errors = [np.abs(f.astype(float) - e).mean() for f, e in zip(frames, expected, strict=True)]
    others = [np.abs(frames[i].astype(float) - expected[(i + 3) % 6]).mean() for i in range(6)]
    assert max(errors) < 3 and max(errors) < min(others) / 4  # frame i is the official frame i (lossy H.264)


def test_video_command_labels_and_h265(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, Gs = _network(tmp_path, label_size=3)
    out = tmp_path / "v.mp4"
    _run_cli(monkeypatch, "video", str(path), "--grid", "3x1", "--duration", "0.1", "--fps", "20", "--labels", "2,0,1",
             "--zoom", "4", "--codec", "libx265", "--out", str(out), "-q")
    frames, codec = _decode(out)
    assert codec == "hevc" and len(frames) == 2 and frames[0].shape == (64, 192, 3)


def test_video_command_refuses_bad_input_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    path, _ = _network(tmp_path)
    out = str(tmp_path / "v.mp4")
    cases = {"unknown video encoder 'x999'": ["--codec", "x999"],
             "--grid must be WxH": ["--grid", "2by2"],
             "--duration must be positive": ["--duration", "0"],
             "makes no frame": ["--duration", "0.01", "--fps", "10"],
             "--shrink 3: must be a divisor": ["--shrink", "3"],
             "--bitrate": ["--bitrate", "lots"]}
    for expected, argv in cases.items():
        assert expected in _cli_error(monkeypatch, capsys, "video", str(path), "--duration", "0.1", *argv,
                                      "--out", out)
    assert "must be an .mp4" in _cli_error(monkeypatch, capsys, "video", str(path), "--out", str(tmp_path / "v.avi"))
    (tmp_path / "taken.mp4").write_bytes(b"not ours")
    assert "already exists" in _cli_error(monkeypatch, capsys, "video", str(path), "--out",
                                          str(tmp_path / "taken.mp4"))
    (tmp_path / "file").write_text("x")
    assert "not a folder" in _cli_error(monkeypatch, capsys, "video", str(path), "--duration", "0.1", "--out",
                                        str(tmp_path / "file" / "v.mp4"))
    monkeypatch.setitem(sys.modules, "av", None)
    assert "pip install av" in _cli_error(monkeypatch, capsys, "video", str(path), "--out", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "n.pt", "taken.mp4"]
    assert (tmp_path / "taken.mp4").read_bytes() == b"not ours"


def test_interpolate_strip_and_video(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, Gs = _network(tmp_path)
    _run_cli(monkeypatch, "interpolate", str(path), "--from", "1", "--to", "2", "--steps", "5", "--slerp",
             "--columns", "3", "--out", str(tmp_path / "strip.png"))
    strip = np.asarray(Image.open(tmp_path / "strip.png"))
    assert strip.shape == (2 * 16, 3 * 16, 3) and not strip[16:, 32:].any()  # 5 steps in rows of 3
    _run_cli(monkeypatch, "generate", str(path), "--num", "1", "--seed", "2", "--prefix", "", "--out",
             str(tmp_path / "g"), "-q")
    last = np.asarray(Image.open(tmp_path / "g" / "000000.png"))  # --to 2 is PNG 0 of generate --seed 2
    assert np.abs(strip[16:, 16:32].astype(int) - last).max() <= 1
    np.save(tmp_path / "a.npy", seed_latent(1, Gs.latent_size)[None])
    _run_cli(monkeypatch, "interpolate", str(path), "--from", str(tmp_path / "a.npy"), "--to", "2", "--steps", "4",
             "--zoom", "2", "--out", str(tmp_path / "walk.mp4"), "-q")
    frames, _ = _decode(tmp_path / "walk.mp4")
    assert len(frames) == 4 and frames[0].shape == (32, 32, 3)


def test_interpolate_refuses_bad_input_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    path, Gs = _network(tmp_path)
    out = str(tmp_path / "s.png")
    np.save(tmp_path / "wrong.npy", np.zeros(Gs.latent_size + 1, np.float32))
    cases = {"--steps must be at least 2": ["--from", "1", "--to", "2", "--steps", "1", "--out", out],
             "neither a seed nor a readable .npy": ["--from", "x.npy", "--to", "2", "--out", out],
             f"a latent must be [{Gs.latent_size}]": ["--from", str(tmp_path / "wrong.npy"), "--to", "2",
                                                      "--out", out],
             "must be an .mp4 video or a .png strip": ["--from", "1", "--to", "2", "--out", str(tmp_path / "s.gif")]}
    for expected, argv in cases.items():
        assert expected in _cli_error(monkeypatch, capsys, "interpolate", str(path), *argv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.pt", "wrong.npy"]


@pytest.mark.gpu
def test_cuda_frames_match_the_cpu(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from pgtrain.generate import generate_images, make_deterministic

    _, Gs = _imported("r32_released", tmp_path)
    make_deterministic("cuda")
    latents = smoothed_latents(1000, 8, 4, Gs.latent_size, 3.0).reshape(-1, Gs.latent_size)
    cpu = generate_images(Gs, latents, batch_size=8)
    cuda = generate_images(Gs.to("cuda"), latents, batch_size=8, device="cuda")
    np.testing.assert_allclose(cuda, cpu, atol=1e-4)
    again = generate_images(Gs, latents, batch_size=8, device="cuda")
    assert np.array_equal(cuda, again)  # deterministic on the device
