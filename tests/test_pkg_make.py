"""The Makefile does what the README says of ``make demo`` and ``make test``.

Dry runs (``make -n``) against an empty virtual environment: nothing is installed.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dry_run(target, venv):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), target, f"VENV={venv}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_installs_what_the_examples_need_not_the_test_extras(tmp_path):
    commands = dry_run("demo", tmp_path / "venv")
    assert 'pip install "torch==2.13.0"' in commands  # before the package: a CPU build
    assert 'pip install -e ".[plot]"' in commands  # every example runs in this venv
    assert "[test]" not in commands  # pgserver, faiss, dask: not needed to run the examples
    assert commands.strip().endswith("examples/quickstart.py")


def test_test_installs_the_test_extras_in_the_same_venv(tmp_path):
    commands = dry_run("test", tmp_path / "venv")
    assert commands.index('pip install "torch==2.13.0"') < commands.index(
        'pip install -e ".[test]"'
    )
    assert commands.strip().endswith("-m pytest -q")
