# The progressive GAN toolkit. `make install` then `make demo` / `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU machines: the CPU build of torch. GPU users: make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test test-slow test-all check lint bench bench-data bench-metrics bench-train reproduce-celebahq clean

$(BIN)/pgdata: packages/pgdata/pyproject.toml packages/pgtrain/pyproject.toml packages/pgmetrics/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check -e packages/pgdata -e packages/pgtrain -e packages/pgmetrics pytest ruff
	touch $(BIN)/pgdata

install: $(BIN)/pgdata

demo: install
	$(BIN)/python tools/demo.py

test: install
	$(BIN)/python -m pytest -q -m "not slow and not gpu" $(PYTEST_ARGS) tests

test-slow: install
	$(BIN)/python -m pytest -q -m "slow" $(PYTEST_ARGS) tests

test-all: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

lint: install
	$(BIN)/ruff check packages tests tools

check: lint test

bench: bench-data bench-metrics bench-train

bench-data: install
	$(BIN)/python tools/bench_pgdata.py

bench-metrics: install
	$(BIN)/python tools/bench_metrics.py

# Training speed per resolution and the projected schedule (docs/performance.md). On a GPU, e.g.
# make bench-train BENCH_TRAIN_ARGS="--preset v2-1gpu+fp16+BENCHMARK0 --device cuda"; the GPU check: tools/gpu_check.sh
BENCH_TRAIN_ARGS ?= --preset demo-cpu --resolution 64 --device cpu --cpu-threads 1
bench-train: install
	$(BIN)/pgtrain bench $(BENCH_TRAIN_ARGS)

# The paper's CelebA-HQ experiment end to end (docs/reproduce.md): dataset, training, metrics, report.md.
# make reproduce-celebahq CELEBA=dir DELTAS=dir [OUT=datasets/celebahq] [RESULTS=results] [GPUS=n]
#     [PGDATA_ARGS=...] [PGTRAIN_ARGS=...] [PGMETRICS_ARGS=...] [DRY_RUN=1]
# The variables reach the script through the environment ("$$VAR" in the recipe), so that values holding
# spaces, quotes or braces arrive as typed. `make -n reproduce-celebahq ...` also prints the stages' commands.
CELEBA ?=
DELTAS ?=
OUT ?= datasets/celebahq
RESULTS ?= results
GPUS ?=
PGDATA_ARGS ?=
PGTRAIN_ARGS ?=
PGMETRICS_ARGS ?=
DRY_RUN ?=
export CELEBA DELTAS OUT RESULTS GPUS PGDATA_ARGS PGTRAIN_ARGS PGMETRICS_ARGS
REPRODUCE := $(BIN)/python tools/reproduce_celebahq.py --celeba "$$CELEBA" --deltas "$$DELTAS" --out "$$OUT" \
	--results "$$RESULTS" $(if $(GPUS),--gpus "$$GPUS") --pgdata-args="$$PGDATA_ARGS" \
	--pgtrain-args="$$PGTRAIN_ARGS" --pgmetrics-args="$$PGMETRICS_ARGS"
reproduce-celebahq: install
	@test -n "$(CELEBA)" -a -n "$(DELTAS)" || { echo "usage: make reproduce-celebahq CELEBA=/path/to/celeba DELTAS=/path/to/celeba-hq-deltas [OUT=datasets/celebahq] [RESULTS=results] [GPUS=n] [PGDATA_ARGS=...] [PGTRAIN_ARGS=...] [PGMETRICS_ARGS=...] [DRY_RUN=1]"; exit 2; }
ifneq (,$(findstring n,$(firstword -$(MAKEFLAGS))))
	+$(REPRODUCE) --dry-run
else
	$(REPRODUCE) $(if $(DRY_RUN),--dry-run)
endif

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
