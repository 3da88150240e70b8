"""`make reproduce-celebahq`: the paper's CelebA-HQ experiment, from the downloads to the scores, in four stages.

  [1/4] dataset   pgdata create_celebahq OUT CELEBA DELTAS   (skipped when OUT verifies; --resume when OUT.partial
                  holds an interrupted build)
  [2/4] training  pgtrain run --preset v2-<N>gpu(s) --data OUT --run-dir RESULTS/pgan-<dataset>-<preset>
                  (a finished run is skipped; an unfinished one is resumed in place by pgtrain)
  [3/4] metrics   pgmetrics evaluate RUN_DIR with the official settings: SWD 16k (2 real passes), FID 50k,
                  MS-SSIM 20k (a command that finished before with the same options, and whose metric file lists
                  every snapshot, is skipped; FID is skipped with a note when no Inception weights are found,
                  unless asked for)
  [4/4] report    RUN_DIR/report.md: commands, stage times, final grid, metric tables and plots, the paper's numbers

The three tools are called through their command lines only (the venv's executables), so each stage is exactly
what a user would type. Killing this script at any stage and running it again finishes with the same result; a
second run after it finished does no work and says so. The stage record (commands, times, the dataset's
verification, the metric commands that finished) is kept beside the run directory in
RESULTS/pgan-<dataset>-<preset>[-cpu].reproduce.json. docs/reproduce.md has the details.

Example:
  .venv/bin/python tools/reproduce_celebahq.py --celeba ~/downloads/celeba --deltas ~/downloads/celeba-hq-deltas
  make reproduce-celebahq CELEBA=~/downloads/celeba DELTAS=~/downloads/celeba-hq-deltas GPUS=8 DRY_RUN=1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reproduce_report import write_report  # noqa: E402 - the sibling module, found through the line above

from pgdata.common.atomic import write_json  # noqa: E402
from pgdata.common.run_files import list_snapshots  # noqa: E402
from pgdata.progress import format_time  # noqa: E402
from pgmetrics.errors import PgmetricsError  # noqa: E402
from pgmetrics.evaluate import count_label  # noqa: E402
from pgmetrics.inception import find_weights  # noqa: E402

STAGES = 4
#: GPU count -> the official preset (config.py's v2 presets); 0 GPUs trains on the CPU with the 1-GPU preset.
GPU_PRESETS = {0: "v2-1gpu", 1: "v2-1gpu", 2: "v2-2gpus", 4: "v2-4gpus", 8: "v2-8gpus"}
DONE_MARKER = "_training-done.txt"
FINAL_SNAPSHOT = "network-final.pt"
#: Where pgmetrics looks for the TF-Inception weights when --inception-weights is not given (its documented order:
#: `pgmetrics evaluate --help`): $PGMETRICS_INCEPTION_WEIGHTS, then these names in $PGMETRICS_CACHE, else
#: $XDG_CACHE_HOME/pgmetrics, else ~/.cache/pgmetrics.


class ReproduceError(Exception):
    """A user error: one line on stderr, exit status 1."""


@dataclass(frozen=True)
class MetricJob:
    """One official metric configuration: the official config.py's metric-swd-16k (16384 images, two real
    passes), metric-fid-50k and metric-msssim-20k (10000 pairs), as its util_scripts.evaluate_metrics ran them."""

    metric: str
    num: int
    extra: tuple[str, ...] = ()


OFFICIAL_METRICS = (
    MetricJob("swd", 16384, ("--real-passes", "2")),
    MetricJob("fid", 50000),
    MetricJob("msssim", 20000),
)


@dataclass
class Plan:
    """Everything the stages need, resolved once from the command line."""

    celeba: Path
    deltas: Path
    out: Path
    results: Path
    gpus: int
    preset: str
    pgdata_args: list[str]
    pgtrain_args: list[str]
    pgmetrics_args: list[str]
    dry_run: bool
    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)

    @property
    def run_name(self) -> str:
        """Fixed by dataset and preset (and CPU), so that a rerun finds its run: pgan-celebahq-v2-4gpus."""
        return f"pgan-{self.out.name}-{self.preset}" + ("-cpu" if self.gpus == 0 else "")

    @property
    def run_dir(self) -> Path:
        return self.results / self.run_name

    @property
    def record_path(self) -> Path:
        return self.results / f"{self.run_name}.reproduce.json"

    def tool(self, name: str) -> str:
        """The venv's console script of a tool (pgdata, pgtrain, pgmetrics)."""
        path = self.bin_dir / name
        if not path.is_file():
            raise ReproduceError(f"{path}: not found (run `make install` first)")
        return str(path)


