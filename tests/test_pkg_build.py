"""The sdist and the wheel hold what a user needs, and nothing stray.

Both are built by setuptools' PEP 517 backend, in a fresh interpreter, from a copy of
the source tree (so that the build's egg-info and build/ stay out of the checkout). A
few seconds: no isolated environment and no download.
"""

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# left out of the copy: the large (.git, .venv) and what the build writes itself (build/,
# egg-info); the copy keeps __pycache__ (with numba's caches), which the build must skip
IGNORE = (".git", ".venv", "build", "dist", "*.egg-info", "_build", ".*_cache")
# compiled or cached files that must never be shipped (numba caches are .nbi/.nbc)
STRAY_SUFFIXES = (".pyc", ".pyo", ".nbi", ".nbc", ".so", ".npz", ".npy", ".joblib")


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    pytest.importorskip("setuptools", minversion="77")  # license-files, SPDX license
    source = tmp_path_factory.mktemp("src") / "skhash"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*IGNORE))
    out = tmp_path_factory.mktemp("dist")
    # the names go to a file: the backend logs to stdout
    code = (
        "import sys, setuptools.build_meta as b; out = sys.argv[1]; "
        "names = [b.build_sdist(out), b.build_wheel(out)]; "
        "open(out + '/names.txt', 'w').write(' '.join(names))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    sdist_name, wheel_name = (out / "names.txt").read_text().split()
    with tarfile.open(out / sdist_name) as sdist:
        prefix = sdist_name.removesuffix(".tar.gz") + "/"
        sdist_files = {m.name.removeprefix(prefix) for m in sdist.getmembers() if m.isfile()}
    with zipfile.ZipFile(out / wheel_name) as wheel:
        wheel_files = set(wheel.namelist())
        metadata_name = next(n for n in wheel_files if n.endswith(".dist-info/METADATA"))
        metadata = wheel.read(metadata_name).decode()
    return {
        "sdist": sdist_files,
        "wheel": wheel_files,
        "metadata": metadata,
        "log": result.stderr,
    }


def _sources(pattern):
    return {
        path.relative_to(ROOT).as_posix()
        for path in ROOT.glob(pattern)
        if "__pycache__" not in path.parts
    }


def test_wheel_holds_every_module_and_the_license(dists):
    wheel = dists["wheel"]
    assert _sources("skhash/**/*.py") <= wheel  # subpackages too (skhash/_neighbors/)
    package = {name for name in wheel if not name.split("/")[0].endswith(".dist-info")}
    assert all(name.startswith("skhash/") and name.endswith(".py") for name in package), sorted(
        package
    )
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel)


def test_metadata_names_the_license_and_python(dists):
    metadata = dists["metadata"]
    # an SPDX expression: setuptools stops building the TOML-table form in 2027
    assert "License-Expression: BSD-3-Clause" in metadata
    assert "Requires-Python: >=3.10" in metadata
    assert "Classifier: Programming Language :: Python :: 3" in metadata
    assert "SetuptoolsDeprecationWarning" not in dists["log"]
    assert "is deprecated" not in dists["log"]


def test_sdist_holds_what_its_tests_read(dists):
    """An unpacked sdist can run its own test suite: helpers, examples and docs included."""
    sdist = dists["sdist"]
    needed = (
        _sources("tests/*.py")  # conftest.py and helpers.py, not only test_*.py
        | _sources("examples/*.py")  # tests/test_examples.py runs them
        | _sources("docs/*.rst")  # tests/test_docs_code.py runs their code
        | _sources("docs/*.md")
        | {"docs/conf.py", "README.md", "LICENSE", "Makefile", "CHANGELOG.md", "pyproject.toml"}
    )
    assert not needed - sdist, sorted(needed - sdist)


def test_sdist_and_wheel_have_no_stray_files(dists):
    for kind in ("sdist", "wheel"):
        stray = {
            name
            for name in dists[kind]
            if name.endswith(STRAY_SUFFIXES)
            or "__pycache__" in name
            or name.startswith((".venv/", "benchmarks/", "docs/_build/", "examples/figures/"))
        }
        assert not stray, (kind, sorted(stray))
