#!/usr/bin/env bash
# The project's GPU check: one prepared run, under 8 minutes on one H100, for a session lent a GPU.
#
#   1. the tests marked `gpu`                          (pytest -m gpu)
#   2. pgtrain bench, BENCHMARK0 at 1024x1024          (v2-1gpu; fp32, fp16, bf16; $KIMG0 kimg each, + bare)
#   3. pgtrain bench, a short BENCHMARK                (every level 4..1024, fp32; $KIMG_LEVEL kimg per level)
#   4. pgmetrics' GPU benchmark                        (tools/bench_metrics.py --device cuda: SWD 16k+16k
#                                                       images at 1024x1024, Inception images/s)
#
# Each step has its own timeout (seconds, overridable: T_SETUP T_TESTS T_FP32 T_FP16 T_BF16 T_BENCHMARK
# T_INCEPTION T_SWD; they sum to 460 s), so a failing or slow step costs its own budget only. The report goes to
# $OUT (the device tool's folder; ./gpu_check_out elsewhere): gpu_check.md (tables), gpu_check.json (every
# figure: each bench's full JSON, the metrics rows, the tests' counts, each step's exit status and time) and
# gpu_check.log (all output).
#
# Through the device tool (no arguments; at most 460 s of steps plus the report, so timeout_s=540 is safe):
#   run  command="bash tools/gpu_check.sh"  timeout_s=540          (add carry=[".whl"] when .whl/ exists)
#
# Python there: the image's python3 (torch, numpy, scipy, opencv, pillow, typer, tqdm, pytest ...; no network).
# The project is installed with `pip install --no-deps --no-build-isolation -e packages/*`, or put on
# PYTHONPATH when that fails; every command runs as `python3 -m ...`, so either works.
# Wheels: these steps need none. pgdata's lazily imported readers (TFRecords CRCs, webdataset shards, LSUN
# lmdb) are not on the image; if a gpu-marked test ever needs them, fetch them here, in the repo root, and
# carry .whl (the script installs whatever .whl/*.whl holds into /tmp/site):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#     google-crc32c==1.9.0 webdataset==1.0.2 braceexpand==0.1.7 lmdb==3.0.0
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
mkdir -p "$OUT"
LOG=$OUT/gpu_check.log
STATUS=$WORK/status.tsv
export PYTHONUNBUFFERED=1
KIMG0=${KIMG0:-1}
KIMG_LEVEL=${KIMG_LEVEL:-0.25}
# Without a GPU, the plumbing can be tried with tiny networks (fp16 then fails, as it must on a CPU):
#   PATH=.venv/bin:$PATH INSTALL=0 DEVICE=cpu KIMG0=0.004 KIMG_LEVEL=0.002 T_SWD=10 \
#     BENCH_ARGS="--resolution 32 --set G.fmap_base=2048 --set G.fmap_max=8 --set D.fmap_base=2048 \
#     --set D.fmap_max=8 --warmup-steps 1 --min-steps 2" \
#     OUT=/tmp/gpu_check bash tools/gpu_check.sh
DEVICE=${DEVICE:-cuda}
: >"$LOG"
: >"$STATUS"

# step NAME TIMEOUT COMMAND...: run with a timeout, append its output to the log, record status and seconds.
step() {
  local name=$1 limit=$2 start rc
  shift 2
  echo "=== $name (timeout ${limit}s): $*" | tee -a "$LOG"
  start=$(date +%s%N)
  timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((($(date +%s%N) - start) / 1000000))" "$limit" >>"$STATUS"
  echo "=== $name: exit $rc" | tee -a "$LOG"
}

setup() {
  nvidia-smi -L || true
  if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl || return 1
  fi
  if [ "${INSTALL:-1}" = 1 ]; then
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e packages/pgdata -e packages/pgtrain \
      -e packages/pgmetrics || echo "pip install failed: using PYTHONPATH"
  fi
  python3 -c "import torch, pgtrain, pgmetrics; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(0))"
}
export PYTHONPATH=/tmp/site:$PWD/packages/pgdata/src:$PWD/packages/pgtrain/src:$PWD/packages/pgmetrics/src${PYTHONPATH:+:$PYTHONPATH}
step setup "${T_SETUP:-30}" bash -c "$(declare -f setup); setup"

step gpu_tests "${T_TESTS:-35}" python3 -m pytest -q -m gpu tests -p no:cacheprovider \
  --continue-on-collection-errors --junitxml "$WORK/gpu_tests.xml"

bench() {  # bench NAME TIMEOUT PRESETS [ARGS...]
  local name=$1 limit=$2 presets=$3
  shift 3
  # shellcheck disable=SC2086  # BENCH_ARGS: extra words on purpose
  step "$name" "$limit" python3 -m pgtrain bench --preset "$presets" --device "$DEVICE" --json "$WORK/$name.json" \
    "$@" ${BENCH_ARGS:-}
}
bench bench_fp32_BENCHMARK0 "${T_FP32:-75}" v2-1gpu+fp32+BENCHMARK0 --kimg-per-level "$KIMG0"
bench bench_fp16_BENCHMARK0 "${T_FP16:-60}" v2-1gpu+fp16+BENCHMARK0 --kimg-per-level "$KIMG0"
if python3 -c "from pgtrain.presets import PRESETS; assert 'bf16' in PRESETS" 2>/dev/null; then
  bench bench_bf16_BENCHMARK0 "${T_BF16:-60}" v2-1gpu+bf16+BENCHMARK0 --kimg-per-level "$KIMG0"
