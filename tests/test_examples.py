"""Every example runs, in its fast mode (SKHASH_FAST=1), so that none can rot."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_script

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py"))
WRITES_FIGURE = {"plot_smoke_test.py", "plot_grid_search.py", "text_retrieval.py"}


def run_example(name, *args, **env):
    # one thread each for torch and numba: with OMP_NUM_THREADS=1 alone, numba's
    # OpenMP layer raises the shared OpenMP thread count to the number of cores
    # after a Hamming search, and torch training then oversubscribes the CPU
    environ = {
        **os.environ,
        "SKHASH_FAST": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
        **env,
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_every_example_is_tested():
    assert "quickstart.py" in SCRIPTS
    assert WRITES_FIGURE <= set(SCRIPTS)


@pytest.mark.parametrize("name", [s for s in SCRIPTS if s != "text_retrieval.py"])
def test_example_runs(name, tmp_path):
    if name in WRITES_FIGURE:
        pytest.importorskip("matplotlib")
    figure = tmp_path / "figure.png"
    out = run_example(name, *([figure] if name in WRITES_FIGURE else []))
    assert out.strip()
    if name in WRITES_FIGURE:
        assert figure.stat().st_size > 10_000


@pytest.fixture
def small_texts(tmp_path):
    """A stand-in for fortunes_minilm.npz: the same keys, 600 random float16 vectors."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 24)).astype(np.float16)
    path = tmp_path / "texts.npz"
    np.savez(
        path,
        X=X,
        y=np.array(["a", "b"] * 300),
        text=np.array([f"quotation number {i}" for i in range(600)]),
    )
    return path


def test_text_retrieval_on_embeddings(small_texts, tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "text.png"
    out = run_example("text_retrieval.py", figure, "--query", 3, SKHASH_FORTUNES=str(small_texts))
    assert "recall 10@10" in out and "Query: quotation number" in out
    assert "nearest by Hamming distance" in out and "nearest by cosine similarity" in out
    assert figure.stat().st_size > 10_000


def test_text_retrieval_without_data_explains_and_exits_0(tmp_path):
    figure = tmp_path / "text.png"
    out = run_example("text_retrieval.py", figure, SKHASH_FORTUNES=str(tmp_path / "missing.npz"))
    assert "is not here" in out and "BinaryHashEncoder" in out
    assert not figure.exists()


def test_readme_code_runs_as_written(tmp_path):
    """The README's Python blocks, in order, in one process: each may use the ones before."""
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert len(blocks) >= 2
    script = tmp_path / "readme.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    result = run_script(script, tmp_path)
    assert result.returncode == 0, f"README code failed:\n{result.stdout}\n{result.stderr}"
    assert 0.5 < float(result.stdout.split()[0]) <= 1.0  # knn.score
