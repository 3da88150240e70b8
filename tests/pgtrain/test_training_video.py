"""The training video: the official log parsing, frame choice over wall-clock time, 1080p fitting and labels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pgdata.progress import format_time
from pgtrain.errors import PgtrainError
from pgtrain.training_video import (
    Tick,
    draw_labels,
    fit_1080p,
    frame_ticks,
    label_texts,
    parse_tick_line,
    read_ticks,
    training_frames,
)


def _tick_line(tick: int, kimg: float, lod: float, seconds: float) -> str:
    """A tick line as pgtrain's loop (maintenance) writes it."""
    return (f"tick {tick:<5d} kimg {kimg:<8.1f} lod {lod:<5.2f} minibatch {16:<4d} time {format_time(seconds):<12s} "
            f"sec/tick {1.0:<7.1f} sec/kimg {1.0:<7.2f} maintenance 0.1")


def _run_dir(tmp_path: Path, ticks: list[tuple[float, float, float]], missing: tuple[int, ...] = (),
             size: tuple[int, int] = (64, 32)) -> Path:
    """A run directory whose fakes grid for kimg k is filled with the value 10 k + 5."""
    lines = ["dataset: tiny", "TensorBoard: not installed"]
    for index, (kimg, lod, seconds) in enumerate(ticks, start=1):
        lines.append(_tick_line(index, kimg, lod, seconds))
        if int(kimg) not in missing:
            grid = np.full((size[1], size[0], 3), 10 * int(kimg) + 5, np.uint8)
            Image.fromarray(grid).save(tmp_path / f"fakes{int(kimg):06d}.png")
    (tmp_path / "log.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_tick_lines_ours_and_the_officials_parse() -> None:
    assert parse_tick_line(_tick_line(12, 1234.5, 3.25, 93784)) == (93780, 1234.5, 3.25)  # 1d 02h 03m
    assert parse_tick_line(_tick_line(3, 0.1, 2.0, 185)) == (185, 0.1, 2.0)  # 3m 05s
    official = ("tick 27    kimg 4236.2   lod 3.00  minibatch 128  time 2h 04m 06s     sec/tick 273.4   "
                "sec/kimg 1.95    maintenance 5.9")
    assert parse_tick_line(official) == (7446, 4236.2, 3.0)
    assert parse_tick_line("Loading dataset...") is None and parse_tick_line("kimg 3 lod 2.0") is None


def test_frames_follow_the_official_time_warp(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, [(0.0, 3.0, 0), (1.2, 2.5, 0), (2.4, 2.0, 400), (3.6, 1.5, 900), (4.8, 1.0, 1600),
                                  (5.2, 1.0, 2000)], missing=(5,))
    ticks = read_ticks(run_dir)
    assert [t.kimg for t in ticks] == [0.0, 1.2, 2.4, 3.6, 4.8]  # a tick without its fakes PNG is skipped
    assert ticks[1].png == run_dir / "fakes000001.png"  # floor(kimg), as the official names them
    duration, warp, fps = 2.0, 1.5, 10
    chosen = list(frame_ticks(ticks, duration, warp, fps))
    assert len(chosen) == 20
    times = [0, 0, 400, 900, 1600]
    for frame, (tick, wallclock) in enumerate(chosen):
        expected_clock = ((frame / fps) / duration) ** warp * 1600
        assert wallclock == pytest.approx(expected_clock)
        assert tick.seconds == max(t for t in times if t <= expected_clock)  # last grid logged by then
    assert chosen[0][0].kimg == 1.2  # of two grids logged at the same time, the later one
    assert chosen[-1][0].kimg == 3.6  # (19/20)^1.5 x 1600 = 1482 s: the last grid is never reached


def test_grids_over_1080p_are_halved_by_truncated_means() -> None:
    image = np.zeros((2160, 4096, 3), np.uint8)
    image[0, 0], image[0, 1], image[1, 0], image[1, 1] = 1, 2, 2, 2  # mean 1.75: truncated to 1 as moviepy cast
    fitted = fit_1080p(image)
    assert fitted.shape == (540, 1024, 3) and fitted.dtype == np.uint8  # 4096 -> 2048 -> 1024; 2160 -> 540
    small = np.full((1080, 1920, 3), 7, np.uint8)
    assert fit_1080p(small) is small
    image = np.full((1088, 1024, 3), 0, np.uint8)
    image[:2, :2] = [[[1] * 3, [2] * 3], [[2] * 3, [2] * 3]]
    assert fit_1080p(image)[0, 0, 0] == 1 and fit_1080p(image).shape == (544, 512, 3)


def test_labels_are_the_official_texts_drawn_at_the_bottom() -> None:
    tick = Tick(seconds=0, kimg=1234.56, lod=2.5, png=Path("x.png"))
    assert label_texts(tick, 3725.4) == ("lod 2.50", "1h 02m 05s", "1235 kimg")
    frame = np.full((400, 600, 3), 90, np.uint8)
    drawn = draw_labels(frame, label_texts(tick, 3725.4))
    changed = np.argwhere((drawn != frame).any(axis=2))
    assert changed[:, 0].min() > 400 - 60 and changed[:, 0].max() <= 400 - 4  # along the bottom, 4 px margin
    columns = changed[:, 1]
    assert columns.min() >= 14 and columns.max() <= 600 - 14  # 16 px from the sides (outline 2 px)
    assert ((columns > 250) & (columns < 350)).any()  # the time, centred
    assert np.array_equal(drawn[:300], frame[:300]) and (drawn == 255).any() and (drawn == 0).any()


def test_training_frames_hold_one_size(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path, [(0.0, 1.0, 0), (1.0, 0.0, 5), (2.0, 0.0, 10)])
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(run_dir / "fakes000001.png")
    with pytest.raises(PgtrainError, match="fakes000001.png: 16x16 after fitting, but the video is 64x32"):
        list(training_frames(frame_ticks(read_ticks(run_dir), 1.0, 1.0, 10)))


def _run_cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    from pgtrain.cli import main

    monkeypatch.setattr(sys, "argv", ["pgtrain", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)


def _decode(path: Path) -> list[np.ndarray]:
    import av  # imported here: the GPU image that runs `pytest -m gpu` has no PyAV

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_command_on_a_tiny_training_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pgtrain.test_loop import tiny_trainer

    run_dir = tmp_path / "000-pgan-tiny"
    run_dir.mkdir()
    assert tiny_trainer(run_dir, overrides=["train.image_snapshot_ticks=1"]).run() is True
    out = tmp_path / "training.mp4"
    _run_cli(monkeypatch, "training-video", str(run_dir), "--duration", "0.2", "--fps", "30", "--out", str(out),
             "-q")
    frames = _decode(out)
    grid = np.asarray(Image.open(run_dir / "fakes000000.png").convert("RGB"))
    assert len(frames) == 6 and frames[0].shape == grid.shape == (512, 512, 3)  # 32 x 32 cells of 16 x 16
    def cell_means(image: np.ndarray) -> np.ndarray:  # 4:2:0 chroma blurs the noise grids' single pixels
        return image[:448].astype(float).reshape(28, 16, 32, 16, 3).mean(axis=(1, 3))

    assert np.abs(cell_means(frames[-1]) - cell_means(grid)).mean() < 4  # the grid; the labels are lower


def test_command_refuses_bad_input_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    from pgtrain.cli import main

    no_fakes = tmp_path / "no-fakes"
    no_fakes.mkdir()
    (no_fakes / "log.txt").write_text(_tick_line(1, 0.0, 1.0, 5) + "\n")
    cases = {"no tick line of log.txt has its fakesNNNNNN.png": [str(no_fakes)],
             "cannot read the run's log": [str(tmp_path)],
             "no such run directory": [str(tmp_path / "missing")],
             "--time-warp must be positive": [str(no_fakes), "--time-warp", "0"],
             "unknown video encoder": [str(no_fakes), "--codec", "h999"]}
    for expected, argv in cases.items():
        monkeypatch.setattr(sys, "argv", ["pgtrain", "training-video", *argv, "--out", str(tmp_path / "t.mp4")])
        with pytest.raises(SystemExit) as exit_info:
            main()
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 1 and len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "t.mp4").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["no-fakes"]
