"""report.md of `make reproduce-celebahq` (tools/reproduce_celebahq.py, stage 4): what was run and how long it took,
the final fakes grid, the metric tables and plots as `pgmetrics evaluate` wrote them, and the published numbers
beside ours, each with where it comes from. Written atomically: a reader never sees half a report.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from pgdata.common.atomic import write_text
from pgdata.progress import format_time

STAGE_TITLES = (("dataset", "1. dataset (pgdata create_celebahq)"), ("training", "2. training (pgtrain run)"),
                ("metrics", "3. metrics (pgmetrics evaluate)"))
FAKES_PATTERN = re.compile(r"fakes(\d+)\.png$")
METRIC_FILE_PATTERN = re.compile(r"metric-(\w+)-(\w+)\.txt$")


@dataclass(frozen=True)
class Published:
    """A number from the literature to put beside ours, and where it comes from."""

    column: str
    value: str
    source: str


#: The PGGAN paper publishes no SWD or MS-SSIM for CelebA-HQ 1024²: its table (Karras et al. 2018, Table 1 /
#: poster Fig. 9) is CelebA at 128², and its FID for CelebA-HQ was published later by the StyleGAN paper.
PUBLISHED = {
    "FID": Published("FID", "7.79 (CelebA-HQ 1024², 50k, lowest over training)",
                     "Karras et al. 2019 (StyleGAN), Table 1, config A \"baseline Progressive GAN\" (their re-run "
                     "of PGGAN; quoted second-hand)"),
    "SWDx1e3_avg": Published("SWDx1e3_avg", "2.96 (CelebA 128², converged; none published for CelebA-HQ)",
                             "Karras et al. 2018 (PGGAN), Table 1 row (h) \"converged\"; per level 128: 2.42, "
                             "64: 2.17, 32: 2.24, 16: 4.99"),
    "MS-SSIM": Published("MS-SSIM", "0.2828 (CelebA 128², converged; none published for CelebA-HQ)",
                         "Karras et al. 2018 (PGGAN), Table 1 row (h) \"converged\" (10000 pairs)"),
}
#: Lower is better for these; the paper's FID is the lowest value over training.
LOWER_IS_BETTER = ("FID", "SWDx1e3_avg", "KID_mean")


def parse_metric_table(text: str) -> tuple[list[str], dict[int, dict[str, float]]]:
    """(value column names, {kimg: {name: value}}) of a metric file in the official fixed-width format.

    Columns are cut at the header's offsets: the time column may hold a space ("1m 05s")."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("Snapshot"):
        return [], {}
    header = lines[0]
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    names = header.split()
    rows: dict[int, dict[str, float]] = {}
    for line in lines[2:]:
        cells = [line[start:end].strip() for start, end in zip(starts, starts[1:] + [len(line) + 1], strict=True)]
        if not cells[0].isdigit():
            continue
        try:
            rows[int(cells[0])] = {name: float(cell) for name, cell in zip(names[2:], cells[2:], strict=True)}
        except ValueError:
            continue
    return names[2:], rows


def stage_rows(record: dict) -> list[str]:
    """One table row per stage: what it did when it last did work, how long that took, and this run's outcome."""
    lines = ["| stage | outcome | time | this run |", "|---|---|---|---|"]
    stages = record.get("stages", {})
    for key, title in STAGE_TITLES:
        entry = stages.get(key, {})
        status = entry.get("status", "-")
        seconds = entry.get("seconds")
        took = format_time(seconds) if isinstance(seconds, (int, float)) else "-"
        when = f" ({entry['finished']})" if entry.get("finished") else ""
        this_run = f"skipped: {entry.get('skip_reason', '')}" if entry.get("skipped_last") else "ran"
        lines.append(f"| {title} | {status}{when} | {took} | {this_run} |")
    return lines


def command_lines(record: dict) -> list[str]:
    lines = ["```"]
    for key, _ in STAGE_TITLES:
        lines += record.get("stages", {}).get(key, {}).get("commands", [])
    return lines + ["```"]


def final_grid(run_dir: Path) -> list[str]:
    grids = sorted((int(m.group(1)), p.name) for p in run_dir.glob("fakes*.png") if (m := FAKES_PATTERN.match(p.name)))
    if not grids:
        return ["(no fakes grid in the run directory)"]
    kimg, name = grids[-1]
    return [f"Gs on the run's fixed latents at kimg {kimg} ([{name}]({name}); the training images: "
            "[reals.png](reals.png)):", "", f"![final fakes grid]({name})"]


def metric_sections(run_dir: Path) -> tuple[list[str], dict[str, tuple[str, float, float]]]:
    """The metric files as written (tables and plots), and per column (file, final value, best value)."""
    lines: list[str] = []
    summary: dict[str, tuple[str, float, float]] = {}
    for table in sorted(run_dir.glob("metric-*.txt")):
        if not METRIC_FILE_PATTERN.match(table.name):
            continue
        text = table.read_text()
        lines += [f"### {table.stem}", "", "```", text.rstrip(), "```", ""]
        plot = table.with_suffix(".png")
        if plot.is_file():
            lines += [f"![{table.stem}]({plot.name})", ""]
        names, rows = parse_metric_table(text)
        if rows:
            final = rows[max(rows)]
            for name in names:
                values = [row[name] for row in rows.values()]
                best = min(values) if name in LOWER_IS_BETTER else final[name]
                summary[name] = (table.name, final[name], best)
    return lines or ["(no metric files yet)"], summary


def comparison_rows(summary: dict[str, tuple[str, float, float]]) -> list[str]:
    lines = ["| metric | ours: final snapshot | ours: best over training | published | source |",
             "|---|---|---|---|---|"]
    for name, published in PUBLISHED.items():
        if name in summary:
            file, final, best = summary[name]
            ours_final, ours_best = f"{final:.4f} ({file})", (f"{best:.4f}" if name in LOWER_IS_BETTER else "-")
        else:
            ours_final, ours_best = "not scored", "-"
        lines.append(f"| {name} | {ours_final} | {ours_best} | {published.value} | {published.source} |")
    return lines


def report_text(run_dir: Path, record: dict) -> str:
    metrics, summary = metric_sections(run_dir)
    lines = [f"# CelebA-HQ reproduction: {run_dir.name}", "",
             f"Written by `make reproduce-celebahq` (tools/reproduce_celebahq.py) on "
             f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}. Running it again continues an interrupted stage and skips "
             "the finished ones.", "", "## Stages", "", *stage_rows(record), "", "Commands (the last run of each "
             "stage that did work):", "", *command_lines(record), "", "## Final grid", "", *final_grid(run_dir), "",
             "## Ours beside the published numbers", "",
             "The published numbers were measured on the full data with the official settings (50k images for "
             "FID, 16384 for SWD, 10000 pairs for MS-SSIM); ours only compare when the run used the same.", "",
             *comparison_rows(summary), "", "## Metric files", "", *metrics]
    return "\n".join(lines).rstrip() + "\n"


def write_report(path: Path, record: dict) -> Path:
    """Write report.md for the run directory that holds `path` (atomically)."""
    return write_text(path, report_text(path.parent, record))
