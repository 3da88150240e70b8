#!/usr/bin/env bash
# Standalone installs: each package installed (not editable) into its own fresh venv with only the dependencies it
# declares, then its CLI (no arguments, --help), an import of every one of its modules, and the first-use build of
# its C kernels from the installed package data. Proves what the README's install lines promise.
#
#   bash tools/check_install.sh            # all cases, venvs under a new /tmp/pg-check-install.* folder
#   CHECK_INSTALL_DIR=/tmp/x bash tools/check_install.sh pgdata     # one case, in a given (new or empty) folder
#
# Cases: pgdata (alone: no torch), pgtrain (+ pgdata), pgmetrics (+ pgdata), all (the three, pgtrain[metrics]).
# "pgdata" etc. are not our names on PyPI: the local paths are always named together on one pip command line.
# TORCH: what is installed first where torch is needed (default: the CPU wheel, to save the CUDA download).
# Needs network access (PyPI, download.pytorch.org) unless pip's configuration points at local wheels.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu}
WORK=${CHECK_INSTALL_DIR:-$(mktemp -d /tmp/pg-check-install.XXXXXX)}
mkdir -p "$WORK"
export PGDATA_CACHE="$WORK/native-cache"   # a fresh cache: the kernels must compile from the installed sources

say() { printf '== %s\n' "$*"; }

# pip builds a local path in place (setuptools leaves build/ and *.egg-info there): build from a copy instead,
# so that the check never writes into the working tree. SRC/<package> stands for ./packages/<package>.
SRC="$WORK/src"
copy_sources() {
    if [[ -d "$SRC" ]]; then return; fi
    mkdir -p "$SRC"
    cp -r "$ROOT/packages/pgdata" "$ROOT/packages/pgtrain" "$ROOT/packages/pgmetrics" "$SRC/"
    find "$SRC" \( -name "*.egg-info" -o -name __pycache__ -o -name build \) -prune -exec rm -rf {} +
}

# make_venv NAME: a fresh venv at $WORK/NAME (refuses to reuse one: the check is about fresh installs).
make_venv() {
    local venv="$WORK/$1"
    if [[ -e "$venv" ]]; then echo "check_install: $venv exists; use a new CHECK_INSTALL_DIR" >&2; exit 1; fi
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
}

# check_package VENV PACKAGE: CLI with no arguments and --help, every module imported, package data present.
check_package() {
    local venv=$1 package=$2
    # With no arguments the CLI lists its commands (click exits 2 there, as for any usage message).
    (cd "$WORK" && "$venv/bin/$package" 2>&1 || true) | grep -q "Commands" \
        || { echo "$package: no arguments did not list the commands" >&2; return 1; }
    (cd "$WORK" && "$venv/bin/$package" --help >"$venv/help.txt")
    grep -m 1 "Usage: $package" "$venv/help.txt"
    if [[ -f "$("$venv/bin/python" -c "import $package, os; print(os.path.dirname($package.__file__))")/__main__.py" ]]; then
        (cd "$WORK" && "$venv/bin/python" -m "$package" --help >/dev/null)
        echo "python -m $package --help: ok"
    fi
    (cd "$WORK" && "$venv/bin/python" - "$package" <<'EOF'
import importlib
import pkgutil
import sys
from pathlib import Path

name = sys.argv[1]
package = importlib.import_module(name)
root = Path(package.__file__).parent
assert "site-packages" in str(root), f"{name} imported from {root}, not from the installed wheel"
# __main__ runs the CLI when imported: it is checked by `python -m` below instead.
modules = [info.name for info in pkgutil.walk_packages([str(root)], prefix=f"{name}.")
           if not info.name.endswith(".__main__")]
for module in modules:
    importlib.import_module(module)
print(f"{name} {package.__version__}: imported {len(modules) + 1} modules from {root}")
kernels = {"pgdata": "pgdata.celebahq.native", "pgmetrics": "pgmetrics.native"}
if name in kernels:
    native = importlib.import_module(kernels[name])
    assert native.SOURCE.is_file(), f"{native.SOURCE} is not in the installed package"
    library = native.library()
    print(f"{name}: {native.SOURCE.name} installed; compiled on first use: {library is not None}")
EOF
    )
}

case_pgdata() {
    make_venv pgdata
    "$WORK/pgdata/bin/pip" install --quiet "$SRC/pgdata"
    if "$WORK/pgdata/bin/python" -c "import torch" 2>/dev/null; then echo "pgdata pulled in torch" >&2; return 1; fi
    check_package "$WORK/pgdata" pgdata
}

case_pgtrain() {
    make_venv pgtrain
    # shellcheck disable=SC2086
    "$WORK/pgtrain/bin/pip" install --quiet $TORCH
    "$WORK/pgtrain/bin/pip" install --quiet "$SRC/pgdata" "$SRC/pgtrain"
    check_package "$WORK/pgtrain" pgtrain
}

case_pgmetrics() {
    make_venv pgmetrics
    # shellcheck disable=SC2086
    "$WORK/pgmetrics/bin/pip" install --quiet $TORCH
    "$WORK/pgmetrics/bin/pip" install --quiet "$SRC/pgdata" "$SRC/pgmetrics"
    check_package "$WORK/pgmetrics" pgmetrics
}

case_all() {
    make_venv all
    # shellcheck disable=SC2086
    "$WORK/all/bin/pip" install --quiet $TORCH
    "$WORK/all/bin/pip" install --quiet "$SRC/pgdata" "$SRC/pgtrain[metrics]" \
        "$SRC/pgmetrics"
    for package in pgdata pgtrain pgmetrics; do check_package "$WORK/all" "$package"; done
    "$WORK/all/bin/pip" check
}

cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(pgdata pgtrain pgmetrics all)
for name in "${cases[@]}"; do
    copy_sources
    say "$name (in $WORK/$name)"
    start=$SECONDS
    "case_$name"
    say "$name: ok in $((SECONDS - start)) s"
done
say "all checks passed: ${cases[*]}"