else  # before the bf16 preset existed: its settings by hand
  bench bench_bf16_BENCHMARK0 "${T_BF16:-60}" v2-1gpu+BENCHMARK0 --set precision=bf16 \
    --set "sched.max_minibatch_per_gpu={512: 16, 1024: 8}" --kimg-per-level "$KIMG0"
fi
bench bench_fp32_BENCHMARK "${T_BENCHMARK:-75}" v2-1gpu+fp32+BENCHMARK --kimg-per-level "$KIMG_LEVEL"

metrics() {  # metrics ARGS...: tools/bench_metrics.py's JSON rows, appended to metrics.jsonl
  set -o pipefail
  python3 tools/bench_metrics.py --device "$DEVICE" --swd-images 0 "$@" | tee -a "$WORK/metrics.jsonl"
}
# Two runs, so that a slow SWD cannot take the Inception figures with it (each run prints at its end).
step metrics_inception "${T_INCEPTION:-45}" env WORK="$WORK" DEVICE="$DEVICE" bash -c "$(declare -f metrics); \
  metrics --swd-images-1024 0 --inception-images 4096 --inception-batch 256"
step metrics_swd "${T_SWD:-80}" env WORK="$WORK" DEVICE="$DEVICE" bash -c "$(declare -f metrics); \
  metrics --swd-images-1024 16384 --baseline-images 4 --inception-images 0"

python3 - "$WORK" "$OUT" <<'EOF'
"""Gather the steps' results into gpu_check.json and gpu_check.md."""
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
steps = []
for line in (work / "status.tsv").read_text().splitlines():
    name, rc, seconds, limit = line.split("\t")
    steps.append({"step": name, "exit": int(rc), "seconds": int(seconds) / 1000, "timeout_s": int(limit),
                  "timed_out": int(rc) in (124, 137)})
report = {"steps": steps, "bench": {}, "metrics": [], "gpu_tests": None}
for path in [work / f"{step['step']}.json" for step in steps if step["step"].startswith("bench_")]:
    if not path.exists():
        continue
    try:
        report["bench"][path.stem] = json.loads(path.read_text())
    except ValueError as error:
        report["bench"][path.stem] = {"error": str(error)}
metrics = work / "metrics.jsonl"
if metrics.exists():
    for line in metrics.read_text().splitlines():
        try:
            report["metrics"].append(json.loads(line))
        except ValueError:
            pass
junit = work / "gpu_tests.xml"
if junit.exists():
    suite = ElementTree.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    counts["failed"] = [case.get("classname", "") + "::" + case.get("name", "") for case in suite.iter("testcase")
                        if case.find("failure") is not None or case.find("error") is not None]
    report["gpu_tests"] = counts

md = ["# GPU check", ""]
first = next((b for b in report["bench"].values() if "device_name" in b), None)
if first:
    md += [f"Device: {first['device_name']}; torch {first['torch_version']}", ""]
md += ["| step | exit | seconds | timeout |", "|---|---|---|---|"]
md += [f"| {s['step']} | {s['exit']}{' (timed out)' if s['timed_out'] else ''} | {s['seconds']:.0f} | "
       f"{s['timeout_s']} |" for s in steps]
if report["gpu_tests"]:
    t = report["gpu_tests"]
    md += ["", f"gpu tests: {t['tests']} run, {t['failures']} failed, {t['errors']} errors, {t['skipped']} skipped"
           + (": " + ", ".join(t["failed"]) if t["failed"] else "")]
md += ["", "## pgtrain bench", "",
       "| run | precision | res | minibatch | sec/kimg | img/s | bare img/s | trainer/bare | loader img/s | TFLOP/s "
       "| % of peak | peak mem GiB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]


def number(value, spec):
    return format(value, spec) if isinstance(value, (int, float)) else "-"


projections = []
for name, bench in report["bench"].items():
    for level in bench.get("resolutions", []):
        md.append(f"| {name} | {bench['precision']} | {level['resolution']} | {level['minibatch']} | "
                  f"{number(level['sec_per_kimg'], '.2f')} | {number(level['images_per_s'], '.1f')} | "
                  f"{number(level['bare_images_per_s'], '.1f')} | {number(level['trainer_over_bare'], '.2f')} | "
                  f"{number(level['loader_images_per_s'], '.0f')} | {number(level['tflops'], '.3g')} | "
                  f"{number(level['peak_fraction'] and level['peak_fraction'] * 100, '.1f')} | "
                  f"{number(level['peak_mem_bytes'] / 2**30, '.2f')} |")
    if bench.get("projected_hours") is not None:
        scope = "whole schedule" if bench["projection_complete"] else "measured levels only"
        projections.append(f"- {name}: {bench['projected_hours']:.1f} h for {'+'.join(bench['presets'])} "
                           f"({bench['schedule_total_kimg']:g} kimg; {scope}); peak {bench['peak_basis']}")
md += ["", "Projected wall time:", *projections] if projections else []
if report["metrics"]:
    md += ["", "## pgmetrics", ""]
    md += ["- " + ", ".join(f"{k}: {v}" for k, v in row.items()) for row in report["metrics"]]
(out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
(out / "gpu_check.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
EOF
rm -rf "$WORK"