# --- the stage record ------------------------------------------------------------------------------------------


class Record:
    """The stages' commands, times and outcomes, kept beside the run directory (atomic JSON) so that the report
    shows the time a stage took even when a later run skipped it."""

    def __init__(self, path: Path, dry_run: bool):
        self.path, self.dry_run = path, dry_run
        self.content = self._read()

    def _read(self) -> dict:
        """The record as a previous run left it; anything malformed is dropped (it only saves work, and a stage
        that is not known to be done is run again)."""
        try:
            content = json.loads(self.path.read_text())
        except (OSError, ValueError):
            content = {}
        content = content if isinstance(content, dict) else {}
        stages = content.get("stages")
        content["stages"] = {k: v for k, v in stages.items() if isinstance(v, dict)} if isinstance(stages, dict) else {}
        done = content.get("metrics_done")
        content["metrics_done"] = [v for v in done if isinstance(v, str)] if isinstance(done, list) else []
        return content

    def save(self) -> None:
        if not self.dry_run:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, self.content)

    def stage(self, name: str, status: str, commands: list[list[str]], seconds: float | None, note: str = "") -> None:
        """Record one stage's outcome; a skip keeps the time of the run that did the work."""
        entry = self.content["stages"].get(name, {})
        if status == "skipped":
            entry.update(skipped_last=True, skip_reason=note)
        else:
            entry = {"status": status, "commands": [shlex.join(c) for c in commands], "seconds": seconds,
                     "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "skipped_last": False, "note": note}
        self.content["stages"][name] = entry
        self.save()


# --- running commands -------------------------------------------------------------------------------------------


class Console:
    """Stage progress lines with the elapsed time: "[2/4] training (1m 05s): ..."."""

    def __init__(self, echo: Callable[[str], None] = print):
        self.start = time.time()
        self.echo = echo

    def say(self, number: int, stage: str, text: str) -> None:
        self.echo(f"[{number}/{STAGES}] {stage} ({format_time(time.time() - self.start)}): {text}")


def run_command(command: list[str]) -> int:
    """Run a tool in the foreground (its output streams through); Ctrl-C reaches it too, and is waited for, so
    that pgtrain can save its snapshot before this script stops."""
    sys.stdout.flush()
    process = subprocess.Popen(command)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.wait()
        raise


def check_status(command: list[str], status: int) -> None:
    if status != 0:
        raise ReproduceError(f"{Path(command[0]).name} {command[1]} failed (exit status {status}): see its message "
                             "above; run this again to continue from where it stopped")


# --- stage 1: the dataset ---------------------------------------------------------------------------------------


def dataset_fingerprint(out: Path) -> dict:
    """The manifest's sha256 and every file's size and mtime: a verified dataset whose files all still have
    these was verified as it is now (pgdata's own --resume trusts the same facts)."""
    manifest = out / "manifest.json"
    files = {str(p.relative_to(out)): [p.stat().st_size, p.stat().st_mtime_ns]
             for p in sorted(out.rglob("*")) if p.is_file()}
    return {"path": str(out.resolve()), "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
            "files": files}


def dataset_commands(plan: Plan) -> list[list[str]]:
    create = [plan.tool("pgdata"), "create_celebahq", str(plan.out), str(plan.celeba), str(plan.deltas)]
    if partial_build(plan.out).is_dir():
        create.append("--resume")
    return [create + plan.pgdata_args]


def partial_build(out: Path) -> Path:
    """Where pgdata builds OUT (docs/pgshards.md "Building"): an interrupted build is resumed from there."""
    return out.with_name(out.name + ".partial")


def stage_dataset(plan: Plan, record: Record, console: Console) -> bool:
    """Build OUT unless it verifies; returns whether any work was done."""
    manifest = plan.out / "manifest.json"
    if manifest.is_file():
        fingerprint = dataset_fingerprint(plan.out)
        if record.content.get("dataset_verified") == fingerprint:
            console.say(1, "dataset", f"skipped: {plan.out} verified earlier and no file has changed since")
            record.stage("dataset", "skipped", [], None, "verified earlier, unchanged")
            return False
        verify = [plan.tool("pgdata"), "verify", str(plan.out), "--quiet"]
        console.say(1, "dataset", shlex.join(verify) + ("  (dry run: not run)" if plan.dry_run else ""))
        if plan.dry_run:
            console.say(1, "dataset", "if it verifies: skipped; else: " + shlex.join(dataset_commands(plan)[0]))
            return False
        if run_command(verify) == 0:
            record.content["dataset_verified"] = dataset_fingerprint(plan.out)
            record.stage("dataset", "skipped", [], None, "verified")
            console.say(1, "dataset", f"skipped: {plan.out} is complete and verifies")
            return False
        console.say(1, "dataset", f"{plan.out} does not verify (above): pgdata decides (it replaces a dataset "
                    "only with --overwrite in PGDATA_ARGS)")
    commands = dataset_commands(plan)
    resumed = "--resume" in commands[0]
    console.say(1, "dataset", ("resuming the interrupted build: " if resumed else "") + shlex.join(commands[0]))
    if plan.dry_run:
        return True
    started = time.time()
    check_status(commands[0], run_command(commands[0]))
    record.content["dataset_verified"] = dataset_fingerprint(plan.out)  # just written and checked by pgdata
    record.stage("dataset", "resumed" if resumed else "built", commands, time.time() - started)
    console.say(1, "dataset", f"done in {format_time(time.time() - started)}")
    return True


# --- stage 2: training ------------------------------------------------------------------------------------------


def training_finished(run_dir: Path) -> bool:
    return (run_dir / DONE_MARKER).is_file() and (run_dir / FINAL_SNAPSHOT).is_file()


def training_command(plan: Plan) -> list[str]:
    command = [plan.tool("pgtrain"), "run", "--preset", plan.preset, "--data", str(plan.out),
               "--run-dir", str(plan.run_dir)]
    if plan.gpus == 0:
        command += ["--device", "cpu"]
    return command + plan.pgtrain_args


def show_training_plan(command: list[str], plan: Plan, console: Console) -> None:
    """In a dry run: pgtrain's own --dry-run lines that say which presets apply (the celebahq dataset preset,
    mirror augment, is detected from the manifest), when the dataset is there to read."""
    if not (plan.out / "manifest.json").is_file():
        console.say(2, "training", "(pgtrain detects the celebahq dataset preset, mirror augment, from the "
                    "dataset's manifest once it is built)")
        return
    result = subprocess.run(command + ["--dry-run"], capture_output=True, text=True)
    shown = [line for line in result.stdout.splitlines() if line.startswith(("Dataset", "Configuration"))]
    for line in shown + result.stderr.strip().splitlines():
        console.say(2, "training", f"pgtrain --dry-run: {line}")


def stage_training(plan: Plan, record: Record, console: Console) -> bool:
    if training_finished(plan.run_dir):
        console.say(2, "training", f"skipped: {plan.run_dir} finished ({DONE_MARKER})")
        record.stage("training", "skipped", [], None, "finished")
        return False
    command = training_command(plan)
    resumed = plan.run_dir.is_dir() and any(plan.run_dir.iterdir())
    console.say(2, "training", ("resuming the unfinished run in place: " if resumed else "") + shlex.join(command))
    if plan.dry_run:
        show_training_plan(command, plan, console)
        return True
    started = time.time()
    check_status(command, run_command(command))
    if not training_finished(plan.run_dir):
        raise ReproduceError(f"{plan.run_dir}: pgtrain stopped before the end of training (no {DONE_MARKER}); "
                             "run this again to resume it")
    record.stage("training", "resumed" if resumed else "trained", [command], time.time() - started)
    console.say(2, "training", f"done in {format_time(time.time() - started)}")
    return True


# --- stage 3: metrics -------------------------------------------------------------------------------------------


def option_values(args: list[str], *names: str) -> list[str]:
    """Every value given to an option (`--num 16`, `--num=16`, `-n 16`), in order."""
    values = []
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                values.append(args[index + 1])
            elif arg.startswith(name + "="):
                values.append(arg[len(name) + 1:])
    return values


def snapshot_kimgs(run_dir: Path) -> set[int]:
    return {kimg for kimg, _ in list_snapshots(run_dir)} if run_dir.is_dir() else set()


def scored_kimgs(table: Path) -> set[int]:
    """The snapshot rows of a metric file (their first column is the kimg; Reals rows are named)."""
    try:
        lines = table.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    return {int(first) for line in lines if (first := (line.split() or [""])[0]).isdigit()}


def metric_complete(run_dir: Path, metric: str, num: int) -> bool:
    """The metric's table lists every snapshot of the run (and its plot is there)."""
    stem = run_dir / f"metric-{metric}-{count_label(num)}"
    snapshots = snapshot_kimgs(run_dir)
    return bool(snapshots) and stem.with_suffix(".png").is_file() and snapshots <= scored_kimgs(
        stem.with_suffix(".txt"))


def inception_weights_found(user_args: list[str]) -> bool:
    """Whether pgmetrics will find the TF-Inception weights: an explicit --inception-weights, else its own lookup."""
    if option_values(user_args, "--inception-weights"):
        return True
    try:
        find_weights()
    except PgmetricsError:
        return False
    return True


@dataclass
class MetricStep:
    """One `pgmetrics evaluate` command, or why it is skipped."""

    label: str
    command: list[str]
    skip: str = ""

    @property
    def settings(self) -> str:
        """The command's options (what its rows were scored with), as the stage record keeps them."""
        return shlex.join(self.command[3:])


def complete_step(step: MetricStep, run_dir: Path, metrics: list[str], num: int | None, done: set[str]) -> None:
    """Skip a command that finished before with these very options, when its files list every snapshot."""
    if num is not None and step.settings in done and all(metric_complete(run_dir, m, num) for m in metrics):
        step.skip = "every snapshot is in its metric file, scored with these options"


def last_int(values: list[str]) -> int | None:
    return int(values[-1]) if values and values[-1].isdigit() else None


def metric_steps(plan: Plan, done: set[str]) -> list[MetricStep]:
    """The official metrics, each with the user's PGMETRICS_ARGS appended (the last value of an option wins);
    when the user names --metrics, one command with exactly the user's choice. `done`: the options of the
    commands that finished before (the stage record)."""
    user = plan.pgmetrics_args
    evaluate = [plan.tool("pgmetrics"), "evaluate", str(plan.run_dir)]
    user_num = last_int(option_values(user, "--num", "-n"))
    if option_values(user, "--metrics", "-m"):
        metrics = option_values(user, "--metrics", "-m")[-1]
        step = MetricStep(metrics, evaluate + user)
        complete_step(step, plan.run_dir, [m.strip() for m in metrics.split(",")], user_num, done)
        return [step]
    steps = []
    for job in OFFICIAL_METRICS:
        num = user_num if user_num is not None else job.num
        step = MetricStep(f"{job.metric} {count_label(num)}",
                          evaluate + ["--metrics", job.metric, "--num", str(job.num), *job.extra] + user)
        complete_step(step, plan.run_dir, [job.metric], num, done)
        if not step.skip and job.metric == "fid" and not inception_weights_found(user):
            step.skip = ("no TF-Inception weights found (pass PGMETRICS_ARGS=\"--inception-weights FILE\", set "
                         "$PGMETRICS_INCEPTION_WEIGHTS or see docs/metrics.md)")
        steps.append(step)
    return steps


def stage_metrics(plan: Plan, record: Record, console: Console) -> bool:
    ran: list[list[str]] = []
    started = time.time()
    done = set(record.content.get("metrics_done", []))
    for step in metric_steps(plan, done):
        if step.skip:
            console.say(3, "metrics", f"{step.label} skipped: {step.skip}")
            continue
        console.say(3, "metrics", shlex.join(step.command))
        if plan.dry_run:
            continue
        check_status(step.command, run_command(step.command))
        ran.append(step.command)
        record.content["metrics_done"] = sorted(done | {step.settings})
        done.add(step.settings)
        record.save()
    if ran:
        record.stage("metrics", "scored", ran, time.time() - started)
        console.say(3, "metrics", f"done in {format_time(time.time() - started)}")
    elif not plan.dry_run:
        record.stage("metrics", "skipped", [], None, "every metric file complete (or FID without weights)")
    return bool(ran)


# --- stage 4: the report ----------------------------------------------------------------------------------------


def stage_report(plan: Plan, record: Record, console: Console, worked: bool) -> None:
    report = plan.run_dir / "report.md"
    if not worked and report.is_file():
        console.say(4, "report", f"skipped: nothing changed since {report} was written")
        return
    if plan.dry_run:
        console.say(4, "report", f"would write {report}")
        return
    write_report(report, record.content)
    console.say(4, "report", f"wrote {report}")


# --- the command line -------------------------------------------------------------------------------------------


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_preset(gpus: int) -> str:
    if gpus not in GPU_PRESETS:
        raise ReproduceError(f"--gpus {gpus}: the official presets are for 1, 2, 4 or 8 GPUs (0: the CPU); "
                             "pass GPUS=1, 2, 4 or 8")
    return GPU_PRESETS[gpus]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="reproduce_celebahq.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--celeba", type=Path, required=True, help="CelebA download: img_celeba/ and Anno/")
    parser.add_argument("--deltas", type=Path, required=True, help="CelebA-HQ deltas: image_list.txt, deltas*.zip")
    parser.add_argument("--out", type=Path, default=Path("datasets/celebahq"),
                        help="the dataset to build or reuse (default: datasets/celebahq)")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="folder of the run directory (default: results)")
    parser.add_argument("--gpus", type=int, default=None,
                        help="1, 2, 4 or 8 (the preset v2-1gpu ... v2-8gpus), 0 for the CPU; default: the visible "
                             "CUDA GPUs")
    parser.add_argument("--pgdata-args", default="",
                        help="appended to the create_celebahq command (shell-split); give a value that starts with "
                             "a dash as --pgdata-args='--subset ...', as the Makefile does")
    parser.add_argument("--pgtrain-args", default="", help="appended to the pgtrain run command (shell-split)")
    parser.add_argument("--pgmetrics-args", default="",
                        help="appended to each pgmetrics evaluate command (shell-split); with --metrics, one "
                             "command with exactly the metrics named")
    parser.add_argument("--dry-run", action="store_true", help="print the commands of each stage, run none")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    gpus = args.gpus if args.gpus is not None else visible_gpus()
    try:
        split = [shlex.split(text) for text in (args.pgdata_args, args.pgtrain_args, args.pgmetrics_args)]
    except ValueError as error:
        raise ReproduceError(f"cannot split the *_ARGS: {error}") from None
    return Plan(celeba=args.celeba, deltas=args.deltas, out=args.out, results=args.results, gpus=gpus,
                preset=choose_preset(gpus), pgdata_args=split[0], pgtrain_args=split[1], pgmetrics_args=split[2],
                dry_run=args.dry_run)


def reproduce(plan: Plan, echo: Callable[[str], None] = print) -> None:
    console = Console(echo)
    record = Record(plan.record_path, plan.dry_run)
    where = "on the CPU" if plan.gpus == 0 else f"on {plan.gpus} GPU(s)"
    echo(f"CelebA-HQ reproduction {where}: dataset {plan.out}, run {plan.run_dir}"
         + (" (dry run: nothing is run)" if plan.dry_run else ""))
    worked = stage_dataset(plan, record, console)
    worked = stage_training(plan, record, console) or worked
    worked = stage_metrics(plan, record, console) or worked
    stage_report(plan, record, console, worked)
    if not worked and not plan.dry_run:
        echo(f"Nothing to do: every stage was already complete ({plan.run_dir / 'report.md'})")


def main(argv: list[str] | None = None) -> int:
    try:
        reproduce(make_plan(parse_args(argv)))
    except ReproduceError as error:
        print(f"reproduce-celebahq: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the stage record or the report cannot be written (full disk, permissions)
        print(f"reproduce-celebahq: error: {error.filename}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reproduce-celebahq: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
