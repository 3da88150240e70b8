"""`pgtrain bench`: the schedule projection by hand, what is measured, the CLI's JSON and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pgtrain import bench
from pgtrain.errors import PgtrainError
from pgtrain.flops import iteration_flops
from pgtrain.presets import resolve_config
from tests.pgtrain.test_flops import DispatchedFlops
from tests.pgtrain.test_loop import TINY, tiny_reader, tiny_trainer
from tests.pgtrain.test_training_cli import TinySource, _invoke

TINY_NETWORKS = [item for item in TINY if item.startswith(("G.", "D."))]
QUICK = ["--device", "cpu", "--kimg-per-level", "0.001", "--warmup-steps", "1", "--min-steps", "2"]


def _sets(settings):
    return [arg for item in settings for arg in ("--set", item)]


def test_kimg_per_resolution_of_v2_1gpu_by_hand():
    # 600 kimg stable at 4x4; each later resolution a 600-kimg fade-in plus 600 stable; 1024x1024 fades in at
    # 9000 kimg and trains until 12000: 600 + 2400.
    sched = resolve_config(["v2-1gpu"]).sched
    expected = {4: 600.0, **{2**k: 1200.0 for k in range(3, 10)}, 1024: 3000.0}
    assert bench.kimg_per_resolution(sched, 10, 12000) == expected


@pytest.mark.parametrize("presets, total, expected", [
    (["v1-1gpu"], 19000, {4: 800.0, **{2**k: 1600.0 for k in range(3, 10)}, 1024: 7000.0}),
    (["BENCHMARK"], 51, {4: 3.0, **{2**k: 6.0 for k in range(3, 11)}}),
    (["nogrowing"], 10000, {1024: 10000.0}),
    (["v2-1gpu"], 1000, {4: 600.0, 8: 400.0}),  # stops inside the first fade-in
])
def test_kimg_per_resolution_of_other_schedules_by_hand(presets, total, expected):
    assert bench.kimg_per_resolution(resolve_config(presets).sched, 10, total) == expected


def test_projection_is_the_sum_of_kimg_times_sec_per_kimg():
    kimg = {4: 600.0, 8: 1200.0, 16: 1200.0}
    projection = bench.project(kimg, {4: 1.0, 8: 2.0, 16: 3.0})
    assert projection.complete and projection.hours == pytest.approx((600 + 2400 + 3600) / 3600)
    partial = bench.project(kimg, {4: 1.0, 8: 2.0})
    assert not partial.complete and partial.seconds == {4: 600.0, 8: 2400.0}


def test_levels_measured_per_mode():
    sched = resolve_config(["v2-1gpu"]).sched
    assert bench.bench_resolutions(sched, 10, "BENCHMARK", None) == [2**k for k in range(2, 11)]
    assert bench.bench_resolutions(sched, 10, "BENCHMARK", 32) == [4, 8, 16, 32]
    assert bench.bench_resolutions(sched, 10, "BENCHMARK0", None) == [1024]
    assert bench.split_mode(["v2-1gpu", "BENCHMARK0", "fp16"]) == (["v2-1gpu", "fp16"], "BENCHMARK0")
    assert bench.split_mode(["fp16"]) == (["fp16"], "BENCHMARK")
    with pytest.raises(PgtrainError, match="not both"):
        bench.split_mode(["BENCHMARK", "BENCHMARK0"])


def test_each_level_is_measured_at_its_stable_lod_with_the_schedules_minibatch():
    config = resolve_config(["v2-1gpu", "fp32"])
    points = {r: bench.stable_point(r, 10, config) for r in (4, 64, 256, 1024)}
    assert {r: (p.lod, p.resolution, p.minibatch) for r, p in points.items()} == {
        4: (8.0, 4, 128), 64: (4.0, 64, 32), 256: (2.0, 256, 8), 1024: (0.0, 1024, 4)}
    assert points[1024].G_lrate == 0.0015


def test_bare_passes_compute_the_same_flops_as_the_trainer_step():
    trainer = tiny_trainer(presets=["cond"], reader=tiny_reader(labels=True))
    sched = bench.stable_point(8, trainer.resolution_log2, trainer.config)
    trainer.data.configure(8, sched.minibatch)
    with DispatchedFlops() as real:
        bench.trainer_iteration(trainer, sched)()
    with DispatchedFlops() as bare:
        bench.bare_iteration(trainer, sched)()
    expected = iteration_flops(trainer.G, trainer.D, sched.lod).per_iteration(sched.minibatch)
    assert real.total == bare.total == expected
    assert all(p.requires_grad for p in trainer.D.parameters())  # the G pass gives D its gradients back


def test_cli_json_on_a_tiny_cpu_configuration(tmp_path):
    path = tmp_path / "bench.json"
    result = _invoke(["bench", "--resolution", "16", *QUICK, "--peak-tflops", "1", "--json", str(path),
                      *_sets(TINY_NETWORKS + ["sched.minibatch_dict={}", "sched.minibatch_base=4"])])
    assert result.exit_code == 0, result.output
    report = json.loads(path.read_text())
    assert [level["resolution"] for level in report["resolutions"]] == [4, 8, 16]
    for level in report["resolutions"]:
        for key in ("minibatch", "images_per_s", "sec_per_kimg", "peak_mem_bytes", "loader_images_per_s", "tflops",
                    "peak_fraction", "bare_images_per_s", "trainer_over_bare"):
            assert level[key] > 0, key
        assert level["sec_per_kimg"] == pytest.approx(1000 / level["images_per_s"])
    assert report["projected_hours"] > 0 and report["projection_complete"]
    assert report["schedule_kimg_per_resolution"] == {"4": 600.0, "8": 1200.0, "16": 10200.0}
    assert report["device"] == "cpu" and report["precision"] == "fp32" and report["torch_version"]
    assert "16x16" in result.output and "Projected wall time" in result.output
    assert not [p for p in tmp_path.iterdir() if p.name != "bench.json"]  # no temporary left


def test_cli_benchmark0_measures_the_full_resolution_only_and_projects_part_of_the_schedule(tmp_path):
    path = tmp_path / "bench.json"
    result = _invoke(["bench", "--preset", "BENCHMARK0", "--resolution", "8", *QUICK, "--no-bare",
                      "--json", str(path), *_sets(TINY_NETWORKS)])
    assert result.exit_code == 0, result.output
    report = json.loads(path.read_text())
    assert [level["resolution"] for level in report["resolutions"]] == [8]
    level = report["resolutions"][0]
    assert level["trainer_over_bare"] is None and level["peak_fraction"] is None  # --no-bare; no peak on a CPU
    assert report["peak_tflops"] is None and report["peak_basis"].startswith("unknown")
    assert not report["projection_complete"] and report["projected_hours"] > 0
    assert "measured levels only" in result.output


def test_a_multi_gpu_configuration_measures_one_devices_share(tmp_path):
    path = tmp_path / "bench.json"
    result = _invoke(["bench", "--preset", "v2-2gpus", "--resolution", "4", *QUICK, "--no-bare", "--json",
                      str(path), *_sets(TINY_NETWORKS + ["sched.minibatch_dict={}", "sched.minibatch_base=8"])])
    assert result.exit_code == 0, result.output
    level = json.loads(path.read_text())["resolutions"][0]
    assert (level["minibatch"], level["minibatch_per_device"]) == (8, 4)


def test_the_trainer_steps_one_devices_share_of_a_multi_gpu_minibatch():
    trainer = tiny_trainer(presets=["v2-2gpus"], overrides=["allow_gpu_count_mismatch=true"])  # minibatch 4
    seen = []
    for name in ("discriminator_step", "generator_step"):
        step = getattr(trainer, name)
        setattr(trainer, name, lambda sched, step=step: seen.append(sched.minibatch) or step(sched))
    info = bench.DeviceInfo("cpu", "cpu", None, "unknown")
    level = bench.measure_level(trainer, 8, bench.BenchSettings(0.001, 1, 2, False), info, lambda line: None)
    assert set(seen) == {2} and trainer.data.minibatch == 2
    assert (level.minibatch, level.minibatch_per_device) == (4, 2)
    assert level.flops_per_iteration == iteration_flops(trainer.G, trainer.D, 1.0).per_iteration(2)


def test_an_existing_json_file_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text("mine")
    result = _invoke(["bench", "--resolution", "4", *QUICK, "--json", str(path), *_sets(TINY_NETWORKS)])
    assert isinstance(result.exception, PgtrainError) and "already exists" in str(result.exception)
    assert path.read_text() == "mine"


@pytest.mark.parametrize("args, message", [
    (["--preset", "v9-1gpu"], "no preset named 'v9-1gpu'"),
    (["--resolution", "48"], "--resolution 48: not a power of two >= 4"),
    (["--resolution", "2"], "--resolution 2: not a power of two >= 4"),
    (["--resolution", "32", "--data", "{data}"], "--resolution 32: larger than the dataset's 16x16"),
    (["--resolution", "4", "--preset", "fp16"], "fp16 needs a CUDA device"),
    (["--resolution", "4", "--kimg-per-level", "0"], "--kimg-per-level must be > 0"),
])
def test_bad_input_is_a_user_error(args, message, tmp_path):
    if "{data}" in args:
        from pgdata.exporter import export_dataset

        data = export_dataset(TinySource(), tmp_path / "tiny", command="test", arguments={}, quiet=True)
        args = [str(data) if arg == "{data}" else arg for arg in args]
    result = _invoke(["bench", "--device", "cpu", *args, *_sets(TINY_NETWORKS)])
    assert isinstance(result.exception, PgtrainError), result.output
    assert message in str(result.exception)


def test_console_error_is_one_line_with_exit_status_1():
    process = subprocess.run([sys.executable, "-c", "from pgtrain.cli import main; main()", "bench",
                              "--resolution", "48"], capture_output=True, text=True, timeout=120)
    assert process.returncode == 1
    assert process.stderr == "pgtrain: error: --resolution 48: not a power of two >= 4\n"
