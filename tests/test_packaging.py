"""Each package installs on its own: versions agree, declared dependencies cover what the code imports, and the
files the code needs at run time (C sources compiled on first use) are package data. Checked from the sources,
without network or a build; tools/check_install.sh does the real installs into fresh venvs."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

PACKAGES = ("pgdata", "pgtrain", "pgmetrics")
# Files under src/<package>/ that are build or cache leftovers, never part of a package.
NOT_SHIPPED = ("*.pyc", "*.so", "*.o")


def project(package: str) -> dict:
    return tomllib.loads((REPO_ROOT / "packages" / package / "pyproject.toml").read_text())


def package_root(package: str) -> Path:
    return REPO_ROOT / "packages" / package / "src" / package


def source_version(package: str) -> str:
    """`__version__` from the package's __init__.py, read without importing it."""
    tree = ast.parse((package_root(package) / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{package}/__init__.py has no __version__")


def normalize(name: str) -> str:
    """PEP 503 name normalisation: `Pillow`, `google_crc32c` and `google-crc32c` compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(spec: str) -> tuple[str, str]:
    """(normalised distribution name, version specifier) of a PEP 508 line without markers."""
    match = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*(\[[^\]]*\])?\s*([^;]*?)\s*", spec)
    assert match, f"cannot read the requirement {spec!r}"
    return normalize(match.group(1)), match.group(3)


def declared(package: str) -> tuple[set[str], dict[str, set[str]]]:
    """The package's required distributions, and each optional extra's."""
    meta = project(package)["project"]
    required = {requirement(spec)[0] for spec in meta.get("dependencies", [])}
    extras = {extra: {requirement(spec)[0] for spec in specs}
              for extra, specs in meta.get("optional-dependencies", {}).items()}
    return required, extras


def distribution_of(module: str) -> str:
    """The distribution that provides a top-level import name, as installed here (PIL -> pillow)."""
    if module in PACKAGES:
        return module
    providers = importlib.metadata.packages_distributions().get(module)
    return normalize(providers[0]) if providers else normalize(module)


def third_party_imports(package: str) -> dict[str, dict[str, bool]]:
    """{top-level module: {file: imported at module level}} for every absolute import of a package's code
    that is neither the standard library nor the package itself. An import inside a function runs only when
    that function does: such an import may come from an optional extra. Imports under `if TYPE_CHECKING:`
    never run and are left out."""
    found: dict[str, dict[str, bool]] = {}
    for path in sorted(package_root(package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        lazy = {id(node) for function in ast.walk(tree)
                if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
                for node in ast.walk(function)}
        typing_only = {id(node) for block in ast.walk(tree)
                       if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                       for statement in block.body for node in ast.walk(statement)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == package:
                    continue
                where = str(path.relative_to(package_root(package).parent))
                eager = found.setdefault(top, {}).get(where, False) or id(node) not in lazy
                found[top][where] = eager
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_pyproject_version_is_the_packages_version(package):
    assert project(package)["project"]["version"] == source_version(package)


def test_the_three_packages_share_one_version():
    assert len({source_version(package) for package in PACKAGES}) == 1


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_on_sibling_packages_pin_their_version(package):
    """A sibling is named by the exact version in this repository, so that pip never pairs our pgtrain with
    another release of pgdata, nor with a package of the same name from elsewhere."""
    meta = project(package)["project"]
    specs = meta.get("dependencies", []) + [s for extra in meta.get("optional-dependencies", {}).values()
                                            for s in extra]
    for spec in specs:
        name, version = requirement(spec)
        if name in PACKAGES:
            assert version == f"=={source_version(name)}", f"{package}: {spec!r}"


@pytest.mark.parametrize("package", PACKAGES)
def test_declared_dependencies_cover_every_import(package):
    """Imports at module level need a required dependency; imports inside functions may use an extra."""
    required, extras = declared(package)
    optional = set().union(*extras.values())
    missing = []
    for module, files in third_party_imports(package).items():
        distribution = distribution_of(module)
        eager = sorted(file for file, at_module_level in files.items() if at_module_level)
        if distribution in required:
            continue
        if eager or distribution not in optional:
            missing.append(f"{module} ({distribution}) in {eager or sorted(files)}")
    assert not missing, f"{package}: imports not declared in pyproject.toml: {missing}"


def test_the_import_scan_sees_lazy_and_module_level_imports():
    """The scan that the test above relies on: pgmetrics reads pgtrain snapshots through lazy imports."""
    imports = third_party_imports("pgmetrics")
    assert set(imports["pgtrain"].values()) == {False}
    assert True in imports["numpy"].values()
    assert distribution_of("PIL") == "pillow"


def shipped_files(package: str) -> list[str]:
    """Files under src/<package>/ other than Python modules and build leftovers, relative to the package."""
    root = package_root(package)
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")
                  if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
                  and not any(fnmatch.fnmatch(path.name, pattern) for pattern in NOT_SHIPPED))


@pytest.mark.parametrize("package", PACKAGES)
def test_every_data_file_the_code_needs_is_package_data(package):
    """setuptools ships only .py files unless told: the C sources compiled on first use must be listed."""
    patterns = project(package).get("tool", {}).get("setuptools", {}).get("package-data", {}).get(package, [])
    unlisted = [name for name in shipped_files(package)
                if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert not unlisted, f"{package}: files not in [tool.setuptools.package-data]: {unlisted}"
    for pattern in patterns:
        assert any(fnmatch.fnmatch(name, pattern) for name in shipped_files(package)), (
            f"{package}: package-data pattern {pattern!r} matches no file")


def test_the_c_kernels_are_package_data():
    assert "celebahq/_ckernels.c" in shipped_files("pgdata")
    assert "_swd_kernels.c" in shipped_files("pgmetrics")


@pytest.mark.parametrize("package", PACKAGES)
def test_console_script_points_at_a_function_of_the_package(package):
    target = project(package)["project"]["scripts"][package]
    module, function = target.split(":")
    path = REPO_ROOT / "packages" / package / "src" / Path(*module.split("."))
    source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    tree = ast.parse(source.read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    imported = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert function in defined | imported, f"{target}: no {function} in {source}"
