"""Shared test settings and helpers (importable as ``tests.helpers``)."""

import os
import subprocess
import sys

# Small and fast: these settings keep one fit on digits around a second.
FAST = dict(n_bits=16, hidden_layer_sizes=(32,), max_epochs=3, n_projections=32)


def run_script(script, cwd, **environ):
    """Run the Python file ``script`` in a fresh interpreter, one thread, in ``cwd``.

    Returns the ``subprocess.CompletedProcess`` (text output captured); a run
    longer than 5 minutes fails.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", **environ}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
